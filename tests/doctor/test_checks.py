"""Pre-flight checks: each deliberately broken model gets its code; a healthy run gets none."""
import pytest
import torch
from torch import nn

from trainwell.doctor import doctor


def _codes(report, statuses=("warn", "fail")):
    return {f.check for f in report.findings if f.status in statuses}


def _doctor(model=None, **kw):
    opts = dict(data="digits", precision="fp32", device="cpu")
    opts.update(kw)
    return doctor(model=model, lr=False, **opts) if model is not None else doctor(lr=False, **opts)


def _mlp(*layers):
    return nn.Sequential(nn.Flatten(), *layers)


def test_a_healthy_mlp_passes_every_check_including_the_learning_rate():
    r = doctor(data="digits", model="mlp", precision="fp32", device="cpu")
    assert r.verdict == "healthy" and not _codes(r), r.render()
    lr = next(f for f in r.findings if f.check == "lr-range")
    assert lr.evidence["largest_stable"] >= 0.05 and lr.evidence["recommended"] > 0
    assert {f.check for f in r.findings} >= {"data-balance", "data-duplicates", "gradient-check", "overfit-subset", "cost"}


def test_softmax_inside_the_model_is_caught():
    r = _doctor(_mlp(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10), nn.Softmax(dim=1)))
    assert "output-activation" in _codes(r, ("fail",))


def test_all_zero_weights_are_symmetric():
    net = _mlp(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 10))
    for p in net.parameters():
        nn.init.zeros_(p)
    r = _doctor(net)
    assert "symmetric-init" in _codes(r, ("fail",)) and "init=glorot" in next(
        f for f in r.findings if f.check == "symmetric-init").command


class _WrongReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * (x > 0) * 0.5  # half the true gradient


class WrongReLU(nn.Module):
    def forward(self, x):
        return _WrongReLU.apply(x)


def test_a_wrong_custom_backward_fails_the_gradient_check():
    r = _doctor(_mlp(nn.Linear(64, 32), WrongReLU(), nn.Linear(32, 10)))
    f = next(f for f in r.findings if f.check == "gradient-check")
    assert f.status == "fail" and "1.weight" in f.summary + str(f.evidence)


