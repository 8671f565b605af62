"""Lesson 01 in a real browser: JupyterLab runs every cell, and the feature-map explorer reacts to clicks.

nbval proves the lessons execute; only a browser proves that what a learner *sees* works: the notebook
opens in JupyterLab, Run All finishes without an error, and the ipywidgets explorer renders and redraws
its channel view when a layer is picked. Screenshots for the README are written to build/screenshots/.

Run with ``make test-browser`` (installs Playwright and Debian's chromium; skipped without them).
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LESSON = "01_what_is_transfer_learning.ipynb"
SCREENSHOTS = ROOT / "build" / "screenshots"
LOAD_MS = 180_000  # JupyterLab's first page load and kernel start on a busy CPU
RUN_SECONDS = 480  # Run All for lesson 01 in the ci profile (~40-90 s measured)
REDRAW_MS = 120_000  # one explorer update: a forward pass of the probe model, then a PNG

pytestmark = pytest.mark.slow

NOTEBOOK = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook"

# The run's state as the learner sees it: each code cell's prompt ("[ ]:", "[*]:", "[3]:") and the
# kernel indicator in the notebook toolbar.
RUN_STATE_JS = """
() => {
  const cells = [...document.querySelectorAll('NOTEBOOK .jp-CodeCell')];
  const prompts = cells.map(c => (c.querySelector('.jp-InputArea-prompt') || {}).textContent || '');
  const indicator = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator');
  return {prompts, status: indicator ? indicator.getAttribute('data-status') : null};
}
""".replace("NOTEBOOK", NOTEBOOK)

# Error outputs are rendered as the stderr text of their traceback; warnings are stderr too, but
# only an error carries IPython's "Traceback (most recent call last)" header.
DOM_ERRORS_JS = """
() => [...document.querySelectorAll('NOTEBOOK .jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')]
  .map(node => node.innerText)
  .filter(text => text.includes('Traceback (most recent call last)'))
