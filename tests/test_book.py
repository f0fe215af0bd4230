"""The rendered book (fvae_lib.book): the staging, the book mode, and the built site in a real browser with every
request outside the site refused (the exported decoders themselves: test_export.py).

The browser test needs the ``book`` extra (Sphinx with myst-nb, onnx, onnxscript), and Chromium and the web packages (``npm ci --prefix book``). Each is skipped, saying what to install, where
they are missing; ``make test`` installs them.

The browser test builds a small book (the landing page, notebooks 01 and 03 in smoke mode and their solutions, the guide,
the explorer) into a temporary folder; ``FVAE_BOOK_HTML=build/book/html`` points it at a full ``make book`` build
instead, whose every page it then checks (``make book-test``).
"""
from __future__ import annotations

import functools
import http.server
import json
import os
import re
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from fvae_lib import book
from fvae_lib.plots import decode_codes

REPO = Path(__file__).resolve().parent.parent
SCREENSHOTS = REPO / "tests" / "screenshots"


def _has(*modules) -> str | None:
    for module in modules:
        try:
            __import__(module)
        except ImportError:
            return module
    return None


# --------------------------------------------------------------------------------------------------
# Building
# --------------------------------------------------------------------------------------------------

def test_the_book_names_its_notebooks_and_says_what_is_missing(monkeypatch, tmp_path):
    assert book.notebook_stems(["05"]) == ["05_factorvae"]
    assert len(book.notebook_stems()) == 8
    with pytest.raises(book.BookError, match="no notebook 42"):
        book.notebook_stems(["42"])
    monkeypatch.setattr(book, "SOURCES", tmp_path)
    with pytest.raises(book.BookError, match="npm ci --prefix book"):
        book.node_modules()


def test_the_fork_the_book_is_built_in_is_the_one_it_links(monkeypatch):
    for var in ("FVAE_BOOK_REPO", "GITHUB_REPOSITORY", "FVAE_BOOK_BRANCH", "GITHUB_REF_NAME"):
        monkeypatch.delenv(var, raising=False)
    assert book.repository() == ("fvae-course/factorvae", "main")
    monkeypatch.setenv("GITHUB_REPOSITORY", "someone/factorvae")
    assert book.repository() == ("someone/factorvae", "main")
    monkeypatch.setenv("FVAE_BOOK_REPO", "other/fvae")
    monkeypatch.setenv("FVAE_BOOK_BRANCH", "course-2027")
    assert book.repository() == ("other/fvae", "course-2027")


def test_the_execution_cache_is_named_after_the_library_the_reference_and_the_mode(tmp_path, monkeypatch):
    import shutil

    assert book.library_fingerprint("book") == book.library_fingerprint("book")
    assert book.library_fingerprint("book") != book.library_fingerprint("smoke")
    copy = tmp_path / "checkout"  # a checkout of our own to change: the library's files and the reference
    shutil.copytree(REPO / "fvae_lib", copy / "fvae_lib", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "reference", copy / "reference")
    monkeypatch.setattr(book, "CHECKOUT", copy)
    monkeypatch.setenv("FVAE_REFERENCE", str(copy / "reference"))
    before = book.library_fingerprint("book")
    (copy / "fvae_lib" / "book.py").write_text("# the builder's own code: no notebook runs it\n")
    assert book.library_fingerprint("book") == before
    with open(copy / "fvae_lib" / "metrics.py", "a") as f:
        f.write("\n# a changed library\n")
    changed = book.library_fingerprint("book")
    assert changed != before
    with open(copy / "reference" / "runs" / "betavae_b4" / "history.jsonl", "a") as f:
        f.write("\n")
    assert book.library_fingerprint("book") != changed  # what the book mode reads from the reference


# --------------------------------------------------------------------------------------------------
# The book mode: the reference models, not retrained
# --------------------------------------------------------------------------------------------------

def test_the_book_mode_reads_the_shipped_models_and_trains_nothing(monkeypatch, tmp_path, capsys):
    from fvae_lib.modes import MODES
    from fvae_lib.notebook import load_or_train, reference_run
    from fvae_lib.reference import load_reference_model, reference_history

    monkeypatch.setenv("FVAE_RUNS_DIR", str(tmp_path))
    mode = MODES["book"]
    for name, model, overrides in [("betavae_b16", "betavae", dict(beta=16.0)), ("factorvae_g35", "factorvae", dict(gamma=35.0))]:
        vae, config, history = load_or_train(name, mode, model=model, **overrides)
        shipped, _ = load_reference_model(name)
        assert all(torch.equal(a, b) for a, b in zip(vae.state_dict().values(), shipped.state_dict().values()))
        assert config.iterations == 5000 and history == reference_history(name) and not vae.training
        assert f"{name}: the reference model (5,000 iterations" in capsys.readouterr().out
    assert not list(tmp_path.iterdir())  # no run folder: nothing trained
    with pytest.raises(ValueError, match="other settings .*beta"):
        load_or_train("betavae_b16", mode, model="betavae", beta=4.0)
    assert reference_run("factorvae_g35_yours", "factorvae", dict(gamma=35.0)) is None  # not shipped: trained