class Blind(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        return self.fc(x.flatten(1) * 0)


def test_a_model_that_ignores_its_input():
    assert "ignores-input" in _codes(_doctor(Blind()), ("fail",))


def test_a_deep_sigmoid_stack_has_vanishing_gradients():
    layers = [nn.Linear(64, 32), nn.Sigmoid()]
    for _ in range(10):
        layers += [nn.Linear(32, 32), nn.Sigmoid()]
    r = _doctor(_mlp(*layers, nn.Linear(32, 10)))
    assert "vanishing-gradients" in _codes(r)


def test_a_far_too_small_net_cannot_fit_a_subset_and_is_told_to_grow():
    r = _doctor(model="mlp", hidden=[2])
    f = next(f for f in r.findings if f.check == "underfitting")
    assert f.status == "fail" and "hidden=64" in f.command


def test_the_prescribed_command_runs(tmp_path):
    """What doctor prints is a command line trainwell accepts."""
    import shlex

    from trainwell.cli import main

    r = _doctor(model="mlp", hidden=[2])
    args = shlex.split(next(f for f in r.findings if f.check == "underfitting").command)[1:]
    assert main([*args, "--epochs", "1", "--quiet", "--out", str(tmp_path)]) == 0


def test_cli_json_is_machine_readable(capsys):
    import json

    from trainwell.cli import main

    code = main(["doctor", "--data", "digits", "--model", "mlp", "--hidden", "2", "--no-lr", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 3 and out["verdict"] == "underfitting"
    assert all(set(f) >= {"check", "status", "evidence", "prescription", "command"} for f in out["findings"])


def test_the_learning_rate_protocol_halves_from_large():
    from trainwell.lr_protocol import START, lr_range
    from trainwell.prepared import prepare

    r = lr_range(prepare(data="digits", model="mlp", precision="fp32", device="cpu"))
    lrs = [t["lr"] for t in r["tried"]]
    assert lrs[0] == 0.05 * START and all(b == a / 2 for a, b in zip(lrs, lrs[1:]))
    assert all(t["diverged"] for t in r["tried"][:-1]) and not r["tried"][-1]["diverged"]
    assert r["largest_stable"] == lrs[-1]


def test_bad_input_is_the_one_line_exit_2_of_train(tmp_path, capsys):
    from trainwell.cli import main

    assert main(["doctor", "--data", str(tmp_path / "missing.csv"), "--no-lr"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "missing.csv" in err
    assert main(["doctor", "--data", "digits", "--recoveries", "-1"]) == 2


def test_softmax_inside_can_be_declared_and_then_trains_like_logits(tmp_path):
    """outputs=probabilities (Keras' from_logits=False): the doctor's prescription for a softmax model."""
    import trainwell

    def softmax_mlp():
        torch.manual_seed(0)
        return _mlp(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10), nn.Softmax(dim=1))

    r = _doctor(softmax_mlp())
    f = next(f for f in r.findings if f.check == "output-activation")
    assert f.status == "fail" and f.command.endswith("outputs=probabilities")
    assert "output-activation" not in _codes(_doctor(softmax_mlp(), outputs="probabilities"))
    # declared but untrue: the model returns raw scores
    r = _doctor(_mlp(nn.Linear(64, 10)), outputs="probabilities")
    assert "output-activation" in _codes(r, ("fail",)) and "outputs=logits" in next(
        f for f in r.findings if f.check == "output-activation").command
    opts = dict(data="digits", precision="fp32", device="cpu", quiet=True, out=str(tmp_path), epochs=8)
    squashed = trainwell.train(model=softmax_mlp(), name="squashed", **opts)
    declared = trainwell.train(model=softmax_mlp(), name="declared", outputs="probabilities", **opts)
    assert declared.test_accuracy > squashed.test_accuracy + 0.02 and declared.test_accuracy > 0.93


def test_lr_auto_trains_at_the_protocols_pick_and_keeps_it(tmp_path):
    import yaml

    import trainwell
    from trainwell.lr_protocol import RECOMMEND
    from trainwell.prepared import prepare

    opts = dict(data="digits", model="mlp", precision="fp32", device="cpu")
    prep = prepare(lr="auto", **opts)
    edge = prep.lr_range["largest_stable"]
    assert prep.config.lr == edge * RECOMMEND and "largest momentum rate" in prep.choices["lr"]
    run = trainwell.train(lr="auto", epochs=2, quiet=True, out=str(tmp_path), name="a", **opts)
    saved = yaml.safe_load(open(tmp_path / "a" / "config.yaml"))
    assert saved["lr"] == prep.config.lr and "lr" in run.env["auto"]
    # the protocol leaves the global random state alone: same history as a run given the rate by hand
    by_hand = trainwell.train(lr=prep.config.lr, epochs=2, quiet=True, out=str(tmp_path), name="b", **opts)
    assert [r["train_loss"] for r in run.history] == [r["train_loss"] for r in by_hand.history]


def test_scores_from_a_linear_layer_are_logits_whatever_their_values():
    """A deep sigmoid stack's final Linear can output values in [0, 1] at init: not a softmax inside."""
    head = nn.Linear(32, 10)
    nn.init.zeros_(head.weight)
    nn.init.constant_(head.bias, 0.55)
    r = _doctor(_mlp(nn.Linear(64, 32), nn.Sigmoid(), head))
    f = next(f for f in r.findings if f.check == "output-activation")
    assert f.status == "pass" and f.evidence["last_layer"] == "Linear"


def test_a_column_that_predicts_the_label_alone_and_a_mostly_empty_one_are_named(tmp_path):
    """A file sorted by its label, with a spaced-out running number (kept: not packed like a row number), and a
    column empty in 80% of rows; the other columns carry a weak signal."""
    import numpy as np

    from trainwell.doctor import doctor

    rng = np.random.default_rng(0)
    n = 300
    y = np.sort(rng.integers(0, 2, n))
    lines = ["order,signal,notes,y"] + [
        f"{3 * i + 7},{y[i] + rng.normal(0, 2):.3f},{f'{rng.normal():.3f}' if i % 5 == 0 else ''},{['no', 'yes'][y[i]]}"
        for i in range(n)]
    (tmp_path / "sorted.csv").write_text("\n".join(lines) + "\n")
    report = doctor(data=str(tmp_path / "sorted.csv"), label="y", lr=False, epochs=2)
    found = {f.check: f for f in report.findings if f.status != "pass"}
    assert "data-leak" in found and "column 'order' alone predicts the label" in found["data-leak"].summary
    assert found["data-leak"].command.endswith("ignore=order")
    assert "mostly empty: notes (7" in found["data-columns"].summary and found["data-columns"].command.endswith("ignore=notes")
    assert report.verdict == "data-leak"


def test_a_table_without_problems_passes_the_column_check(tmp_path):
    import numpy as np

    from trainwell.doctor import doctor

    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 200)
    lines = ["a,b,y"] + [f"{y[i] + rng.normal():.3f},{rng.choice(['u', 'v', 'w'])},{y[i]}" for i in range(200)]
    (tmp_path / "ok.csv").write_text("\n".join(lines) + "\n")
    report = doctor(data=str(tmp_path / "ok.csv"), label="y", lr=False, epochs=2)
    col = next(f for f in report.findings if f.check == "data-columns")
    assert col.status == "pass" and "1 numeric and 1 categorical" in col.summary
    assert not any(f.check == "data-leak" for f in report.findings)


def _frozen_mlp(width=64):
    import torch
    from torch import nn

    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, width), nn.Tanh(), nn.Linear(width, 64), nn.Tanh(),
                        nn.Linear(64, 10))
    for m in list(net)[:-1]:
        for p in m.parameters():
            p.requires_grad_(False)
    return net


def test_frozen_layers_are_counted_and_named_before_a_run():
    from trainwell.doctor import doctor

    report = doctor(data="digits", model=_frozen_mlp(), lr=False, epochs=2)
    f = next(x for x in report.findings if x.check == "frozen-parameters")
    assert f.status == "warn" and "2 of 3 weight layers are frozen (requires_grad=False): 1, 3" in f.summary


def test_a_frozen_layers_zero_gradient_is_not_called_vanishing_after_a_run(tmp_path):
    """All but the last layer frozen, behind a 2-unit bottleneck: the run underfits, and its diagnosis names the
    frozen layers as the root cause (their zero gradient once read as vanishing gradients)."""
    import trainwell
    from trainwell.doctor import diagnose

    run = trainwell.train(data="digits", model=_frozen_mlp(width=2), epochs=3, monitor_every=5, precision="fp32",
                          out=str(tmp_path), name="frozen", quiet=True)
    assert run.history[-1]["train_error"] > 0.3
    report = diagnose(run.dir)
    codes = {f.check for f in report.findings if f.status != "pass"}
    assert report.verdict == "frozen-parameters" and "vanishing-gradients" not in codes
    frozen = next(f for f in report.findings if f.check == "frozen-parameters")
    assert "2 of 3 weight layers are frozen" in frozen.summary


def _mixing_models():
    import torch
    from torch import nn

    class Centred(nn.Module):  # Karpathy's case: one example alone is always the same class
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))

        def forward(self, x):
            return self.net(x - x.mean(0, keepdim=True))

    class Shuffled(nn.Module):  # a reshape that mixes the images of a batch
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))

        def forward(self, x):
            flat = x.reshape(len(x), -1).t().reshape(len(x), -1)  # (B, 64) read as (64, B): rows of many images
            return self.net(flat)

    torch.manual_seed(0)
    return Centred(), Shuffled()


