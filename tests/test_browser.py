"""Notebooks 03 and 05 as a learner meets them: in JupyterLab, in a real (headless) Chromium.

The test starts JupyterLab on 127.0.0.1 (a free port, a random token) over copies of the notebooks in a
temporary folder, opens each notebook, runs all cells in smoke mode and waits for the kernel. Then it
checks what is on the page and in the saved notebook: no error output, every picture the kernel sent is
rendered as an image (none shown as ``<Figure ...>`` text), and the widgets work: the slider renders,
and dragging it changes the picture. Full-page screenshots go to ``tests/screenshots/`` (ignored by git)
for a person to look at.

Needs Chromium (Debian: ``apt-get install -y chromium chromium-driver``; or ``FVAE_CHROMIUM=/path``),
and the ``lab`` and ``dev`` extras (JupyterLab, Playwright's Python client, which drives the system
Chromium; no browser download). Skipped, saying so, where they are missing; ``.ci/run`` installs them.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCREENSHOTS = REPO / "tests" / "screenshots"
NOTEBOOKS = ["03_total_correlation_and_permutation.ipynb", "05_factorvae.ipynb"]
# Chromium as root, headless, on a machine with no network beyond loopback: no sandbox, no GPU, and no
# background connections (each would be refused and retried).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
# Every cell in the page (no virtual scrolling), and no news or update prompts over the notebook.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false", "checkForUpdates": False},
}
HOW_TO_ENABLE = "apt-get install -y chromium chromium-driver, and pip install -e '.[dev,lab]'"


def find_chromium() -> str | None:
    for candidate in (os.environ.get("FVAE_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if candidate and (path := shutil.which(candidate)):
            return path
    return None


def missing_requirements() -> str | None:
    if find_chromium() is None:
        return "no Chromium found"
    for module in ("playwright", "jupyterlab"):
        try:
            __import__(module)
        except ImportError:
            return f"{module} is not installed"
    return None


pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.skipif(missing_requirements() is not None,
                       reason=f"browser test skipped: {missing_requirements()} (to enable: {HOW_TO_ENABLE})"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server over copies of the notebooks; yields (base URL, token, its root folder)."""
    root = tmp_path_factory.mktemp("lab")
    for name in NOTEBOOKS:
        shutil.copy(REPO / "notebooks" / name, root / name)
    settings = tmp_path_factory.mktemp("lab-settings")
    for rel, values in LAB_SETTINGS.items():
        (settings / rel).parent.mkdir(parents=True, exist_ok=True)
        (settings / rel).write_text(json.dumps(values))
    port, token = free_port(), secrets.token_hex(16)
    env = dict(os.environ, FVAE_MODE="smoke", FVAE_RUNS_DIR=str(tmp_path_factory.mktemp("runs")),
               JUPYTERLAB_SETTINGS_DIR=str(settings), JUPYTERLAB_WORKSPACES_DIR=str(tmp_path_factory.mktemp("ws")))
    env.pop("MPLBACKEND", None)  # kernels start as a learner's do
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", "--ServerApp.port_retries=0"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # CI runs as root, where JupyterLab refuses to start without it
    log = open(root.parent / "jupyterlab.log", "w")
    server = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                log.flush()
                pytest.fail(f"JupyterLab did not start:\n{(root.parent / 'jupyterlab.log').read_text()[-3000:]}")
            time.sleep(0.5)
        yield url, token, root
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=find_chromium(), args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


def run_all_cells(page, timeout_s: float = float(os.environ.get("FVAE_BROWSER_TIMEOUT", 300))) -> None:
    page.get_by_text("Python 3 (ipykernel) | Idle").wait_for(timeout=90_000)
    page.locator(".lm-MenuBar-item", has_text="Run").first.click()
    page.locator(".lm-Menu-item:visible", has_text="Run All Cells").first.click()
    # done when every code cell shows an execution count ([3]:, not [*]: or [ ]:) and the kernel is idle
    page.wait_for_function("""() => {
        const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map(e => e.textContent.trim());
        return prompts.length > 0 && prompts.every(t => /^\\[\\d+\\]:$/.test(t));
    }""", timeout=timeout_s * 1000)
    wait_for_idle_kernel(page)


def save_notebook(page, path: Path) -> dict:
    before = path.stat().st_mtime_ns
    page.locator(".jp-Notebook").first.click(position={"x": 5, "y": 5})  # focus the notebook, not an editor
    page.keyboard.press("Control+s")
    deadline = time.monotonic() + 60
    while True:  # until the file on disk is a new, whole notebook (Jupyter writes it to a temporary and renames it)
        if path.stat().st_mtime_ns != before:
            try:
                return json.loads(path.read_text())
            except ValueError:
                pass
        assert time.monotonic() < deadline, "the notebook was not saved"
        time.sleep(0.2)


def next_frames(page) -> None:
    """Wait until the page has laid out and painted (two animation frames) after a change to its size or scroll."""
    page.evaluate("() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")


