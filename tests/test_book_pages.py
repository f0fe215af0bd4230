"""The rendered book's pages as text (fvae_lib.book_pages): links pointed at the book, a notebook's banner, its
exercises linked to their solutions, widget cells explained, the landing page. No build needed."""
import json
import re
from pathlib import Path

from fvae_lib import book_pages as book
from fvae_lib.book import notebook_stems

REPO = Path(__file__).resolve().parent.parent


DOCS = {"README.md", "notebooks/05_factorvae.ipynb", "notebooks/solutions/05_factorvae_solutions.ipynb"}


def test_links_to_pages_stay_and_links_to_other_files_go_to_the_repository():
    text = ("[05](05_factorvae.ipynb) [02](02_kl_decomposition.ipynb) [code](../fvae_lib/train.py#L10) "
            "[ref](../reference/) [sol](solutions/05_factorvae_solutions.ipynb) [web](https://example.org/a.py) "
            "[here](#a-section) [![Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
            "(https://colab.research.google.com/github/fvae-course/factorvae/blob/main/notebooks/05_factorvae.ipynb)")
    out = book.rewrite_links(text, "notebooks/05_factorvae.ipynb", DOCS, "someone/fork", "dev")
    assert "[05](05_factorvae.ipynb)" in out and "[sol](solutions/05_factorvae_solutions.ipynb)" in out
    assert "[02](https://github.com/someone/fork/blob/dev/notebooks/02_kl_decomposition.ipynb)" in out  # not built
    assert "[code](https://github.com/someone/fork/blob/dev/fvae_lib/train.py#L10)" in out
    assert "[ref](https://github.com/someone/fork/tree/dev/reference)" in out
    assert "[web](https://example.org/a.py)" in out and "[here](#a-section)" in out
    titled = book.rewrite_links('[t](../fvae_lib/train.py "the trainer") `[not](a/link.py)` ![p](missing.png)',
                                "notebooks/05_factorvae.ipynb", DOCS, "a/b", "main", images := set())
    assert '[t](https://github.com/a/b/blob/main/fvae_lib/train.py "the trainer")' in titled
    assert "`[not](a/link.py)`" in titled  # code is not a link
    assert not images  # a picture that is not in the repository is not staged
    shown = book.rewrite_links("![curves](../benchmarks/fastpath_curves_cpu.png)", "notebooks/05_factorvae.ipynb", DOCS,
                               "a/b", "main", images)
    assert shown == "![curves](../benchmarks/fastpath_curves_cpu.png)" and images == {"benchmarks/fastpath_curves_cpu.png"}
    assert book.rewrite_links("[home](../README.md)", "notebooks/05_factorvae.ipynb", DOCS, "a/b", "main") == "[home](../index.md)"
    assert "(../_static/colab-badge.svg)" in out and "colab.research.google.com/assets" not in out
    assert "colab.research.google.com/github/someone/fork/blob/dev/notebooks/05_factorvae.ipynb" in out
    top = book.rewrite_links("[05](notebooks/05_factorvae.ipynb) [lib](fvae_lib/)", "README.md", DOCS, "a/b", "main")
    assert "[05](notebooks/05_factorvae.ipynb)" in top and "[lib](https://github.com/a/b/tree/main/fvae_lib)" in top


def _notebook(*cells):
    return dict(nbformat=4, nbformat_minor=5, metadata={},
                cells=[dict(cell_type=kind, id=f"c{i}", metadata={}, source=text, **({"outputs": [], "execution_count": None}
                       if kind == "code" else {})) for i, (kind, text) in enumerate(cells)])


