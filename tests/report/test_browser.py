"""Reports opened in a real browser (Debian's chromium, headless, driven by Playwright): no console errors,
the expected sections, figures that rendered, class names shown as text, and a 30-epoch report that opens
in under 2 s and weighs under 5 MB."""
import io
import os
import shutil

import numpy as np
import pytest

import trainwell
from trainwell import rundir
from tests.report.conftest import NASTY

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.fail("chromium is not installed: `make test` installs it (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


def _open(browser, path):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems = []
    page.on("console", lambda m: problems.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
    page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
    page.goto("file://" + os.path.abspath(path), wait_until="load")
    return page, problems


def _non_blank(png: bytes) -> tuple[tuple[int, int], int]:
    from PIL import Image

    im = Image.open(io.BytesIO(png)).convert("RGB")
    colours = len(np.unique(np.asarray(im).reshape(-1, 3), axis=0))
    return im.size, colours


def _figures_rendered(page):
    figures = page.query_selector_all("svg.chart, img.px")
    assert figures
    for el in figures:
        el.scroll_into_view_if_needed()
        box = el.bounding_box()
        assert box and box["width"] >= 8 and box["height"] >= 8
        if el.evaluate("e => e.tagName") == "IMG":
            assert el.evaluate("e => e.complete && e.naturalWidth > 0 && e.naturalWidth == e.width")
        size, colours = _non_blank(el.screenshot())
        assert abs(size[0] - box["width"]) <= 1 and abs(size[1] - box["height"]) <= 1
        assert colours >= 2, "a blank figure"
    return len(figures)


def test_conv_run_report_in_the_browser(browser, conv_run):
    page, problems = _open(browser, rundir.path(conv_run, rundir.REPORT))
    ids = page.eval_on_selector_all("section[id], div[id]", "els => els.map(e => e.id)")
    assert ids == ["verdict", "summary", "curves", "weights", "units", "filters", "test", "augment", "config"]
    shown = _figures_rendered(page)
    assert shown >= 20
    text = page.inner_text("body")
    for name in NASTY:  # drawn as the characters they are, in tables, captions and figure labels
        assert name[:12] in text
    assert page.evaluate("document.querySelectorAll('script').length") == 0
    assert problems == []
    page.close()


def test_tabular_and_comparison_and_study_pages(browser, tabular_run, mlp_run, tmp_path):
    from trainwell.report import report

    cmp_path = report([mlp_run, tabular_run], str(tmp_path / "cmp.html"))
    for path in (rundir.path(tabular_run, rundir.REPORT), cmp_path):
        page, problems = _open(browser, path)
        _figures_rendered(page)
        assert problems == []
        page.close()


@pytest.mark.slow
def test_a_30_epoch_report_with_monitors_opens_fast_and_is_small(browser, tmp_path):
    run = trainwell.train(data="digits", model="convnet", width=8, epochs=30, monitor_every=4, augment="translate=1",
                          out=str(tmp_path), name="long", quiet=True)
    path = rundir.path(run.dir, rundir.REPORT)
    size = os.path.getsize(path)
    assert size < 5 * 2**20, f"{size / 2**20:.1f} MiB"
    page, problems = _open(browser, path)
    load_ms = page.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd")
    assert load_ms < 2000, f"{load_ms:.0f} ms"
    assert len(rundir.read_monitors(run.dir)) >= 100
    _figures_rendered(page)
    assert problems == []
    print(f"\n30-epoch report: {size / 2**20:.2f} MiB, load {load_ms:.0f} ms")
    page.close()
