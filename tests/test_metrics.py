import torch

from trainwell.metrics import evaluate, rank_counts
from trainwell.precision import choose_precision


def _topk_hits(logits, y, k):
    return int((logits.topk(k, dim=1).indices == y[:, None]).any(dim=1).sum())


def test_rank_counts_agree_with_topk():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(500, 10, generator=g)  # continuous: no ties
    y = torch.randint(0, 10, (500,), generator=g)
    c = rank_counts(logits, y)
    assert int(c.sum()) == 500
    assert int(c[0]) == _topk_hits(logits, y, 1) and int(c[:5].sum()) == _topk_hits(logits, y, 5)


def test_evaluate_golden_small_case():
    model = torch.nn.Identity()
    x = torch.tensor([[2.0, 1.0, 0.0], [0.0, 1.0, 2.0], [1.0, 3.0, 2.0], [0.0, 0.0, 5.0]])
    y = torch.tensor([0, 0, 2, 2])
    m = evaluate(model, x, y, choose_precision("cpu", "fp32", False))
    assert m["error"] == 0.5 and "top5_error" not in m  # 3 classes: top-5 is meaningless
    expected = torch.nn.functional.cross_entropy(x, y).item()
    assert abs(m["loss"] - expected) < 1e-9


def test_a_tie_counts_as_a_miss():
    logits = torch.tensor([[1.0, 1.0, 0.0], [2.0, 1.0, 1.0]])
    y = torch.tensor([1, 0])
    assert rank_counts(logits, y).tolist() == [1, 1, 0, 0, 0, 0]


def test_predict_logits_hands_the_model_back_in_its_mode():
    """Defect 5: predict_logits used to leave a training model in eval mode."""
    from trainwell.metrics import evaluate, predict_logits
    from trainwell.precision import choose_precision

    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Dropout(0.5)).train()
    policy = choose_precision("cpu", "fp32", False)
    assert predict_logits(net, torch.zeros(5, 4), policy).shape == (5, 3) and net.training
    evaluate(net, torch.zeros(5, 4), torch.zeros(5, dtype=torch.long), policy)
    assert net.training
    net.eval()
    predict_logits(net, torch.zeros(5, 4), policy)
    assert not net.training