def test_a_model_that_mixes_the_examples_of_a_batch_is_named():
    from trainwell.doctor import doctor

    for net in _mixing_models():
        report = doctor(data="digits", model=net, lr=False, epochs=2)
        f = next(x for x in report.findings if x.check == "batch-dependence")
        assert f.status == "fail" and "mixes the examples of a batch" in f.summary, type(net).__name__
        assert report.verdict == "batch-dependence"


def test_trainwells_own_models_with_batch_norm_are_batch_independent():
    from trainwell.doctor import doctor

    report = doctor(data="digits", model="convnet", width=4, lr=False, epochs=1)
    f = next(x for x in report.findings if x.check == "batch-dependence")
    assert f.status == "pass" and f.evidence["output_change"] < 1e-4


@pytest.mark.parametrize("act", ["Tanh", "Sigmoid", "ReLU", "GELU"])
def test_an_activation_after_the_last_layer_is_named(act):
    import torch
    from torch import nn

    from trainwell.doctor import doctor

    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10), getattr(nn, act)())
    report = doctor(data="digits", model=net, lr=False, epochs=1)
    f = next(x for x in report.findings if x.check == "output-activation")
    assert f.status in ("warn", "fail") and act in f.summary + f.prescription, f.summary


def test_dropout_after_the_last_layer_does_not_hide_that_a_linear_layer_made_the_output():
    import torch
    from torch import nn

    from trainwell.doctor import doctor

    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10), nn.Dropout(0.1))
    f = next(x for x in doctor(data="digits", model=net, lr=False, epochs=1).findings if x.check == "output-activation")
    assert f.status == "pass" and f.evidence["last_layer"] == "Linear"


