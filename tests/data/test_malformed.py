"""Every malformed file gets one line naming it, exit 2, no traceback, and no run directory."""
import os

import pytest

from tests.data.malformed import cases
from trainwell.cli import main

CASES = cases()


def test_catalogue_is_large():
    assert len(CASES) >= 100, len(CASES)


@pytest.mark.parametrize("name,build", CASES, ids=[n for n, _ in CASES])
def test_malformed_file_is_refused_cleanly(tmp_path, capsys, name, build):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    args = build(str(data_dir))
    out = tmp_path / "runs"
    code = main(["train", *args, "--out", str(out), "--epochs", "1", "--quiet", "--model", "mlp"])
    err = capsys.readouterr().err
    assert code == 2, (name, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("trainwell: error:"), err
    assert "Traceback" not in err
    assert not out.exists() or not os.listdir(out), f"{name} left {os.listdir(out)}"
