"""Device and precision policy: every choice recorded with a reason that is true."""
import torch

from trainwell import precision


def test_forced_bf16_on_a_gpu_without_bf16_says_so(monkeypatch):
    """Defect 5: it used to record 'CUDA with bf16 support'."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    p = precision.choose_precision("cuda", "bf16", is_conv=True)
    assert p.dtype == torch.bfloat16 and "forced" in p.reason and "no native bf16" in p.reason
    assert precision.choose_precision("cuda", "auto", is_conv=True).reason == "CUDA without bf16 support"


def test_fp32_forced_and_cpu_policy(monkeypatch):
    p = precision.choose_precision("cpu", "fp32", is_conv=True)
    assert p.dtype is None and not p.channels_last and p.reason == "forced by --precision fp32"
    monkeypatch.setattr(precision, "cpu_has_bf16_units", lambda: True)  # the policy on each kind of CPU
    fast = precision.choose_precision("cpu", "auto", is_conv=True)
    assert fast.dtype == torch.bfloat16 and fast.channels_last and "bf16 matrix units" in fast.reason
    assert not precision.choose_precision("cpu", "auto", is_conv=False).channels_last  # an MLP has no channels
    monkeypatch.setattr(precision, "cpu_has_bf16_units", lambda: False)
    plain = precision.choose_precision("cpu", "auto", is_conv=True)
    assert plain.dtype is None and not plain.channels_last and plain.reason == "CPU without bf16 matrix units"
    forced = precision.choose_precision("cpu", "bf16", is_conv=True)  # asked for: given, but without channels_last
    assert forced.dtype == torch.bfloat16 and not forced.channels_last


def test_small_dense_models_stay_fp32_on_a_bf16_cpu(monkeypatch):
    """A table's MLP at batch 32 ran 1.7x slower under bf16 autocast than in fp32 (benchmarks/precision_crossover.py)."""
    monkeypatch.setattr(precision, "cpu_has_bf16_units", lambda: True)
    small = precision.choose_precision("cpu", "auto", is_conv=False, step_flops=2.2e6)
    assert small.dtype is None and "small dense model" in small.reason and "2.2 MFLOPs" in small.reason
    large = precision.choose_precision("cpu", "auto", is_conv=False, step_flops=precision.CPU_BF16_MIN_FLOPS)
    assert large.dtype == torch.bfloat16
    conv = precision.choose_precision("cpu", "auto", is_conv=True, step_flops=1e6)  # conv nets gain even when small
    assert conv.dtype == torch.bfloat16 and conv.channels_last
    assert precision.choose_precision("cpu", "auto", is_conv=False).dtype == torch.bfloat16  # not counted: as before
    assert precision.choose_precision("cpu", "bf16", is_conv=False, step_flops=1e6).dtype == torch.bfloat16  # asked for
