"""The course as a rendered book: ``make book`` (``python -m fvae_lib book``), a static site of notebooks 00-07 with
their outputs, their solutions, the instructor's guide, a landing page from the README, and the latent explorer.

    build()                          # everything, into build/book/html (FVAE_BOOK_DIR moves build/book)
    build(notebooks=["05"])          # the landing page, notebook 05 and its solutions, the explorer
    serve(build_dir() / "html")      # http://127.0.0.1:8000, what the explorer needs (no WebAssembly from file://)

What it does, in order (:func:`stage`, then Sphinx with myst-nb and the book theme, configured by ``book/conf.py``):

- copies the sources into ``<build>/src``, each notebook with a banner (the mode its outputs come from, the Colab
  link, a download of the notebook as it is in git, its solutions), a link to the solution under every exercise,
  the Colab badge served by the site, and links to files outside the book pointed at the repository;
- copies MathJax and onnxruntime-web from ``book/node_modules`` (``npm ci --prefix book``: versions pinned in
  ``book/package-lock.json``) into the site, so a page loads nothing from another host;
- exports the reference decoders to ONNX with :func:`fvae_lib.export.write_explorer`;
- executes each notebook in ``mode`` (default ``book``: the shipped reference models are read, not trained; see
  :mod:`fvae_lib.modes`) through jupyter-cache, in a cache named after the library's sources and the mode, so an
  unchanged notebook is not run again and a changed library runs them all anew.

Needs the ``book`` extra (``pip install -e '.[book]'``) and Node's npm for the two web packages.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

from .paths import CHECKOUT, configured_folder

SOURCES = CHECKOUT / "book"  # conf.py, _static/ (explorer.js, explorer.css, the badge), package.json
NOTEBOOKS = CHECKOUT / "notebooks"
DEFAULT_REPO = "fvae-course/factorvae"
COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
COLAB_PREFIX = f"https://colab.research.google.com/github/{DEFAULT_REPO}/blob/main/"
MATHJAX_FILES = "mathjax/es5"  # in node_modules: tex-chtml.js, its fonts and extensions
ORT_FILES = ("ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")  # onnxruntime-web/dist
EXERCISE = re.compile(r"^\*\*Exercise (\d+)\.(\d+)\b")
LINK = re.compile(r"(\]\()([^)\s#]+)(#[^)\s]*)?(\))")  # the target of a Markdown link or image: ](target#frag)
BUILD_ONLY = ("book.py", "export.py", "__main__.py")  # library files no notebook runs: left out of the cache's name
WIDGET_CELL = re.compile(r"(?<![\w.])(latent_explorer|widgets\.interact|interact)\(")


class BookError(RuntimeError):
    """The book cannot be built as asked; the message says what is missing and how to get it."""


def build_dir() -> Path:
    """``$FVAE_BOOK_DIR``, else ``build/book`` of the checkout (ignored by git)."""
    return configured_folder("FVAE_BOOK_DIR", "build/book", Path("build/book").resolve())


def repository() -> tuple[str, str]:
    """The GitHub repository and branch the book's links and Colab badges point at: ``$FVAE_BOOK_REPO`` (or, in
    GitHub Actions, ``$GITHUB_REPOSITORY``), so a fork's book links the fork."""
    repo = os.environ.get("FVAE_BOOK_REPO") or os.environ.get("GITHUB_REPOSITORY") or DEFAULT_REPO
    branch = os.environ.get("FVAE_BOOK_BRANCH") or os.environ.get("GITHUB_REF_NAME") or "main"
    return repo, branch


def notebook_stems(only=None) -> list[str]:
    """The course's notebooks (``00_setup_and_data``, ...), or those whose number or name is in ``only``."""
    stems = sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if not only:
        return stems
    chosen = [s for s in stems if any(s == o or s.split("_")[0] == o for o in only)]
    unknown = [o for o in only if not any(s == o or s.split("_")[0] == o for s in stems)]
    if unknown:
        raise BookError(f"no notebook {', '.join(unknown)}; the course has {', '.join(s.split('_')[0] for s in stems)}")
    return chosen


def node_modules() -> Path:
    """Where ``npm ci --prefix book`` installed MathJax and onnxruntime-web; an error saying how, if it has not."""
    folder = SOURCES / "node_modules"
    missing = [p for p in (folder / MATHJAX_FILES / "tex-chtml.js", *(folder / "onnxruntime-web" / "dist" / f for f in ORT_FILES))
               if not p.is_file()]
    if missing:
        raise BookError(f"the book's web packages are not installed ({missing[0]} is missing): run "
                        "`npm ci --prefix book` (make book does), which needs Node's npm (Debian: apt-get install -y npm)")
    return folder


