"""Self-contained HTML reports of run directories: one run (`report.html` in its directory) or several side by side.

    trainwell report RUN                      -> RUN/report.html (refreshable mid-run)
    trainwell report RUN RUN ... --out F.html -> the runs side by side

Extraction (`data`) is separate from drawing (`render`, `charts`, `images`): the first reads run directories
and returns plain values, the second turns them into HTML; `pages` writes the files. A search's report is
drawn with the same primitives beside the search code (trainwell.tune.report).
"""
from trainwell.report.pages import report, write_page, write_run_report

__all__ = ["report", "write_page", "write_run_report"]
