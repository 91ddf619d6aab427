"""Batch augmentation: parsing, per-image independence, identities, the elastic field's statistics."""
import math

import numpy as np
import pytest
import torch

from trainwell.augment import Augment, affine_matrices, elastic_field, erase, parse, translate, warp


def test_parse_values_ranges_and_errors():
    assert parse("flip, translate=2") == {"flip": "h", "translate": 2.0}
    assert parse("rotate=10,scale=0.1,shear=5,elastic=34:4,erase=0.25,noise=0.1,flip=v") == {
        "rotate": 10.0, "scale": (0.9, 1.1), "shear": 5.0, "elastic": (34.0, 4.0), "erase": 0.25, "noise": 0.1,
        "flip": "v"}
    assert parse("scale=0.8:1.2,translate=0.1,elastic,erase") == {
        "scale": (0.8, 1.2), "translate": 0.1, "elastic": (34.0, 4.0), "erase": 0.5}
    assert parse("") == {} and parse("none") == {}
    for bad, msg in (("flop", "did you mean 'flip'"), ("translate=x", "needs a number"),
                     ("translate=2.5", "whole pixels"), ("rotate=500", r"rotate=500' must be a number in \[0, 180\]"),
                     ("rotate", "needs a value"), ("elastic=34", "alpha:sigma"), ("elastic=34:0.1", "sigma"),
                     ("scale=1.2:0.8", "smaller factor comes first"), ("erase=2", r"\[0, 1\]"),
                     ("flip=x", "h \\(left-right"), ("rotate=5,rotate=6", "twice")):
        with pytest.raises(ValueError, match=msg):
            parse(bad)


def test_zero_strength_ops_are_exactly_the_identity():
    torch.manual_seed(0)
    x = torch.randn(6, 3, 10, 12)
    aug = Augment("translate=0,rotate=0,scale=0,shear=0,elastic=0:4,erase=0,noise=0")
    assert not aug and torch.equal(aug(x), x)


def test_identity_matrices_resample_to_the_same_image():
    torch.manual_seed(0)
    x = torch.randn(4, 2, 9, 13)
    out = warp(x, {"scale": (1.0, 1.0)})  # a scale range of exactly 1: an identity affine, resampled
    torch.testing.assert_close(out, x, atol=1e-5, rtol=0)


def test_translate_shifts_each_image_within_k():
    torch.manual_seed(0)
    x = torch.zeros(64, 1, 9, 9)
    x[:, :, 4, 4] = 1.0
    out = translate(x, 2)
    pos = out.flatten(1).argmax(1)
    r, c = pos // 9, pos % 9
    assert (r - 4).abs().max() <= 2 and (c - 4).abs().max() <= 2
    assert len(set(zip(r.tolist(), c.tolist()))) > 10        # per-sample offsets, not one for the batch
    assert torch.allclose(out.sum((1, 2, 3)), torch.ones(64))  # the dot is moved, never lost


def test_flip_is_per_sample_and_exact():
    torch.manual_seed(1)
    x = torch.arange(2 * 3 * 4 * 5, dtype=torch.float).reshape(2, 3, 4, 5).repeat(50, 1, 1, 1)
    out = Augment("flip")(x)
    flipped = (out == x.flip(3)).flatten(1).all(1)
    same = (out == x).flatten(1).all(1)
    assert torch.all(flipped | same) and 20 < flipped.sum() < 80
    up = Augment("flip=v")(x)
    assert torch.all((up == x.flip(2)).flatten(1).all(1) | (up == x).flatten(1).all(1))


def test_rotation_moves_a_point_by_the_drawn_angle_per_image():
    """A dot at radius 8 from the centre of a 33x33 image lands within rotate degrees of where it was,
    at a different angle for each image."""
    torch.manual_seed(2)
    x = torch.zeros(200, 1, 33, 33)
    x[:, :, 16, 24] = 1.0                                     # 8 pixels right of the centre pixel
    out = Augment("rotate=30")(x)
    ys, xs = torch.meshgrid(torch.arange(33.0), torch.arange(33.0), indexing="ij")
    mass = out[:, 0].sum((1, 2))
    cy, cx = (out[:, 0] * ys).sum((1, 2)) / mass, (out[:, 0] * xs).sum((1, 2)) / mass
    angle = torch.atan2(cy - 16, cx - 16) * 180 / math.pi
    assert angle.abs().max() <= 31 and angle.std() > 12         # uniform in [-30, 30]: std 17.3
    assert ((cy - 16) ** 2 + (cx - 16) ** 2).sqrt().sub(8).abs().max() < 0.6  # rotated, not scaled


def test_scale_and_translate_follow_their_ranges_and_aspect():
    torch.manual_seed(3)
    m = affine_matrices(4000, 20, 40, {"scale": (0.5, 2.0), "translate": 0.1}, "cpu")
    zoom = 1 / m[:, 0, 0]                                       # content scale (no rotation or shear)
    assert zoom.min() >= 0.5 - 1e-5 and zoom.max() <= 2.0 + 1e-5
    assert torch.allclose(m[:, 0, 0], m[:, 1, 1]) and torch.all(m[:, 0, 1] == 0)  # square pixels kept
    shift_px = -m[:, :, 2] / m[:, 0, 0:1] * torch.tensor([20.0, 10.0])  # back to pixels: (x, y)
    assert shift_px[:, 0].abs().max() <= 4.0 + 1e-3 and shift_px[:, 1].abs().max() <= 2.0 + 1e-3  # 0.1 of 40 and 20