def library_fingerprint(mode: str) -> str:
    """A short hash of the library's sources, the reference results and the mode: the execution cache's name."""
    h = hashlib.sha256(mode.encode())
    sources = [p for p in (CHECKOUT / "fvae_lib").rglob("*.py") if p.name not in BUILD_ONLY]
    for path in sorted([*sources, CHECKOUT / "reference" / "results.jsonl", *(CHECKOUT / "reference" / "models").glob("*.pt")]):
        h.update(path.relative_to(CHECKOUT).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:12]


# --------------------------------------------------------------------------------------------------
# Staging: the Sphinx source folder
# --------------------------------------------------------------------------------------------------

def write_if_changed(path: Path, text: str | bytes) -> None:
    """Write ``path`` only when its content changes, so Sphinx rereads only what changed."""
    data = text.encode() if isinstance(text, str) else text
    if path.is_file() and path.read_bytes() == data:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp-book")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def rewrite_links(text: str, source: str, docs: set[str], repo: str, branch: str) -> str:
    """Point a Markdown text's links at what the book holds.

    ``source``: the file's path in the repository (``notebooks/05_factorvae.ipynb``); ``docs``: the repository
    paths the book has pages for. A relative link to one of them is kept; any other relative link (a library
    file, ``reference/``, a notebook not built) goes to the file on GitHub. The Colab badge becomes the site's own
    picture, and Colab links name ``repo`` and ``branch``.
    """
    depth = source.count("/")
    text = text.replace(COLAB_BADGE, "../" * depth + "_static/colab-badge.svg")
    text = text.replace(COLAB_PREFIX, f"https://colab.research.google.com/github/{repo}/blob/{branch}/")

    def target(match):
        path = match.group(2)
        if re.match(r"^[a-z][a-z0-9+.-]*:", path) or path.startswith(("/", "_static/", "../_static/", "../../_static/")):
            return match.group(0)
        resolved = os.path.normpath(os.path.join(os.path.dirname(source), path)).replace(os.sep, "/")
        if resolved in docs or resolved.startswith(".."):
            return match.group(0)
        kind = "tree" if (CHECKOUT / resolved).is_dir() else "blob"
        return f"{match.group(1)}https://github.com/{repo}/{kind}/{branch}/{resolved}{match.group(3) or ''}{match.group(4)}"

    return LINK.sub(target, text)


def banner(stem: str, mode: str, repo: str, branch: str, solutions: bool) -> str:
    """The note at the top of a notebook's page: where its outputs come from, and how to run it oneself."""
    import torch

    from . import __version__

    colab = f"https://colab.research.google.com/github/{repo}/blob/{branch}/notebooks/{stem}.ipynb"
    source = ("the shipped reference sweep's models (`reference/models`, 5,000 iterations each on a CPU) are read, "
              "not trained; everything else ran at the `cpu` mode's scale" if mode == "book" else
              "the tests' mode: a few dozen training steps, so its models are untrained; where a figure needs a "
              "trained one, the notebook shows a reference model and says so" if mode == "smoke" else
              f"runs trained in the `{mode}` mode")
    lines = [
        ":::{admonition} Reading this page",
        ":class: tip",
        f"Its outputs were produced by running the notebook top to bottom in the **`{mode}` mode** on {date.today():%Y-%m-%d} "
        f"(fvae_lib {__version__}, PyTorch {torch.__version__.split('+')[0]}, {_cpu_name()}): {source}. "
        "The notebook in git holds no outputs, and its exercises undone, as you get it.",
        "",
        f"[Open it in Colab]({colab}) to run it yourself, or "
        f"{{download}}`download the notebook <../_originals/notebooks/{stem}.ipynb>`"
        + (f"; solutions: {{doc}}`solutions/{stem}_solutions`." if solutions else "."),
        ":::",
    ]
    return "\n".join(lines)


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return f"{line.split(':', 1)[1].strip()}, {os.cpu_count()} cores"
    except OSError:
        pass
    return platform.processor() or platform.machine()


def stage_notebook(nb: dict, source: str, docs: set[str], repo: str, branch: str, banner_text: str | None = None,
                   solution_labels: set[str] | None = None, label_solutions: bool = False) -> dict:
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
            text = rewrite_links(text, source, docs, repo, branch)
            exercise = EXERCISE.match(text)
            if exercise:
                label = f"solution-{exercise.group(1)}-{exercise.group(2)}"
                if label_solutions:
                    text = f"({label})=\n{text}"
                elif solution_labels is not None and label in solution_labels:
                    text += f"\n\n*The solution:* {{ref}}`Exercise {exercise.group(1)}.{exercise.group(2)}, solved <{label}>`"
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
            and (m := EXERCISE.match("".join(c["source"])))}


