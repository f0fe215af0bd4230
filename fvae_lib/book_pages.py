"""The rendered book's pages as text: a notebook as the book shows it, the landing page, the banners and the
explorer's page (:mod:`fvae_lib.book` writes them into the Sphinx source folder and builds the site).

    rewrite_links(text, "notebooks/05_factorvae.ipynb", docs, repo, branch)   # links pointed at the book
    stage_notebook(nb, "notebooks/05_factorvae.ipynb", docs, repo, branch, banner_text, solution_labels)

Pure functions of their inputs (and of which repository files exist), so they are tested without building.
"""
from __future__ import annotations

import os
import re

from .paths import CHECKOUT

DEFAULT_REPO = "fvae-course/factorvae"
COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
COLAB_PREFIX = f"https://colab.research.google.com/github/{DEFAULT_REPO}/blob/main/"
EXERCISE = re.compile(r"^\*\*Exercise (\d+)\.(\d+)\b", re.M)  # an exercise's paragraph, anywhere in a cell
LINK = re.compile(r'(\]\()([^)\s#]+)(#[^)\s]*)?((?:\s+"[^"]*")?\))')  # a link's or image's target: ](target#frag "title")
WIDGET_CELL = re.compile(r"(?<![\w.])(latent_explorer|widgets\.interact|interact)\(")


def rewrite_links(text: str, source: str, docs: set[str], repo: str, branch: str, images: set[str] | None = None) -> str:
    """Point a Markdown text's links at what the book holds.

    ``source``: the file's path in the repository (``notebooks/05_factorvae.ipynb``); ``docs``: the repository
    paths the book has pages for. A relative link to one of them is kept; any other relative link (a library
    file, ``reference/``, a notebook not built) goes to the file on GitHub; a relative picture is kept and its
    repository path added to ``images`` (the stager copies it), a link to the README goes to the landing page.
    Code (fenced blocks, inline spans) is not touched. The Colab badge becomes the site's own picture, and Colab
    links name ``repo`` and ``branch``.
    """
    depth = source.count("/")
    text = text.replace(COLAB_BADGE, "../" * depth + "_static/colab-badge.svg")
    text = text.replace(COLAB_PREFIX, f"https://colab.research.google.com/github/{repo}/blob/{branch}/")

    def target(match):
        path = match.group(2)
        if re.match(r"^[a-z][a-z0-9+.-]*:", path) or path.startswith(("/", "<", "_static/", "../_static/", "../../_static/")):
            return match.group(0)
        resolved = os.path.normpath(os.path.join(os.path.dirname(source), path)).replace(os.sep, "/")
        if resolved == "README.md":  # the landing page is the README
            path = os.path.relpath("index.md", os.path.dirname(source) or ".").replace(os.sep, "/")
            return f"{match.group(1)}{path}{match.group(3) or ''}{match.group(4)}"
        opening = match.string.rfind("[", 0, match.start())
        image = opening > 0 and match.string[opening - 1] == "!"
        if image and images is not None and (CHECKOUT / resolved).is_file():
            images.add(resolved)  # a picture beside the text: staged at the same place, so the path holds
            return match.group(0)
        if resolved in docs or resolved.startswith(".."):
            return match.group(0)
        kind = "tree" if (CHECKOUT / resolved).is_dir() else "blob"
        return f"{match.group(1)}https://github.com/{repo}/{kind}/{branch}/{resolved}{match.group(3) or ''}{match.group(4)}"

    # code is left as it is: fenced blocks and inline code spans are not links
    parts = re.split(r"(```.*?```|`[^`\n]*`)", text, flags=re.S)
    return "".join(part if i % 2 else LINK.sub(target, part) for i, part in enumerate(parts))