@pytest.mark.parametrize("setting,value,tried", [("weight_decay", 0.5, "5e-04"), ("dropout", 0.95, "0.2")])
def test_a_setting_that_keeps_the_model_from_fitting_is_tried_and_prescribed(setting, value, tried):
    """Weight decay 0.5 was called chance-level, dropout 0.95 dead units: the run's own setting is the root cause,
    and the fix is printed only with its measured effect on the subset."""
    report = doctor(data="digits", model="mlp", lr=False, epochs=1, **{setting: value})
    f = next(x for x in report.findings if x.check == "config-suspect")
    assert f.status == "fail" and f.evidence["subset_error"] - f.evidence["subset_error_tried"] >= 0.2
    assert f.summary.startswith(f"{setting.replace('_', ' ')} {value:g} -> ") and "subset training error" in f.summary
    assert f.command.endswith(f"{setting}={float(tried):g}") or tried in f.command
    assert report.verdict == "config-suspect"


def test_usual_settings_are_not_suspects():
    report = doctor(data="digits", model="mlp", lr=False, epochs=1, dropout=0.5)
    f = next(x for x in report.findings if x.check == "config-suspect")
    assert f.status == "pass"


class _Detached(nn.Module):
    """`.detach()` on the hidden features: the body never gets a gradient."""

    def __init__(self, width, act):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(64, width), act, nn.Linear(width, 32))
        self.head = nn.Linear(32, 10)

    def forward(self, x):
        return self.head(torch.relu(self.body(x)).detach())


def _detached(width, act):
    torch.manual_seed(0)
    return _Detached(width, act)


def test_layers_cut_off_from_the_loss_by_a_detach_are_named_not_called_vanishing():
    """requires_grad on everywhere, but `.detach()` in forward: the layers before it get no gradient at all."""
    import torch
    from torch import nn

    report = doctor(data="digits", model=_detached(16, nn.ReLU()), lr=False, epochs=1)
    f = next(x for x in report.findings if x.check == "frozen-parameters")
    assert f.status == "fail" and f.evidence["cut_off_layers"] == ["body.1", "body.3"], f.evidence
    assert "cut off from the loss" in f.summary and ".detach()" in f.prescription
    assert report.verdict == "frozen-parameters"


def test_frozen_layers_that_keep_the_model_from_fitting_a_subset_are_the_root_cause():
    """All but the last layer frozen behind 2 units: the subset cannot be fitted, and the frozen layers, not
    `underfitting`, are the verdict (a warning alone, where a model still fits: fine-tuning freezes on purpose)."""
    report = doctor(data="digits", model=_frozen_mlp(width=2), lr=False, epochs=1)
    f = next(x for x in report.findings if x.check == "frozen-parameters")
    assert f.status == "fail" and "cannot fit a few examples" in f.summary
    assert report.verdict == "frozen-parameters" and f.command.endswith("unfreeze=True")


def test_unfreeze_trains_what_the_model_froze_and_is_kept_for_the_rebuild(tmp_path):
    import json

    import trainwell

    (tmp_path / "frozen.py").write_text(
        "from torch import nn\n"
        "def build(input_shape, num_classes):\n"
        "    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, num_classes))\n"
        "    net[1].requires_grad_(False)\n"
        "    return net\n")
    model = f"{tmp_path}/frozen.py:build"
    before = trainwell.train(data="digits", model=model, epochs=1, precision="fp32", out=str(tmp_path), name="f",
                             quiet=True, monitor_every=0)
    run = trainwell.train(data="digits", model=model, epochs=1, unfreeze=True, precision="fp32", out=str(tmp_path),
                          name="u", quiet=True, monitor_every=0)
    assert json.load(open(f"{run.dir}/model.json"))["model"]["unfreeze"] is True
    first = {r.dir: trainwell.load_run(r.dir).model.state_dict()["1.weight"] for r in (before, run)}
    from trainwell.models import build_model

    spec = json.load(open(f"{run.dir}/model.json"))["model"]
    assert all(p.requires_grad for p in build_model(spec).parameters())
    assert not torch.allclose(first[before.dir], first[run.dir])  # same seed, same start: only one of them trained


def test_a_relu_module_after_the_logits_is_the_verdict_not_its_underfitting():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10), nn.ReLU())
    report = doctor(data="digits", model=net, lr=False, epochs=1)
    f = next(x for x in report.findings if x.check == "output-activation")
    assert f.status == "fail" and report.verdict == "output-activation"
    assert f.command.endswith("remove=4")  # the Sequential's last layer, taken out by name