def landing_page(stems: list[str], docs: set[str], repo: str, branch: str, solutions: bool = True) -> str:
    """index.md: the README, links pointed at the book, then the table of contents."""
    readme = rewrite_links((CHECKOUT / "README.md").read_text(), "README.md", docs, repo, branch)
    title, _, rest = readme.partition("\n")
    intro = (":::{admonition} The course as a book\n:class: tip\nThis is the course rendered as a book: every notebook run top to bottom, with its figures and "
             "tables, so it can be read with nothing installed. Each page says which mode produced it and links the "
             "notebook in Colab. The {doc}`latent explorer <explorer>` runs two trained decoders in this page's browser.\n:::\n")
    toc = ["", "```{toctree}", ":hidden:", ":caption: The course", ":maxdepth: 1", "",
           *(f"notebooks/{s}" for s in stems), "explorer", "```", "",
           "```{toctree}", ":hidden:", ":caption: Teaching it", ":maxdepth: 1", "", "notebooks/INSTRUCTOR_GUIDE", "```", "",
           *(["```{toctree}", ":hidden:", ":caption: Solutions", ":maxdepth: 1", "",
              *(f"notebooks/solutions/{s}_solutions" for s in stems), "```", ""] if solutions else [])]
    return f"{title}\n\n{intro}{rest}\n" + "\n".join(toc)


EXPLORER_NOTE = ("*In the book, the same kind of picture can be moved: below, the shipped reference decoders of "
                 "β-VAE β = 4 and FactorVAE γ = 35 run in your browser. Drag one latent at a time.*\n\n"
                 "<div class=\"fvae-explorer\"></div>")
EXPLORER_PAGE = """# The latent explorer

Two models from the shipped reference sweep, decoded in your browser: β-VAE with β = 4 (the paper's β-VAE baseline)
and FactorVAE with γ = 35. Pick a start image; each model starts at its own encoder's mean code for it. Then move
one latent at a time, as the traversals of notebooks 01 and 05 do, and watch whether one factor of the picture
moves (position, scale, orientation, shape) or several at once.

<div class="fvae-explorer"></div>

The decoders are the reference models' (`reference/models`, 5,000 iterations on a CPU: a sixtieth of the paper's
training), exported to ONNX by `fvae_lib.export.write_explorer` and run by onnxruntime-web, whose WebAssembly this
site serves. Each pixel is `round(255 · p)`, with p the decoder's Bernoulli mean: the picture
`fvae_lib.plots.decode_codes` computes, which the tests compare with this page's canvas. In a notebook,
`fvae_lib.explorer.latent_explorer(vae, data)` is the same explorer as a widget, for any model you trained.
"""


def stage(out: Path, stems: list[str], mode: str, solutions: bool = True) -> Path:
    """Write the Sphinx sources of the book into ``out/src``; returns that folder. ``solutions=False``: no solution
    pages and no links to them (a book to publish while the exercises are graded)."""
    from .export import write_explorer

    src = out / "src"
    repo, branch = repository()
    modules = node_modules()
    docs = {"README.md", "notebooks/INSTRUCTOR_GUIDE.md", *(f"notebooks/{s}.ipynb" for s in stems),
            *(f"notebooks/solutions/{s}_solutions.ipynb" for s in stems if solutions)}
    for stale in [*src.glob("notebooks/[0-9][0-9]_*.ipynb"), *src.glob("notebooks/solutions/*.ipynb")]:
        if stale.relative_to(src).as_posix() not in docs:  # a notebook an earlier, larger build staged
            stale.unlink()
    write_if_changed(src / "conf.py", (SOURCES / "conf.py").read_bytes())
    for file in (SOURCES / "_static").iterdir():
        write_if_changed(src / "_static" / file.name, file.read_bytes())
    _copy_tree(modules / MATHJAX_FILES, src / "_static" / "mathjax")
    for name in ORT_FILES:
        write_if_changed(src / "_static" / "ort" / name, (modules / "onnxruntime-web" / "dist" / name).read_bytes())
    explorer = src / "_static" / "explorer"
    models_hash = library_fingerprint("explorer")
    if not (explorer / f"{models_hash}.built").is_file():
        shutil.rmtree(explorer, ignore_errors=True)
        write_explorer(explorer)
        (explorer / f"{models_hash}.built").write_text("")
    write_if_changed(src / "index.md", landing_page(stems, docs, repo, branch, solutions))
    write_if_changed(src / "explorer.md", EXPLORER_PAGE)
    guide = (NOTEBOOKS / "INSTRUCTOR_GUIDE.md").read_text()
    write_if_changed(src / "notebooks" / "INSTRUCTOR_GUIDE.md",
                     rewrite_links(guide, "notebooks/INSTRUCTOR_GUIDE.md", docs, repo, branch))
    for stem in stems:
        nb = json.loads((NOTEBOOKS / f"{stem}.ipynb").read_text())
        solved = json.loads((NOTEBOOKS / "solutions" / f"{stem}_solutions.ipynb").read_text())
        labels = solution_labels(solved) if solutions else set()
        write_if_changed(src / "_originals" / "notebooks" / f"{stem}.ipynb", (NOTEBOOKS / f"{stem}.ipynb").read_bytes())
        staged = stage_notebook(nb, f"notebooks/{stem}.ipynb", docs, repo, branch,
                                banner(stem, mode, repo, branch, solutions), solution_labels=labels)
        write_if_changed(src / "notebooks" / f"{stem}.ipynb", json.dumps(staged, indent=1, ensure_ascii=False))
        if not solutions:
            continue
        staged = stage_notebook(solved, f"notebooks/solutions/{stem}_solutions.ipynb", docs, repo, branch,
                                label_solutions=True)
        write_if_changed(src / "notebooks" / "solutions" / f"{stem}_solutions.ipynb",
                         json.dumps(staged, indent=1, ensure_ascii=False))
    return src


