"""Rendering: the sections a run has and only those, user strings as text, one self-contained file."""
import html
import re

from trainwell import rundir
from trainwell.report import report, write_run_report
from trainwell.report.data import run_data
from trainwell.report.render import render_comparison, render_run
from tests.report.conftest import NASTY

ALL = ["verdict", "summary", "curves", "weights", "units", "filters", "test", "augment", "config"]


def _sections(page: str) -> list[str]:
    return re.findall(r'<(?:section|div) id="([a-z-]+)"', page)


def test_every_run_writes_its_report(mlp_run, conv_run, tabular_run):
    for run in (mlp_run, conv_run, tabular_run):
        page = open(rundir.path(run, rundir.REPORT), encoding="utf-8").read()
        assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")


def test_sections_present_and_absent(mlp_run, conv_run, tabular_run):
    assert _sections(render_run(run_data(conv_run))) == ALL
    assert _sections(render_run(run_data(mlp_run))) == [s for s in ALL if s != "augment"]
    tab = render_run(run_data(tabular_run))
    assert "filters" not in _sections(tab) and "augment" not in _sections(tab)
    assert "most confidently wrong" not in tab and "<img" not in tab
    assert "columns" in _sections(tab) and "columns" not in _sections(render_run(run_data(mlp_run)))


def test_a_tables_columns_are_listed_most_important_first(tabular_run):
    """The label is a function of the three columns' means (class k: mean 2k): each matters, and the report
    says by how much the validation loss rises when it is shuffled."""
    d = run_data(tabular_run)
    rows = d["columns"]["rows"]
    assert sorted(r["name"] for r in rows) == ["a", "b", "c"] and all(r["role"] == "numeric" for r in rows)
    rises = [r["loss_rise"] for r in rows]
    assert rises == sorted(rises, reverse=True) and rises[-1] > 0
    page = render_run(d)
    assert "permutation importance" in page and "loss rise" in page


def test_self_contained(conv_run):
    page = render_run(run_data(conv_run))
    assert "<script" not in page.lower()              # no script at all, so none from a class name either
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing fetched from a network
    assert re.search(r'src="data:image/png;base64,', page)


def test_hostile_class_names_are_text(conv_run):
    page = render_run(run_data(conv_run))
    for name in NASTY:
        assert name not in page or name == "Ünïcødé 雪 ✓"  # the markup-like ones only appear escaped
        assert html.escape(name, quote=True) in page
    assert "<img src=x" not in page and "onerror=alert" in page  # as escaped text, not as an attribute


def test_comparison_highlights_what_differs(mlp_run, tabular_run, tmp_path):
    out = report([mlp_run, tabular_run], str(tmp_path / "cmp.html"))
    page = open(out, encoding="utf-8").read()
    assert page.count('class="diff"') >= 2 and ">data<" in page
    assert "mlp" in page and "tab" in page
    assert 'validation error</text>' in page  # the overlaid curves
    runs = [run_data(mlp_run), run_data(mlp_run)]
    assert "share every setting" in render_comparison(runs, [])


def test_refresh_mid_run_and_other_output(mlp_run, tmp_path):
    out = write_run_report(mlp_run, str(tmp_path / "elsewhere.html"))
    assert open(out, encoding="utf-8").read().count("<svg") >= 8


def test_a_report_written_while_training_runs_shows_the_epochs_so_far(tmp_path):
    import trainwell
    from trainwell.callbacks import Callback

    class Midway(Callback):
        page = ""

        def on_epoch_end(self, trainer):
            if trainer.state.epoch == 2:  # the run is training: history.jsonl has 2 of its 4 epochs
                run_dir = str(tmp_path / "mid")
                self.page = open(write_run_report(run_dir), encoding="utf-8").read()
                self.epochs = len(rundir.read_run(run_dir).history)

    mid = Midway()
    trainwell.train(data="digits", model="mlp", hidden=[16], epochs=4, precision="fp32", out=str(tmp_path),
                    name="mid", quiet=True, callbacks=[mid])
    assert mid.epochs == 2 and "not finished (report of the epochs so far)" in mid.page
    assert 'id="curves"' in mid.page and 'id="test"' not in mid.page  # no test results before the end
    final = open(rundir.path(str(tmp_path / "mid"), rundir.REPORT), encoding="utf-8").read()
    assert "not finished" not in final and 'id="test"' in final


def test_a_failed_run_gets_a_report_with_its_verdict(tmp_path):
    import pytest

    import trainwell
    from trainwell.errors import TrainingFailed

    with pytest.raises(TrainingFailed):
        trainwell.train(data="digits", model="mlp", epochs=2, lr=1e30, optimizer="sgd", schedule="constant",
                        out=str(tmp_path), name="boom", quiet=True)
    page = (tmp_path / "boom" / rundir.REPORT).read_text(encoding="utf-8")
    assert "diagnosis: diverged" in page and 'id="test"' not in page


def test_early_stopping_is_marked(tmp_path):
    import trainwell

    run = trainwell.train(data="digits", model="mlp", epochs=40, patience=1, lr=0.3, out=str(tmp_path), name="es",
                          quiet=True)
    assert run.summary["stop_reason"].startswith("early stopping")
    assert ">early stop</text>" in (tmp_path / "es" / rundir.REPORT).read_text(encoding="utf-8")


def test_activation_histograms_show_the_start_too(mlp_run):
    page = render_run(run_data(mlp_run))
    assert page.count(">at start</text>") >= 1  # the legend of the overlay drawn over the latest histogram