def test_after_a_run_layers_cut_off_by_a_detach_are_named_from_the_monitors(tmp_path):
    import trainwell
    from trainwell.doctor import diagnose

    run = trainwell.train(data="digits", model=_detached(2, nn.Tanh()), epochs=3, monitor_every=5, precision="fp32",
                          out=str(tmp_path), name="cut", quiet=True)
    report = diagnose(run.dir)
    f = next(f for f in report.findings if f.check == "frozen-parameters")
    assert f.status == "fail" and f.evidence["cut_off"] == ["body.1 Linear", "body.3 Linear"]
    assert report.verdict == "frozen-parameters"
    assert "vanishing-gradients" not in {x.check for x in report.findings if x.status != "pass"}


def test_a_model_that_diverges_in_the_timing_steps_is_reported_not_a_crash(monkeypatch):
    from trainwell.divergence import Diverged
    from trainwell.doctor import preflight

    def diverges(*a, **k):
        raise Diverged("exploding loss: made up for the test")

    monkeypatch.setattr(preflight, "measure", diverges)
    report = doctor(data="digits", model="mlp", lr=False, epochs=1)
    f = next(x for x in report.findings if x.check == "cost")
    assert f.status == "warn" and "not timed" in f.summary and f.evidence["params"] > 0


def test_a_layer_narrower_than_the_classes_is_underfitting_even_when_adam_memorises_the_subset():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 2), nn.ReLU(),
                        nn.Linear(2, 256), nn.ReLU(), nn.Linear(256, 10))
    f = next(x for x in _doctor(net, epochs=1).findings if x.check in ("underfitting", "overfit-subset"))
    assert f.check == "underfitting" and "2 units for 10 classes" in f.summary, f.summary


def test_test_rows_copied_from_training_are_named_even_in_few_features_but_natural_repeats_are_not(tmp_path):
    """13 wine measurements never repeat inside training, so 60 test rows that all do are a copy; iris' 4 numbers
    of one decimal repeat inside training too, and a test split sharing a few of them is what chance gives."""
    import numpy as np
    from sklearn import datasets

    w = datasets.load_wine()
    np.savez(tmp_path / "wine.npz", x=w.data.astype(np.float32), y=w.target, x_test=w.data[:60].astype(np.float32),
             y_test=w.target[:60])
    f = next(f for f in doctor(data=str(tmp_path / "wine.npz"), lr=False, epochs=1).findings
             if f.check == "data-duplicates")
    assert f.status == "warn" and f.evidence["test_examples_also_in_train"] >= 45, f  # some went to validation
    assert f.evidence["train_rows_repeated"] == 0
    rng = np.random.default_rng(0)
    x = np.round(rng.normal(0, 1, (3000, 2)), 1).astype(np.float32)  # coarse: ~60% of rows have a twin
    np.savez(tmp_path / "coarse.npz", x=x, y=(x[:, 0] > 0).astype(np.int64))
    f = next(f for f in doctor(data=str(tmp_path / "coarse.npz"), lr=False, epochs=1).findings
             if f.check == "data-duplicates")
    assert f.status == "pass" and f.evidence["test_examples_also_in_train"] > 0.2 * f.evidence["test_examples"], f


class _FunctionalReLU(nn.Module):
    """Biases of -5 before ReLUs called as functions: every hidden unit off, the output blind to the input."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(64, 32), nn.Linear(32, 10)
        nn.init.constant_(self.fc1.bias, -5.0)

    def forward(self, x):
        return self.fc2(torch.nn.functional.relu(self.fc1(x.flatten(1))))


def test_dead_units_behind_a_functional_relu_are_the_cause_of_a_blind_output():
    r = _doctor(_FunctionalReLU())
    dead = next(f for f in r.findings if f.check == "dead-units")
    blind = next(f for f in r.findings if f.check == "ignores-input")
    assert dead.status == "fail" and dead.evidence["init"]["fc1"] == 1.0 and "because of the dead units" in blind.summary
    assert r.verdict == "dead-units", r.render()


def test_relu_inputs_exactly_zero_are_kinks_not_a_wrong_backward():
    """A zero-bias conv over patches that an earlier ReLU zeroed puts ReLU inputs at exactly 0, where the left and
    right differences part: such entries have no derivative to check (convnet --width 1 on Fashion-MNIST failed here)."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 1, 3, padding=1), nn.ReLU(),
                        nn.Flatten(), nn.Linear(64, 10))
    nn.init.constant_(net[0].bias, -3.0)  # the first layer off over most pixels: blank patches for the second
    nn.init.zeros_(net[2].bias)           # ... whose outputs there are exactly its bias, 0
    r = _doctor(net)
    f = next(f for f in r.findings if f.check == "gradient-check")
    assert f.status == "pass" and f.evidence["entries_on_a_kink"] > 0, f