def banner(stem: str, mode: str, repo: str, branch: str, solutions: bool) -> str:
    """The note at the top of a notebook's page: where its outputs come from, and how to run it oneself."""
    colab = f"https://colab.research.google.com/github/{repo}/blob/{branch}/notebooks/{stem}.ipynb"
    source = ("the shipped reference sweep's models (`reference/models`, 5,000 iterations each on a CPU) are read, "
              "not trained; everything else ran at the `cpu` mode's scale" if mode == "book" else
              "the tests' mode: a few dozen training steps, so its models are untrained; where a figure needs a "
              "trained one, the notebook shows a reference model and says so" if mode == "smoke" else
              f"runs trained in the `{mode}` mode")
    lines = [
        ":::{admonition} Reading this page",
        ":class: tip",
        f"Its outputs come from running the notebook top to bottom in the **`{mode}` mode**: {source}. Its setup cell "
        "prints the versions, the machine and the date they were made on. The notebook in git holds no outputs, "
        "and its exercises undone, as you get it.",
        "",
        f"[Open it in Colab]({colab}) to run it yourself, or "
        f"{{download}}`download the notebook <../_originals/notebooks/{stem}.ipynb>`"
        + (f"; solutions: {{doc}}`solutions/{stem}_solutions`." if solutions else "."),
        ":::",
    ]
    return "\n".join(lines)


def stage_notebook(nb: dict, source: str, docs: set[str], repo: str, branch: str, banner_text: str | None = None,
                   solution_labels: set[str] | None = None, label_solutions: bool = False,
                   images: set[str] | None = None) -> dict:
    """A notebook as the book shows it: links rewritten, a banner after the title, the solution linked under each
    exercise (``solution_labels``: those the solutions define), widget cells explained; ``label_solutions``: a
    solutions notebook, whose exercise cells get the labels the links point at."""
    cells = []
    sources = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    # where traversals are taught without a widget explorer (notebook 01), the in-page explorer follows the first
    traversal_cell = None if any("latent_explorer(" in c for c in sources) else \
        next((i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code" and re.search(r"(?<![\w.])traversals\(",
              "".join(c["source"]))), None)

    def added(text):
        return dict(cell_type="markdown", id=f"book-{len(cells)}", metadata={}, source=text)

    for index, cell in enumerate(nb["cells"]):
        cell = dict(cell, metadata=dict(cell.get("metadata", {})))
        text = "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            text = rewrite_links(text, source, docs, repo, branch, images)
            for exercise in reversed(list(EXERCISE.finditer(text))):
                number = f"{exercise.group(1)}.{exercise.group(2)}"
                label = f"solution-{exercise.group(1)}-{exercise.group(2)}"
                if label_solutions:  # a MyST target on the exercise's paragraph
                    text = f"{text[:exercise.start()]}({label})=\n{text[exercise.start():]}"
                elif solution_labels is not None and label in solution_labels:
                    text += f"\n\n*The solution:* {{ref}}`Exercise {number}, solved <{label}>`"
            if banner_text and not cells:  # under the title (and its Colab badge)
                lines = text.split("\n")
                at = next((i for i, line in enumerate(lines) if "colab-badge" in line),
                          next((i for i, line in enumerate(lines) if line.startswith("# ")), -1))
                text = "\n".join([*lines[:at + 1], "", banner_text, "", *lines[at + 1:]])
            cell["source"] = text
            cells.append(cell)
            continue
        cell["source"] = text
        cells.append(cell)
        if index == traversal_cell:
            cells.append(added(EXPLORER_NOTE))
        code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
        widget = WIDGET_CELL.search(code) if cell["cell_type"] == "code" else None
        if widget:
            cell["metadata"]["tags"] = [*cell["metadata"].get("tags", []), "remove-output"]
            if widget.group(1) == "latent_explorer":
                note = ("*On this page the widget above is replaced by the same decoding run in your browser: the shipped "
                        "reference decoders, exported to ONNX. Drag a slider.*\n\n<div class=\"fvae-explorer\"></div>")
            else:
                note = ("*The output of the cell above is a widget: it needs a live kernel, so it is not shown here. "
                        "Open the notebook in Colab or JupyterLab to drag it.*")
            cells.append(added(note))
    return dict(nb, cells=cells)


def solution_labels(nb: dict) -> set[str]:
    return {f"solution-{m.group(1)}-{m.group(2)}" for c in nb["cells"] if c["cell_type"] == "markdown"
            for m in EXERCISE.finditer("".join(c["source"]))}


