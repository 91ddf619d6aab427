"""The battery of benchmarks/doctor.py, one seed: broken runs get their code, healthy runs no alarm."""
import importlib.util
import os

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.join(HERE, "..", "..", "benchmarks", "doctor.py")


def _battery():
    spec = importlib.util.spec_from_file_location("doctor_battery", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_broken_runs_get_the_right_code_and_healthy_runs_none(tmp_path):
    b = _battery()
    files = b.data_files(str(tmp_path), seed=0)
    wrong, alarms = [], []
    for name, (args, right) in b.BROKEN.items():
        r = b.examine([x.format(**files) for x in args] + ["--seed", "0"], str(tmp_path), name, tried=False)
        if r["answer"] not in right:
            wrong.append((name, r["answer"]))
    for name, args in b.HEALTHY.items():
        r = b.examine([x.format(**files) for x in args] + ["--seed", "0"], str(tmp_path), name, tried=False)
        if r["codes"]:
            alarms.append((name, r["codes"]))
    assert len(wrong) <= len(b.BROKEN) // 10, wrong  # >= 90% right
    assert not alarms, alarms