# --------------------------------------------------------------------------------------------------
# The built book in a real browser
# --------------------------------------------------------------------------------------------------

def _browser_missing() -> str | None:
    from test_browser import find_chromium

    if find_chromium() is None:
        return "no Chromium found (apt-get install -y chromium chromium-driver)"
    if (missing := _has("playwright", "myst_nb", "sphinx_book_theme", "onnxscript")) is not None:
        return f"{missing} is not installed (pip install -e '.[dev,book]')"
    if not os.environ.get("FVAE_BOOK_HTML"):
        try:
            book.node_modules()
        except book.BookError as err:
            return str(err)
    return None


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The built book's html folder, served on 127.0.0.1; yields (base URL, folder)."""
    if (reason := _browser_missing()) is not None:
        pytest.skip(f"book browser test skipped: {reason}")
    if os.environ.get("FVAE_BOOK_HTML"):
        html = Path(os.environ["FVAE_BOOK_HTML"]).resolve()
    else:
        html = book.build(tmp_path_factory.mktemp("book"), notebooks=["01", "03"], mode="smoke")
    handler = functools.partial(_QuietHandler, directory=str(html))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", html
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, ".wasm": "application/wasm",
                      ".mjs": "text/javascript"}

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def offline(site):
    """A browser context in which every request outside the site is refused, and recorded."""
    from playwright.sync_api import sync_playwright
    from test_browser import CHROMIUM_ARGS, find_chromium

    base, _ = site
    outside: list[str] = []

    def route(r):
        if r.request.url.startswith(base) or r.request.url.startswith("data:"):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=find_chromium(), args=CHROMIUM_ARGS)
        context = chromium.new_context(viewport={"width": 1280, "height": 900})
        context.route("**/*", route)
        yield context, outside
        chromium.close()


def _open(context, url: str):
    """A page loaded and typeset, with the console's errors and the page's exceptions collected."""
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.wait_for_load_state("load")
    page.wait_for_function("() => !window.MathJax || (MathJax.startup && MathJax.startup.promise)", timeout=60_000)
    page.evaluate("() => window.MathJax ? MathJax.startup.promise : null")
    return page, errors


def _pages(html: Path) -> list[str]:
    return sorted(p.relative_to(html).as_posix() for p in html.rglob("*.html")
                  if not p.relative_to(html).as_posix().startswith(("_", "genindex", "search")))


def test_every_page_loads_offline_typeset_with_its_pictures(site, offline):
    base, html = site
    context, outside = offline
    pages = _pages(html)
    mode = "smoke" if not os.environ.get("FVAE_BOOK_HTML") else os.environ.get("FVAE_BOOK_MODE", "book")
    assert {"index.html", "explorer.html", "notebooks/INSTRUCTOR_GUIDE.html"} <= set(pages)
    assert any(p.startswith("notebooks/0") for p in pages) and any(p.startswith("notebooks/solutions/") for p in pages)
    typeset = 0
    for name in pages:
        page, errors = _open(context, base + name)
        assert not errors, (name, errors)
        # the page's prose, without code: a Python string may well hold a backslash-parenthesis
        text = page.evaluate("""() => { const a = (document.querySelector('article') || document.body).cloneNode(true);
            a.querySelectorAll('pre, code').forEach(e => e.remove()); return a.innerText; }""")
        assert "$$" not in text and "\\(" not in text and "\\[" not in text, (name, "untypeset mathematics")
        assert not re.search(r"<Figure size [\d.]+x[\d.]+ with \d+ Axes>", text), name  # a figure shown as text
        broken = page.evaluate("() => [...document.images].filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src)")
        assert not broken, (name, broken)
        for href in page.evaluate("() => [...document.querySelectorAll('a[href]')].map(a => a.href)"):
            if href.startswith(base):  # a link inside the site names a file that is there
                target = href[len(base):].split("#")[0].split("?")[0] or "index.html"
                assert (html / target).exists(), (name, href)
        for i in range(page.locator(".fvae-explorer").count()):  # an explorer in a notebook's page starts too
            page.wait_for_function("i => document.querySelectorAll('.fvae-explorer')[i].dataset.ready", arg=i, timeout=120_000)
            assert page.evaluate("i => document.querySelectorAll('.fvae-explorer')[i].dataset.ready", i) == "true", name
            if name == "notebooks/05_factorvae.html":
                SCREENSHOTS.mkdir(exist_ok=True)
                page.locator(".fvae-explorer").nth(i).screenshot(path=str(SCREENSHOTS / "book_05_explorer.png"))
        if name.startswith("notebooks/solutions/"):
            assert page.locator(".admonition", has_text=f"{mode} mode").count() >= 1, name
        if name.startswith("notebooks/0"):
            assert page.locator(".admonition", has_text=f"{mode} mode").count() >= 1, name  # which mode produced it
            assert page.locator("img").count() > 0, name
            typeset += page.locator("mjx-container").count()
            assert page.locator("a.reference.download").count() >= 1, name
        page.close()
    assert not outside, f"pages asked for files outside the site: {sorted(set(outside))[:5]}"
    assert typeset > 10, "the notebooks' equations were not typeset by MathJax"
    SCREENSHOTS.mkdir(exist_ok=True)
    shown = "notebooks/05_factorvae.html" if "notebooks/05_factorvae.html" in pages else next(p for p in pages if p.startswith("notebooks/0"))
    for name, shot in [("index.html", "book_landing"), (shown, "book_notebook")]:
        page, _ = _open(context, base + name)
        page.screenshot(path=str(SCREENSHOTS / f"{shot}.png"))
        page.close()