def landing_page(stems: list[str], docs: set[str], repo: str, branch: str, solutions: bool = True,
                 images: set[str] | None = None) -> str:
    """index.md: the README, links pointed at the book, then the table of contents."""
    readme = rewrite_links((CHECKOUT / "README.md").read_text(), "README.md", docs, repo, branch, images)
    title, _, rest = readme.partition("\n")
    intro = (":::{admonition} The course as a book\n:class: tip\nThis is the course rendered as a book: every notebook run "
             "top to bottom, with its figures and tables, so it can be read with nothing installed. Each page says which "
             "mode produced it and links the notebook in Colab. The {doc}`latent explorer <explorer>` runs two trained "
             "decoders in this page's browser.\n\n"
             f"**Start here:** {{doc}}`notebooks/{stems[0]}`, then the notebooks in order (the sidebar): about 14 hours "
             "with the exercises, as the instructor's guide estimates. You need Python and NumPy, PyTorch basics "
             "(autograd, `nn.Module`, `.detach()`), Gaussians and the KL divergence. The rest of this page is the "
             "repository's README: how to run, test and teach with the course.\n:::\n")
    toc = ["", "```{toctree}", ":hidden:", ":caption: The course", ":maxdepth: 1", "",
           *(f"notebooks/{s}" for s in stems), "explorer", "```", "",
           "```{toctree}", ":hidden:", ":caption: Teaching it", ":maxdepth: 1", "", "notebooks/INSTRUCTOR_GUIDE", "```", "",
           *(["```{toctree}", ":hidden:", ":caption: Solutions", ":maxdepth: 1", "",
              *(f"notebooks/solutions/{s}_solutions" for s in stems), "```", ""] if solutions else [])]
    return f"{title}\n\n{intro}{rest}\n" + "\n".join(toc)


EXPLORER_NOTE = ("*In the book, the traversal above can be moved: below, the shipped β-VAE β = 4 decoder runs in your "
                 "browser. Drag one latent at a time: does any slider move the shape in one direction only? (Notebook 05 "
                 "sets FactorVAE's decoder beside it.)*\n\n<div class=\"fvae-explorer\" data-models=\"betavae_b4\"></div>")
EXPLORER_PAGE = """# The latent explorer

Two models from the shipped reference sweep, decoded in your browser: β-VAE with β = 4 (the paper's β-VAE baseline)
and FactorVAE with γ = 35. Pick a start image; each model starts at its own encoder's mean code for it. Then move
one latent at a time, as the traversals of notebooks 01 and 05 do, and watch whether one factor of the picture
moves (position, scale, orientation, shape) or several at once.

<div class="fvae-explorer"></div>

**What to look for.** Measured on these two decoders (`fvae_lib.export.latent_effects`: each of the five most
informative latents swept over ±1.5 from the four start codes, the picture's centre and area followed; a test
keeps these statements true of the shipped models):

- FactorVAE: one latent moves the shape left and right, another up and down, each by about 17–19 pixels with
  about one pixel of movement the other way and little change of size (z1 and z4 here). Another mostly changes its
  size (z7). One is still a mixture (z8 moves the shape and resizes it, and at one end the shape fades out).
- β-VAE: no informative latent moves the shape in one direction only; each moves it diagonally, resizes it, or both.
  That is the entanglement the traversals of notebooks 01 and 05 show, now under your fingers.
- Neither model has learned shape or orientation at 5,000 iterations: the square and the heart both come back as
  a rounded blob. FactorVAE's six quiet latents keep a few tenths of a nat of KL, so the 0.05-nat rule does not
  call them collapsed, yet moving them changes almost nothing.

The decoders are the reference models' (`reference/models`, 5,000 iterations on a CPU: a sixtieth of the paper's
training), exported to ONNX by `fvae_lib.export.write_explorer` and run by onnxruntime-web, whose WebAssembly this
site serves. Each pixel is `round(255 · p)`, with p the decoder's Bernoulli mean: the picture
`fvae_lib.plots.decode_codes` computes, which the tests compare with this page's canvas. In a notebook,
`fvae_lib.explorer.latent_explorer(vae, data)` is the same explorer as a widget, for any model you trained.
"""


def solutions_banner(stem: str, mode: str) -> str:
    """The note at the top of a solutions page: which notebook, and the mode its outputs come from."""
    return "\n".join([":::{admonition} Reading this page", ":class: tip",
                      f"The solutions of {{doc}}`../{stem}`, run top to bottom in the **`{mode}` mode**, as the notebook's "
                      "page was. Try each exercise before reading its solution: the checkers in the notebook say what "
                      "is wrong with an attempt.", ":::"])