def _copy_tree(source: Path, target: Path) -> None:
    stamp = target / ".copied-from"
    key = f"{source.resolve()} {source.stat().st_mtime_ns}"
    if stamp.is_file() and stamp.read_text() == key:
        return
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target)
    stamp.write_text(key)


# --------------------------------------------------------------------------------------------------
# Building and serving
# --------------------------------------------------------------------------------------------------

def build(out: str | os.PathLike | None = None, notebooks=None, mode: str = "book", quiet: bool = True,
          solutions: bool = True) -> Path:
    """Stage and build the book into ``out/html`` (default :func:`build_dir`); returns the html folder.

    ``notebooks``: numbers or names of the notebooks to include (default: all). ``mode``: the run mode the
    notebooks execute in (``book``; the tests use ``smoke``, whose outputs are untrained). ``solutions=False``:
    without the solution pages and the links to them.
    """
    try:
        import myst_nb  # noqa: F401
        import sphinx_book_theme  # noqa: F401
    except ImportError as err:
        raise BookError(f"building the book needs the book extra ({err.name} is missing): pip install -e '.[book]'") from None
    from .modes import MODES

    if mode not in MODES:
        raise BookError(f"unknown run mode {mode!r}; choose one of {sorted(MODES)}")
    out = Path(out) if out else build_dir()
    stems = notebook_stems(notebooks)
    src = stage(out, stems, mode, solutions)
    repo, branch = repository()
    env = dict(os.environ, FVAE_MODE=mode, FVAE_RUNS_DIR=str(out / "runs"), FVAE_BOOK_REPO=repo,
               FVAE_BOOK_BRANCH=branch, FVAE_BOOK_CACHE=str(out / "cache" / library_fingerprint(mode)),
               PYDEVD_DISABLE_FILE_VALIDATION="1")
    env.pop("MPLBACKEND", None)
    html = out / "html"
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-d", str(out / "doctrees"), "-j", "1",
               *(["-q"] if quiet else []), str(src), str(html)]
    _remove_old_caches(out / "cache", keep=library_fingerprint(mode))
    result = subprocess.run(command, env=env, cwd=src, stdout=None if not quiet else subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    if result.returncode != 0:
        tail = (result.stdout or "")[-6000:]
        raise BookError(f"sphinx-build failed (exit {result.returncode}); its output ends:\n{tail}")
    said = [line for line in (result.stdout or "").splitlines() if line.strip() and "running over TCP without encryption" not in line]
    if quiet and said:  # Sphinx's warnings (the kernels' note on their local TCP transport left out)
        print("\n".join(said))
    return html


def _remove_old_caches(folder: Path, keep: str) -> None:
    """Execution caches of other library sources or modes: only the current one is kept (each holds every
    notebook's outputs, megabytes)."""
    if folder.is_dir():
        for old in folder.iterdir():
            if old.is_dir() and old.name != keep:
                shutil.rmtree(old, ignore_errors=True)


def serve(html: str | os.PathLike, port: int = 8000, host: str = "127.0.0.1") -> None:
    """Serve the built book over HTTP (the explorer's WebAssembly does not load from file://)."""
    import functools
    import http.server

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(html))
    http.server.SimpleHTTPRequestHandler.extensions_map[".wasm"] = "application/wasm"
    with http.server.ThreadingHTTPServer((host, port), handler) as server:
        print(f"the book is at http://{host}:{port}/ (Ctrl-C stops the server)")
        server.serve_forever()
