"""`trainwell report` as a user meets it: one run, several, a study; bad input in one line, exit 2."""
import os

import pytest

import trainwell
from trainwell import rundir
from trainwell.cli import main


def test_report_one_run_rewrites_its_page(mlp_run, capsys):
    page = rundir.path(mlp_run, rundir.REPORT)
    os.remove(page)
    assert main(["report", mlp_run]) == 0
    assert capsys.readouterr().out.strip() == page and os.path.getsize(page) > 10_000


def test_report_several_runs(mlp_run, tabular_run, tmp_path):
    out = tmp_path / "both.html"
    assert main(["report", mlp_run, tabular_run, "--out", str(out)]) == 0
    assert "2 runs side by side" in out.read_text(encoding="utf-8")


@pytest.mark.parametrize("args, says", [
    (["report", "/no/such/run"], "no such directory"),
    (["report", "{empty}"], "not a trainwell run directory"),
    (["report", "{run}", "--out", "r.txt"], "ending in .html"),
    (["report", "{run}", "--out", "/no/such/folder/r.html"], "no folder"),
])
def test_bad_input_one_line(args, says, mlp_run, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    args = [a.replace("{empty}", str(tmp_path / "empty")).replace("{run}", mlp_run) for a in args]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert says in err and len(err.splitlines()) == 1


def test_search_writes_a_study_report_linking_the_tested_run(tmp_path, capsys):
    space = tmp_path / "space.yaml"
    space.write_text("lr: {low: 0.01, high: 0.3, log: true}\nhidden: ['16', '32']\n")
    result = trainwell.search(str(space), trials=4, data="digits", model="mlp", epochs=2, out=str(tmp_path),
                              quiet=True)
    page = os.path.join(result.dir, "report.html")
    text = open(page, encoding="utf-8").read()
    for section in ("outcome", "trials-figures", "parameters", "trials", "space"):
        assert f'id="{section}"' in text
    link = os.path.relpath(rundir.path(result.run_dir, rundir.REPORT), result.dir)
    assert f'href="{link}"' in text and os.path.isfile(rundir.path(result.run_dir, rundir.REPORT))
    assert rundir.read_diagnosis(result.run_dir)["verdict"]  # the tested trial is diagnosed like any run
    os.remove(page)
    assert main(["report", result.dir]) == 0 and os.path.isfile(page)
    assert main(["report", result.dir, result.run_dir]) == 2
    assert "report it on its own" in capsys.readouterr().err
    with open(os.path.join(result.dir, "study.json"), "w") as f:  # damaged: the trials still come from storage
        f.write("{not json")
    assert main(["report", result.dir]) == 0
    assert 'id="trials"' in open(page, encoding="utf-8").read()
