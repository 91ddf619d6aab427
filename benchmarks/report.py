"""How heavy a report is: time to extract + draw it, file size, and load time in headless Chromium.

    python benchmarks/report.py runs/NAME [runs/OTHER ...]

For each run directory: `trainwell report RUN --out TMP.html` timed in-process (median of 3), the file's
size, and the page's load event in Debian's chromium driven by Playwright (median of 3 fresh pages), with
the count of figures. The issue's limits: under 2 s to open, under 5 MB, for a 30-epoch run with monitors.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+")
    a = ap.parse_args()
    from playwright.sync_api import sync_playwright

    from trainwell import rundir
    from trainwell.report import report

    rows = ["| run | epochs | monitor records | write s (median of 3) | size MiB | Chromium load ms (median of 3) | figures |",
            "| --- | --- | --- | --- | --- | --- | --- |"]
    tmp = tempfile.mkdtemp(prefix="tw-report-")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        for run in a.runs:
            out = os.path.join(tmp, os.path.basename(os.path.normpath(run)) + ".html")
            times = []
            for _ in range(3):
                t0 = time.perf_counter()
                report([run], out)
                times.append(time.perf_counter() - t0)
            loads, figures = [], 0
            for _ in range(3):
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.goto("file://" + out, wait_until="load")
                loads.append(page.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd"))
                figures = page.evaluate("document.querySelectorAll('svg.chart, img.px').length")
                page.close()
            r = rundir.read_run(run)
            rows.append(f"| {os.path.basename(os.path.normpath(run))} | {len(r.history)} | "
                        f"{len(rundir.read_monitors(run))} | {statistics.median(times):.2f} | "
                        f"{os.path.getsize(out) / 2**20:.2f} | {statistics.median(loads):.0f} | {figures} |")
        browser.close()
    print("\n".join(rows))


if __name__ == "__main__":
    main()