def _canvas(page, model: str) -> tuple[list[float], np.ndarray, int]:
    """The code a panel last drew, its canvas's grey levels (64, 64) and its draw count."""
    got = page.evaluate("""name => {
        const c = document.querySelector(`canvas.fvae-canvas[data-model="${name}"]`);
        const px = c.getContext('2d').getImageData(0, 0, 64, 64).data;
        return {code: JSON.parse(c.dataset.code), draws: Number(c.dataset.draws), grey: Array.from(px.filter((_, i) => i % 4 === 0))};
    }""", model)
    return got["code"], np.array(got["grey"], dtype=float).reshape(64, 64), got["draws"]


def _assert_draws_torchs_decoding(page, model: str) -> list[float]:
    from fvae_lib.reference import load_reference_model

    code, grey, _ = _canvas(page, model)
    vae, _ = load_reference_model(model)
    expected = 255 * decode_codes(vae, [code])[0]
    assert np.abs(grey - expected).max() <= 2, (model, np.abs(grey - expected).max())
    return code


def test_the_explorer_runs_the_decoders_in_the_page_and_draws_what_torch_decodes(site, offline):
    base, html = site
    context, outside = offline
    bundle = json.loads((html / "_static" / "explorer" / "explorer.json").read_text())
    page, errors = _open(context, base + "explorer.html")
    page.wait_for_function("() => document.querySelector('.fvae-explorer').dataset.ready", timeout=120_000)
    assert page.evaluate("() => document.querySelector('.fvae-explorer').dataset.ready") == "true", \
        page.inner_text(".fvae-explorer")
    for model in bundle["models"]:
        code = _assert_draws_torchs_decoding(page, model["name"])
        assert np.allclose(code, model["codes"][0], atol=1e-6)  # it starts at the first image's code
    # move the most informative latent of the second model: its canvas changes, to torch's decoding of the new code
    model = bundle["models"][1]
    top = model["order"][0]
    _, before, draws = _canvas(page, model["name"])
    slider = page.locator(f'.fvae-panel:has(canvas[data-model="{model["name"]}"]) input[data-latent="{top}"]')
    value = -2.0 if model["codes"][0][top] > 0 else 2.0
    slider.fill(str(value))
    page.wait_for_function("""([name, n]) => Number(document.querySelector(`canvas[data-model="${name}"]`).dataset.draws) > n""",
                           arg=[model["name"], draws], timeout=30_000)
    code = _assert_draws_torchs_decoding(page, model["name"])
    assert code[top] == pytest.approx(value) and np.abs(_canvas(page, model["name"])[1] - before).max() > 50
    # another start image: every panel goes to that image's code
    page.locator(".fvae-pick[data-image='2']").click()
    for m in bundle["models"]:
        page.wait_for_function("""([name, want]) => { const c = document.querySelector(`canvas[data-model="${name}"]`);
            return JSON.parse(c.dataset.code).every((v, j) => Math.abs(v - want[j]) < 1e-6); }""",
                               arg=[m["name"], m["codes"][2]], timeout=30_000)
        _assert_draws_torchs_decoding(page, m["name"])
    assert not errors and not outside, (errors, outside)
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "book_explorer.png"), full_page=True)


def test_the_pages_workflow_builds_the_book_where_the_builder_writes_it():
    yaml = pytest.importorskip("yaml")
    flow = yaml.safe_load((REPO / ".github" / "workflows" / "book.yml").read_text())
    steps = flow["jobs"]["build"]["steps"]
    assert any(s.get("run", "").strip().startswith("make book ") for s in steps)
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-pages-artifact"))
    assert upload["with"]["path"] == "build/book/html"  # the builder's folder in a checkout, FVAE_BOOK_DIR unset
    assert any("make book-test" in s.get("run", "") for s in steps)  # what is published was checked in a browser
    assert flow["permissions"]["pages"] == "write" and flow["jobs"]["deploy"]["needs"] == "build"
    makefile = (REPO / "Makefile").read_text()
    assert "\nbook: " in makefile and "-m fvae_lib book" in makefile