def test_a_staged_notebook_has_its_banner_solution_links_and_widget_notes():
    nb = _notebook(("markdown", "# 05 · FactorVAE\n\n[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](x)\n\nIntro."),
                   ("markdown", "**Exercise 5.1 (predict).** Do it."),
                   ("code", "def my_step():\n    raise NotImplementedError"),
                   ("markdown", "**Exercise 5.9.** No solution is shipped for this one."),
                   ("code", "from fvae_lib.explorer import latent_explorer\nlatent_explorer(vae, data)"),
                   ("code", "# a comment naming interact( is no widget\n_ = widgets.interact(show, n=3)"),
                   ("code", "display(traversals(fvae, data))"),
                   ("code", "print('plain')"))
    before = json.dumps(nb)
    staged = book.stage_notebook(nb, "notebooks/05_factorvae.ipynb", DOCS, "a/b", "main", banner_text="BANNER",
                                 solution_labels={"solution-5-1"})
    assert json.dumps(nb) == before  # the notebook given is not changed
    cells = staged["cells"]
    title = cells[0]["source"].split("\n")
    assert title[0] == "# 05 · FactorVAE" and "colab-badge" in title[2] and title[4] == "BANNER" and title[-1] == "Intro."
    assert "{ref}`Exercise 5.1, solved <solution-5-1>`" in cells[1]["source"]
    assert "solved" not in cells[3]["source"]  # no label, no link
    assert cells[2]["source"] == "def my_step():\n    raise NotImplementedError"
    explorer = cells.index(next(c for c in cells if "latent_explorer(vae" in c["source"]))
    assert "remove-output" in cells[explorer]["metadata"]["tags"]
    assert '<div class="fvae-explorer"></div>' in cells[explorer + 1]["source"]
    interact = cells.index(next(c for c in cells if "widgets.interact(show" in c["source"]))
    assert "remove-output" in cells[interact]["metadata"]["tags"] and "live kernel" in cells[interact + 1]["source"]
    assert "tags" not in cells[-1]["metadata"] and len({c["id"] for c in cells}) == len(cells)
    assert sum('class="fvae-explorer"' in c["source"] for c in cells) == 1  # the widget's place, not the traversals'
    taught = book.stage_notebook(_notebook(("markdown", "# 01"), ("code", "traversals(models[4.0], data)"), ("code", "traversals(b, data)")),
                                 "notebooks/01_vae_and_beta_vae.ipynb", DOCS, "a/b", "main")["cells"]
    assert [c["cell_type"] for c in taught] == ["markdown", "code", "markdown", "code"] and "fvae-explorer" in taught[2]["source"]
    solutions = book.stage_notebook(_notebook(("markdown", "**Exercise 5.1.** The answer.")),
                                    "notebooks/solutions/05_factorvae_solutions.ipynb", DOCS, "a/b", "main",
                                    label_solutions=True)
    assert solutions["cells"][0]["source"].startswith("(solution-5-1)=\n**Exercise 5.1.**")
    later = book.stage_notebook(_notebook(("markdown", "## Build it\n\nNow the step.\n\n**Exercise 5.3.** Write it.")),
                                "notebooks/05_factorvae.ipynb", DOCS, "a/b", "main", solution_labels={"solution-5-3"})
    assert later["cells"][0]["source"].endswith("{ref}`Exercise 5.3, solved <solution-5-3>`")


def test_every_exercise_of_the_course_links_a_solution_that_exists():
    for stem in notebook_stems():
        nb = json.loads((REPO / "notebooks" / f"{stem}.ipynb").read_text())
        solutions = json.loads((REPO / "notebooks" / "solutions" / f"{stem}_solutions.ipynb").read_text())
        labels = book.solution_labels(solutions)
        # every exercise the notebook names in bold, wherever its paragraph stands in a cell
        asked = {f"solution-{a}-{b}" for c in nb["cells"] if c["cell_type"] == "markdown"
                 for a, b in re.findall(r"\*\*Exercise (\d+)\.(\d+)", "".join(c["source"]))}
        assert asked and asked <= labels, (stem, sorted(asked - labels))
        staged = book.stage_notebook(nb, f"notebooks/{stem}.ipynb", DOCS, "a/b", "main", solution_labels=labels)
        linked = set(re.findall(r"<(solution-\d+-\d+)>`", "\n".join(c["source"] for c in staged["cells"])))
        assert linked == asked, (stem, sorted(asked - linked))


def test_a_book_without_solutions_neither_lists_nor_links_them():
    stems = ["05_factorvae"]
    with_them = book.landing_page(stems, DOCS, "a/b", "main")
    without = book.landing_page(stems, DOCS - {"notebooks/solutions/05_factorvae_solutions.ipynb"}, "a/b", "main", solutions=False)
    assert "notebooks/solutions/05_factorvae_solutions" in with_them and "solutions/05" not in without.split("```{toctree}", 1)[1]
    assert "notebooks/05_factorvae" in without and "notebooks/INSTRUCTOR_GUIDE" in without
    assert "solutions" in book.banner("05_factorvae", "book", "a/b", "main", solutions=True)
    assert "solutions" not in book.banner("05_factorvae", "book", "a/b", "main", solutions=False)