@pytest.mark.parametrize("alpha,sigma", [(34.0, 4.0), (8.0, 2.0), (68.0, 4.0)])
def test_elastic_field_statistics_follow_alpha_and_sigma(alpha, sigma):
    """Gaussian-smoothed white noise: std = alpha * sqrt(1/3) * sqrt(sum of the 2-D kernel squared)
    ~= alpha / (sigma * sqrt(12 pi)); correlation at lag L = exp(-L^2 / (4 sigma^2))."""
    torch.manual_seed(4)
    f = elastic_field(64, 96, 96, alpha, sigma, "cpu")
    inner = f[:, 24:-24, 24:-24]                                # away from the reflected edges
    expected = alpha / (sigma * math.sqrt(12 * math.pi))
    assert inner.std().item() == pytest.approx(expected, rel=0.08)
    lag = int(2 * sigma)
    a, b = inner[:, :, :-lag, 0].flatten(), inner[:, :, lag:, 0].flatten()
    corr = torch.corrcoef(torch.stack([a, b]))[0, 1].item()
    assert corr == pytest.approx(math.exp(-lag ** 2 / (4 * sigma ** 2)), abs=0.06)
    assert abs(inner.mean().item()) < 0.05 * expected * 10


def test_elastic_distortions_differ_per_image_and_keep_shape_dtype_layout():
    torch.manual_seed(5)
    x = torch.rand(1, 3, 28, 28).repeat(8, 1, 1, 1).contiguous(memory_format=torch.channels_last)
    out = Augment("elastic=34:4")(x)
    assert out.shape == x.shape and out.dtype == x.dtype and out.is_contiguous(memory_format=torch.channels_last)
    diffs = [(out[i] - out[0]).abs().max().item() for i in range(1, 8)]
    assert min(diffs) > 1e-3                                    # each image its own field
    assert (out - x).abs().mean() > 1e-3


def test_erase_blanks_one_rectangle_in_about_p_of_the_images():
    torch.manual_seed(6)
    x = torch.ones(2000, 2, 16, 16)
    out = erase(x, 0.25)
    zero = out[:, 0] == 0
    hit = zero.flatten(1).any(1)
    assert 0.2 < hit.float().mean() < 0.3
    frac = zero.flatten(1).float().mean(1)[hit]
    assert frac.min() >= 0.01 and frac.max() <= 0.45
    rows, cols = zero.any(2), zero.any(1)                       # a rectangle: its rows x its columns
    rect = rows[:, :, None] & cols[:, None, :]
    assert torch.equal(rect, zero) and torch.equal(out[:, 0] == 0, out[:, 1] == 0)


def test_every_op_is_deterministic_under_a_seed_and_independent_per_image():
    spec = "flip,translate=3,rotate=15,scale=0.2,shear=10,elastic=20:3,erase=0.5,noise=0.1"
    x = torch.rand(1, 1, 20, 20).repeat(16, 1, 1, 1)
    torch.manual_seed(7)
    a = Augment(spec)(x)
    torch.manual_seed(7)
    b = Augment(spec)(x)
    assert torch.equal(a, b)
    assert len({tuple(r.flatten()[:50].tolist()) for r in a}) == 16


def test_features_pass_through():
    x = torch.randn(4, 7)
    assert torch.equal(Augment("flip,translate=1,elastic")(x), x)


@pytest.mark.parametrize("n,sigma", [(28, 4.0), (8, 4.0), (64, 1.5), (5, 0.5)])
def test_the_smoothing_is_scipys_gaussian_filter(n, sigma):
    """Golden values: the blur matrices equal scipy.ndimage.gaussian_filter (mode reflect, truncate 4), the
    textbook implementation of Simard's distortion, edges and kernels larger than the image included."""
    from scipy.ndimage import gaussian_filter

    from trainwell.augment import blur_matrix

    rng = torch.Generator().manual_seed(8)
    v = torch.rand(n, n + 3, generator=rng, dtype=torch.float64) * 2 - 1
    ours = blur_matrix(n, sigma).double() @ v @ blur_matrix(n + 3, sigma).double().T
    np_ref = gaussian_filter(v.numpy(), sigma, mode="reflect", truncate=4.0)
    np.testing.assert_allclose(ours.numpy(), np_ref, atol=2e-7)


def test_affine_grid_is_torchs():
    import torch.nn.functional as F

    from trainwell.augment import affine_grid

    torch.manual_seed(9)
    theta = affine_matrices(7, 9, 13, {"rotate": 30.0, "scale": (0.8, 1.2), "shear": 10.0, "translate": 0.2}, "cpu")
    torch.testing.assert_close(affine_grid(theta, 9, 13), F.affine_grid(theta, [7, 1, 9, 13], align_corners=False))
