import pytest

from trainwell.config import Config, build_config
from trainwell.errors import UserError


def test_defaults_follow_the_lecture():
    cfg = Config()
    assert cfg.optimizer == "momentum" and cfg.final_lr_fraction == pytest.approx(0.01)
    assert cfg.lr is None and cfg.resolved_lr() == 0.05  # auto: resolved with the data, see tests/test_auto.py
    assert cfg.init == "auto" and cfg.model == "auto"


def test_optimizer_picks_its_own_default_lr():
    assert Config(optimizer="adam").resolved_lr() == 0.001


def test_all_problems_reported_at_once():
    with pytest.raises(UserError) as e:
        Config(optimizer="adma", lr=-1.0, epochs=0, model="resnet9000")
    msg = str(e.value)
    for part in ("optimizer", "did you mean 'adam'", "lr: -1.0 must be > 0", "epochs: 0", "model"):
        assert part in msg


def test_unknown_keys_type_errors_and_value_errors_come_in_one_error():
    with pytest.raises(UserError) as e:
        build_config({"batchsize": 3, "epochs": "many", "lr": -1.0, "optimizer": "adma", "dropout": 2.0})
    msg = str(e.value)
    assert msg.count("config:") == 1
    for part in ("unknown key 'batchsize'", "did you mean 'batch_size'", "epochs: 'many' is not valid (expected an "
                 "integer", "lr: -1.0 must be > 0", "did you mean 'adam'", "dropout: 2.0 is out of range"):
        assert part in msg, part


def test_unknown_key_gets_did_you_mean():
    with pytest.raises(UserError, match="did you mean 'batch_size'"):
        build_config({"batchsize": 3})


def test_overrides_and_yaml(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("epochs: 3\nlr: 0.1\nhidden: [32, 16]\n")
    cfg = build_config({"lr": 0.2}, config_file=str(f), overrides=["epochs=4", "batch-size=7", "hidden=8,4"])
    assert (cfg.epochs, cfg.lr, cfg.batch_size, cfg.hidden) == (4, 0.2, 7, [8, 4])


def test_bad_override_value_names_the_field():
    with pytest.raises(UserError, match="epochs"):
        build_config(overrides=["epochs=ten"])


def test_yaml_is_safe_loaded(tmp_path):
    f = tmp_path / "evil.yaml"
    f.write_text("!!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(UserError, match="not valid YAML"):
        build_config(config_file=str(f))


def test_yaml_not_a_mapping(tmp_path):
    f = tmp_path / "list.yaml"
    f.write_text("- 1\n- 2\n")
    with pytest.raises(UserError, match="mapping"):
        build_config(config_file=str(f))


def test_config_validates_against_the_registries(monkeypatch):
    """Adding a name to a registry is the one edit that makes the config accept it."""
    from trainwell import models, optim

    with pytest.raises(UserError, match="optimizer: unknown 'lion'"):
        Config(optimizer="lion")
    monkeypatch.setitem(optim.OPTIMIZERS, "lion", ("SGD", {}))
    monkeypatch.setitem(optim.DEFAULT_LR, "lion", 0.01)
    assert Config(optimizer="lion").resolved_lr() == 0.01
    monkeypatch.setitem(models.REGISTRY, "tiny", "trainwell.models.mlp:mlp")
    monkeypatch.setattr(models, "CHOICES", (*models.CHOICES, "tiny"))
    assert Config(model="tiny").model == "tiny"


def test_help_lists_the_registries_and_the_config_defaults_without_importing_torch():
    import subprocess
    import sys

    code = ("import sys, trainwell.cli as c; h = c.build_parser()._subparsers._group_actions[0]"
            ".choices['train'].format_help(); print('torch' in sys.modules); print(h)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.startswith("False")
    flat = " ".join(out.split())
    from trainwell import augment, models, optim

    for names in (optim.OPTIMIZERS, optim.SCHEDULES, models.ACTIVATIONS, models.CHOICES, augment.OPS):
        assert " | ".join(names) in flat
    assert "(default 0.9)" in flat and "(default 0.0005)" in flat  # momentum, weight_decay from Config
    from trainwell import auto

    assert f"auto: {auto.BATCH}, or {auto.SMALL_BATCH} below" in flat  # the budget rule, from auto.py
