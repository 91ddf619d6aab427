"""Which page goes to which file: one run's report.html, or several runs side by side."""
from __future__ import annotations

import os
from typing import Sequence

from trainwell import rundir
from trainwell.checkpoint import atomic_write
from trainwell.errors import UserError
from trainwell.report.data import differences, run_data
from trainwell.report.render import render_comparison, render_run

__all__ = ["report", "write_page", "write_run_report"]


def write_run_report(run_dir: str, out: str | None = None) -> str:
    """Write the report of one run (to RUN/report.html unless `out`); returns its path."""
    return write_page(out or rundir.path(run_dir, rundir.REPORT), render_run(run_data(run_dir)))


def report(paths: Sequence[str], out: str | None = None) -> str:
    """One run -> its report.html; several runs -> one page with them side by side; returns its path."""
    if not paths:
        raise UserError("trainwell report: name a run directory (or several, or a search's study directory)")
    for p in paths:
        if not os.path.isdir(p):
            raise UserError(f"{p}: no such directory; give a run directory made by trainwell train or a study "
                            "directory made by trainwell search")
    check_out(out)
    for p in paths:
        rundir.read_run(p)  # one line when it is not a run directory
    if len(paths) == 1:
        return write_run_report(paths[0], out)
    runs = [run_data(p) for p in paths]
    return write_page(out or "comparison.html", render_comparison(runs, differences([r["config"] for r in runs])))


def check_out(out: str | None) -> None:
    if out is not None and not out.lower().endswith((".html", ".htm")):
        raise UserError(f"--out {out}: the report is an HTML page; give a file name ending in .html")


def write_page(path: str, html: str) -> str:
    """One self-contained HTML file, written whole or not at all; returns its path."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UserError(f"--out {path}: no folder {folder}; create it first")
    atomic_write(path, html.encode("utf-8"), durable=False)
    return path
