"""Self-contained HTML reports: one run (`report.html` in its directory), several runs side by side, a search.

    trainwell report RUN                      -> RUN/report.html (refreshable mid-run)
    trainwell report RUN RUN ... --out F.html -> the runs side by side
    trainwell report STUDY                    -> STUDY/report.html (trials, parameters, importances)

Extraction (`data`, `study`) is separate from drawing (`render`, `charts`): the first reads run directories
and returns plain values, the second turns them into HTML.
"""
from __future__ import annotations

import os
from typing import Sequence

from trainwell import rundir
from trainwell.checkpoint import atomic_write
from trainwell.errors import UserError

__all__ = ["report", "write_run_report"]


def write_run_report(run_dir: str, out: str | None = None) -> str:
    """Write the report of one run (to RUN/report.html unless `out`); returns its path."""
    from trainwell.report.data import run_data
    from trainwell.report.render import render_run

    html = render_run(run_data(run_dir))
    return _write(out or rundir.path(run_dir, rundir.REPORT), html)


def report(paths: Sequence[str], out: str | None = None) -> str:
    """One run, several runs, or a study directory -> an HTML file; returns its path."""
    from trainwell.report import study

    if not paths:
        raise UserError("trainwell report: name a run directory (or several, or a search's study directory)")
    for p in paths:
        if not os.path.isdir(p):
            raise UserError(f"{p}: no such directory; give a run directory made by trainwell train or a study "
                            "directory made by trainwell search")
    if out is not None and not out.lower().endswith((".html", ".htm")):
        raise UserError(f"--out {out}: the report is an HTML page; give a file name ending in .html")
    if len(paths) == 1 and study.is_study(paths[0]):
        return study.write_study_report(paths[0], out)
    for p in paths:
        if study.is_study(p):
            raise UserError(f"{p}: a search's study directory; report it on its own (trainwell report {p})")
        rundir.read_run(p)  # one line when it is not a run directory
    if len(paths) == 1:
        return write_run_report(paths[0], out)
    from trainwell.report.data import differences, run_data
    from trainwell.report.render import render_comparison

    runs = [run_data(p) for p in paths]
    html = render_comparison(runs, differences([r["config"] for r in runs]))
    return _write(out or "comparison.html", html)


def _write(path: str, html: str) -> str:
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UserError(f"--out {path}: no folder {folder}; create it first")
    atomic_write(path, html.encode("utf-8"), durable=False)
    return path