def full_page_screenshot(page, path: Path) -> None:
    """The whole notebook in one picture: make the viewport as tall as the notebook's scrolled content."""
    chrome = page.viewport_size["height"] - page.evaluate("() => document.querySelector('.jp-WindowedPanel-outer').clientHeight")
    height = page.evaluate("() => document.querySelector('.jp-WindowedPanel-outer').scrollHeight")
    size = page.viewport_size
    page.set_viewport_size({"width": size["width"], "height": min(height + chrome, 16_000)})
    page.evaluate("() => { document.querySelector('.jp-WindowedPanel-outer').scrollTop = 0; }")
    next_frames(page)
    page.screenshot(path=str(path))
    page.set_viewport_size(size)
    next_frames(page)


def wait_for_idle_kernel(page, timeout_s: float = 60) -> None:
    page.get_by_text("Python 3 (ipykernel) | Idle").wait_for(timeout=timeout_s * 1000)


# The picture a cell shows, read in one step inside the page: the ``src`` of its last image. A redraw replaces
# the <img> element, so a handle to it taken before (a locator resolved, then screenshot) can point at a node
# that is gone by the time it is used ("Element is not attached to the DOM"). The cell itself stays.
PICTURE_SOURCE = "cell => { const imgs = cell.querySelectorAll('img'); return imgs.length ? imgs[imgs.length - 1].src : null; }"


def picture_source(cell) -> str | None:
    return cell.evaluate(PICTURE_SOURCE)


def move_slider_and_wait_for_new_picture(page, cell, timeout_s: float = 60) -> None:
    """Drag the first slider in ``cell`` and wait until the cell's picture (the last image in it) changes.

    It waits on conditions, never on a guessed time: the kernel idle before the drag, the picture's source
    different from the one before it (re-read in the page at each poll), and the kernel idle again after.
    """
    wait_for_idle_kernel(page)
    before = picture_source(cell)
    assert before, "the widget cell shows no picture"
    handle = cell.locator(".noUi-handle").first
    handle.scroll_into_view_if_needed()
    box = handle.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 90, y, steps=6)
    page.mouse.up()
    deadline = time.monotonic() + timeout_s
    while picture_source(cell) in (before, None):  # None: between the old picture's removal and the new one's
        assert time.monotonic() < deadline, f"moving the slider did not change the picture within {timeout_s:g} s"
        page.wait_for_timeout(250)
    wait_for_idle_kernel(page)


def element_screenshot(locator, path: Path, tries: int = 5) -> None:
    """A screenshot of an output that a redraw may replace under us: re-located and retried on a detached node."""
    for attempt in range(tries):
        try:
            locator.screenshot(path=str(path))
            return
        except Exception as err:  # noqa: BLE001 -- playwright's Error, "not attached to the DOM"
            if "not attached" not in str(err) or attempt == tries - 1:
                raise


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_in_jupyterlab_with_its_figures_and_widgets(lab, browser, name):
    url, token, root = lab
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    try:
        # a workspace of its own, reset: only this notebook open, whatever an earlier page left
        page.goto(f"{url}/lab/workspaces/{name[:2]}/tree/{name}?reset&token={token}")
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
        run_all_cells(page)
        saved = save_notebook(page, root / name)

        # no error output, in the saved notebook or on the page
        cell_errors = [(i, o["ename"], o["evalue"]) for i, c in enumerate(saved["cells"]) if c["cell_type"] == "code"
                       for o in c["outputs"] if o["output_type"] == "error"]
        assert not cell_errors, f"cells raised: {cell_errors}"
        assert page.locator(".jp-OutputArea-output", has_text="Traceback").count() == 0

        # every picture the kernel sent is an image on the page, rendered with a size; none shown as text
        as_text = page.locator(".jp-OutputArea-output", has_text="<Figure size")
        assert as_text.count() == 0, f"a figure shown as text: {as_text.first.inner_text()}"
        sent = sum("image/png" in o.get("data", {}) for c in saved["cells"] if c["cell_type"] == "code" for o in c["outputs"])
        sizes = page.evaluate("""() => [...document.querySelectorAll('.jp-OutputArea-output img')]
                                        .map(i => [i.complete, i.naturalWidth, i.naturalHeight])""")
        rendered = [s for s in sizes if s[0] and s[1] > 50 and s[2] > 50]
        assert sent >= 2 and len(rendered) >= sent, f"{sent} pictures sent, {len(rendered)} rendered: {sizes}"

        # the widget renders with its slider, and moving the slider changes the picture
        widget_cells = page.locator(".jp-CodeCell").filter(has=page.locator(".noUi-handle"))
        assert widget_cells.count() >= 1, "no slider rendered (is the ipywidgets extension missing?)"
        full_page_screenshot(page, SCREENSHOTS / name.replace(".ipynb", ".png"))
        for i in range(widget_cells.count()):
            move_slider_and_wait_for_new_picture(page, widget_cells.nth(i))
        element_screenshot(widget_cells.last, SCREENSHOTS / name.replace(".ipynb", "_after_slider.png"))
        assert not errors, f"JavaScript errors on the page: {errors}"
    except Exception:
        page.screenshot(path=str(SCREENSHOTS / name.replace(".ipynb", "_failure.png")))
        raise
    finally:
        page.close()
    print(f"screenshots: {SCREENSHOTS}")