""".replace("NOTEBOOK", NOTEBOOK)


def _menu(page, menu: str, item: str) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(rf"^{menu}$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(rf"^{item}$")).click()


def _wait_for_run(page, *, seconds: float) -> dict:
    """Poll until the kernel is idle and no cell is queued or running ([*]) after Run All."""
    deadline = time.monotonic() + seconds
    while True:
        state = page.evaluate(RUN_STATE_JS)
        ran = [p for p in state["prompts"] if re.search(r"\[\d+\]", p)]
        if state["status"] == "idle" and ran and not any("*" in p for p in state["prompts"]):
            return state
        if time.monotonic() > deadline:
            pending = sum("*" in p for p in state["prompts"])
            pytest.fail(
                f"Run All did not finish in {seconds:.0f} s: kernel {state['status']}, "
                f"{len(ran)}/{len(state['prompts'])} cells ran, {pending} still queued or running"
            )
        page.wait_for_timeout(1000)


def _saved_errors(path: Path) -> list[str]:
    notebook = json.loads(path.read_text())
    return [
        f"cell {i}: {out['ename']}: {out['evalue']}"
        for i, cell in enumerate(notebook["cells"])
        for out in cell.get("outputs", [])
        if out.get("output_type") == "error"
    ]


@pytest.fixture(scope="module")
def lesson(browser, lab):
    """Lesson 01, copied next to the server, opened in JupyterLab and run with Run → Run All Cells.

    Yields the page; the notebook copy is saved from the browser after the run, so its outputs are
    exactly what JupyterLab holds.
    """
    shutil.copy(ROOT / "notebooks" / LESSON, lab.root / LESSON)  # never the repository's own file
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(60_000)
    page = context.new_page()
    try:
        page.goto(lab.tree_url(LESSON), wait_until="domcontentloaded", timeout=LOAD_MS)
        page.locator(f"{NOTEBOOK} .jp-Cell").first.wait_for(state="visible", timeout=LOAD_MS)
        # The status bar says "Python 3 (ipykernel) | Idle" once the kernel has started and connected.
        page.locator(".jp-StatusBar-Item", has_text=re.compile(r"\|\s*Idle$")).wait_for(timeout=LOAD_MS)
        started = time.monotonic()
        _menu(page, "Run", "Run All Cells")
        state = _wait_for_run(page, seconds=RUN_SECONDS)
        seconds = time.monotonic() - started
        _menu(page, "File", "Save Notebook")
        page.locator(".lm-TabBar-tab.lm-mod-current.jp-mod-dirty").wait_for(state="detached", timeout=60_000)
    except BaseException:  # pytest.fail too: keep what the browser showed for the report
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(Exception):
            page.screenshot(path=SCREENSHOTS / "failure_lab_lesson01.png")
        context.close()
        raise
    yield {"page": page, "state": state, "seconds": seconds, "path": lab.root / LESSON}
    context.close()


def test_lesson_01_runs_in_jupyterlab_without_errors(lesson):
    page = lesson["page"]
    errors = _saved_errors(lesson["path"]) + [text[-2000:] for text in page.evaluate(DOM_ERRORS_JS)]
    prompts = lesson["state"]["prompts"]
    ran = sum(bool(re.search(r"\[\d+\]", p)) for p in prompts)
    assert not errors, f"error output after Run All ({ran}/{len(prompts)} cells ran):\n" + "\n".join(errors)
    assert ran == len(prompts), f"only {ran}/{len(prompts)} code cells ran: {prompts}"
    print(f"Run All: {len(prompts)} code cells in {lesson['seconds']:.0f} s")

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.locator(f"{NOTEBOOK} .jp-Cell").first.scroll_into_view_if_needed()
    page.screenshot(path=SCREENSHOTS / "lab_lesson01.png")
    figures = page.locator(f'{NOTEBOOK} .jp-OutputArea-output[data-mime-type="image/png"] img')
    assert figures.count() >= 3, f"expected the lesson's figures, found {figures.count()}"
    figures.last.scroll_into_view_if_needed()  # the experiment's result: transfer vs. from scratch
    page.screenshot(path=SCREENSHOTS / "lab_lesson01_results.png")


def test_feature_map_explorer_redraws_when_a_layer_is_picked(lesson):
    page = lesson["page"]
    cell = page.locator(f"{NOTEBOOK} .jp-CodeCell", has_text="FeatureMapExplorer(lite0)")
    assert cell.count() == 1, "lesson 01 no longer has the explorer cell"
    explorer = cell.locator(".jp-OutputArea-output .widget-vbox").first
    explorer.wait_for(state="visible", timeout=REDRAW_MS)
    layer = explorer.locator(".widget-dropdown", has=page.locator("label", has_text=re.compile(r"^layer$")))
    depth = explorer.locator(".widget-slider", has=page.locator("label", has_text=re.compile(r"^depth$")))
    images = explorer.locator("img.widget-image")
    header = explorer.locator(".widget-html-content").first
    assert layer.count() == 1 and depth.count() == 1, (
        "the explorer's layer dropdown or depth slider is missing"
    )
    assert images.count() == 2, f"expected the thumbnail and the channel view, found {images.count()} images"
    view = images.nth(1)
    page.wait_for_function(
        "img => img.src && img.naturalWidth > 0", arg=view.element_handle(), timeout=REDRAW_MS
    )
    before_src, before_header = view.get_attribute("src"), header.inner_text()
    thumbnail = images.nth(0).bounding_box()  # the image is cropped square; a stretched one was a bug
    assert 0.9 < thumbnail["width"] / thumbnail["height"] < 1.1, f"thumbnail drawn distorted: {thumbnail}"
    options = layer.locator("option").all_inner_texts()
    assert len(options) > 2 and layer.locator("select").input_value() == options[0]

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    explorer.scroll_into_view_if_needed()
    explorer.screenshot(path=SCREENSHOTS / "explorer_before.png")
    layer.locator("select").select_option(label=options[-1])
    page.wait_for_function(
        "([img, old]) => img.src !== old && img.complete && img.naturalWidth > 0",
        arg=[view.element_handle(), before_src],
        timeout=REDRAW_MS,
    )
    page.wait_for_function(
        "([node, old]) => node.innerText !== old",
        arg=[header.element_handle(), before_header],
        timeout=REDRAW_MS,
    )
    after_header = header.inner_text()
    assert view.get_attribute("src") != before_src
    assert options[-1] in after_header, after_header
    assert depth.locator(".widget-readout").inner_text().strip() == str(len(options) - 1)
    explorer.screenshot(path=SCREENSHOTS / "explorer_after.png")
