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
import shutil
import subprocess
import sys
from pathlib import Path

from .book_pages import (DEFAULT_REPO, EXPLORER_PAGE, banner, landing_page, rewrite_links, solution_labels, solutions_banner,
                         stage_notebook)
from .paths import CHECKOUT, configured_folder

SOURCES = CHECKOUT / "book"  # conf.py, _static/ (explorer.js, explorer.css, the badge), package.json
NOTEBOOKS = CHECKOUT / "notebooks"
MATHJAX_FILES = "mathjax/es5"  # in node_modules: tex-chtml.js, its fonts and extensions
ORT_FILES = ("ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")  # onnxruntime-web/dist
BUILD_ONLY = ("book.py", "book_pages.py", "export.py", "__main__.py")  # library files no notebook runs: left out of the cache's name


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


def library_fingerprint(mode: str, only: tuple[str, ...] | None = None) -> str:
    """A short hash of what the notebooks' outputs depend on besides their own code: the library's sources, the
    whole reference folder the book mode reads, the versions of torch, numpy and matplotlib, the dSprites source
    (the real file or the replica) and the mode. The execution cache is named after it. ``only``: hash just these
    library files (the explorer's key), with the reference models and the versions."""
    import matplotlib
    import numpy
    import torch

    from .data.dsprites import resolve_source
    from .reference import reference_dir

    h = hashlib.sha256(f"{mode} torch {torch.__version__} numpy {numpy.__version__} matplotlib {matplotlib.__version__} "
                       f"data {resolve_source('auto')}".encode())
    library = CHECKOUT / "fvae_lib"
    sources = [library / name for name in only] if only else \
        [p for p in library.rglob("*.py") if p.name not in BUILD_ONLY and "__pycache__" not in p.parts]
    try:
        reference = reference_dir()
    except FileNotFoundError:
        reference = None
    shipped = [p for p in reference.rglob("*") if p.is_file()] if reference else []
    for path in sorted(sources) + sorted(shipped):
        h.update(path.name.encode())
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
    models_hash = library_fingerprint("explorer", only=("export.py", "plots.py", "models.py"))
    if not (explorer / f"{models_hash}.built").is_file():
        shutil.rmtree(explorer, ignore_errors=True)
        write_explorer(explorer)
        (explorer / f"{models_hash}.built").write_text("")
    images: set[str] = set()  # pictures the texts show by a relative path: copied to the same place
    write_if_changed(src / "index.md", landing_page(stems, docs, repo, branch, solutions, images))
    write_if_changed(src / "explorer.md", EXPLORER_PAGE)
    guide = (NOTEBOOKS / "INSTRUCTOR_GUIDE.md").read_text()
    write_if_changed(src / "notebooks" / "INSTRUCTOR_GUIDE.md",
                     rewrite_links(guide, "notebooks/INSTRUCTOR_GUIDE.md", docs, repo, branch, images))
    for stem in stems:
        nb = json.loads((NOTEBOOKS / f"{stem}.ipynb").read_text())
        solved = json.loads((NOTEBOOKS / "solutions" / f"{stem}_solutions.ipynb").read_text())
        labels = solution_labels(solved) if solutions else set()
        write_if_changed(src / "_originals" / "notebooks" / f"{stem}.ipynb", (NOTEBOOKS / f"{stem}.ipynb").read_bytes())
        staged = stage_notebook(nb, f"notebooks/{stem}.ipynb", docs, repo, branch,
                                banner(stem, mode, repo, branch, solutions), solution_labels=labels, images=images)
        write_if_changed(src / "notebooks" / f"{stem}.ipynb", json.dumps(staged, indent=1, ensure_ascii=False))
        if not solutions:
            continue
        staged = stage_notebook(solved, f"notebooks/solutions/{stem}_solutions.ipynb", docs, repo, branch,
                                solutions_banner(stem, mode), label_solutions=True, images=images)
        write_if_changed(src / "notebooks" / "solutions" / f"{stem}_solutions.ipynb",
                         json.dumps(staged, indent=1, ensure_ascii=False))
    for image in images:
        write_if_changed(src / image, (CHECKOUT / image).read_bytes())
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
    from .modes import MODES

    if mode not in MODES:
        raise BookError(f"unknown run mode {mode!r}; choose one of {sorted(MODES)}")
    stems = notebook_stems(notebooks)
    for module in ("myst_nb", "sphinx_book_theme", "onnx", "onnxscript"):
        try:
            __import__(module)
        except ImportError:
            raise BookError(f"building the book needs the book extra ({module} is missing): pip install -e '.[book]'") from None
    out = Path(out) if out else build_dir()
    src = stage(out, stems, mode, solutions)
    repo, branch = repository()
    fingerprint = library_fingerprint(mode)
    cache = out / "cache" / mode / fingerprint
    env = dict(os.environ, FVAE_MODE=mode, FVAE_RUNS_DIR=str(out / "runs"), FVAE_BOOK_REPO=repo,
               FVAE_BOOK_BRANCH=branch, FVAE_BOOK_CACHE=str(cache), PYDEVD_DISABLE_FILE_VALIDATION="1")
    env.pop("MPLBACKEND", None)
    html = out / "html"
    _forget_other_pages(out, stems, solutions)
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-d", str(out / "doctrees"), "-j", "1",
               *(["-q"] if quiet else []), str(src), str(html)]
    _remove_old_caches(out / "cache", mode, keep=fingerprint)
    if quiet:
        print(f"building the book: {len(stems)} notebooks{' and their solutions' if solutions else ''}, executed in the "
              f"{mode} mode (cached in {cache}; the first build takes minutes)", flush=True)
    result = subprocess.run(command, env=env, cwd=src, stdout=None if not quiet else subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    if result.returncode != 0:
        tail = (result.stdout or "")[-6000:]
        raise BookError(f"sphinx-build failed (exit {result.returncode}); its output ends:\n{tail}")
    said = [line for line in (result.stdout or "").splitlines() if line.strip() and "running over TCP without encryption" not in line]
    if quiet and said:  # Sphinx's warnings (the kernels' note on their local TCP transport left out)
        print("\n".join(said))
    return html


def _remove_old_caches(folder: Path, mode: str, keep: str) -> None:
    """Execution caches of this mode made from other library sources: they can never be hit again (each holds
    every notebook's outputs, megabytes). Other modes' caches are kept."""
    from .modes import MODES

    for old in [*(folder / mode).glob("*"), *(p for p in folder.glob("*") if p.name not in MODES)]:
        if old.is_dir() and old.name != keep:
            shutil.rmtree(old, ignore_errors=True)


def _forget_other_pages(out: Path, stems: list[str], solutions: bool) -> None:
    """A build of other pages than the last (fewer notebooks, no solutions) starts its site afresh: Sphinx never
    deletes a page, so the last build's would stay and be published (its solutions included)."""
    record = out / "pages.json"
    pages = json.dumps({"notebooks": stems, "solutions": solutions})
    if record.is_file() and record.read_text() == pages:
        return
    shutil.rmtree(out / "html", ignore_errors=True)
    shutil.rmtree(out / "doctrees", ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    write_if_changed(record, pages)


def serve(html: str | os.PathLike, port: int = 8000, host: str = "127.0.0.1") -> None:
    """Serve the built book over HTTP (the explorer's WebAssembly does not load from file://)."""
    import functools
    import http.server

    class Handler(http.server.SimpleHTTPRequestHandler):
        extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, ".wasm": "application/wasm",
                          ".mjs": "text/javascript"}

    handler = functools.partial(Handler, directory=str(html))
    try:
        server = http.server.ThreadingHTTPServer((host, port), handler)
    except OSError as err:
        raise BookError(f"cannot serve on {host}:{port} ({err.strerror}); choose another port: --port 8001") from None
    with server:
        print(f"the book is at http://{host}:{port}/ (Ctrl-C stops the server)")
        server.serve_forever()
