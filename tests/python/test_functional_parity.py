"""Parity with torch 1.13 for softmax/log_softmax, layer_norm, embedding, dropout and the losses."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import gaze
import gaze.nn.functional as GF
from parity import ELEMENTWISE, REDUCTION, assert_close, check, rng


@pytest.mark.parametrize("shape", [(1,), (3,), (17,), (1000,), (3, 17), (2, 1000), (4, 3, 17)])
@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
def test_softmax(shape, fn):
    x = rng(1).uniform(-10, 10, size=shape).astype(np.float32)
    for d in range(-len(shape), len(shape)):
        check(lambda t: getattr(GF, fn)(t, d), lambda t: getattr(F, fn)(t, d), x, tol=REDUCTION, what=f"{fn} dim {d}")


@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
def test_softmax_extreme_inputs(fn):
    rows = np.array([
        [1e4, -1e4, 0.0, 3e4],                 # large spread
        [-1e30, -1e30 + 1e24, -1e30, -1e30],   # very negative, nearly equal
        [-1e4, -1e4, -1e4, -1e4],              # very negative, equal
        [88.0, 89.0, 90.0, 91.0],              # would overflow exp without the max shift
        [-np.inf, 0.0, 1.0, -np.inf],          # masked entries
        [1e-30, 0.0, -1e-30, 0.0],             # tiny
    ], dtype=np.float32)
    check(lambda t: getattr(GF, fn)(t, 1), lambda t: getattr(F, fn)(t, 1), rows, tol=REDUCTION)
    check(lambda t: getattr(GF, fn)(t, 0), lambda t: getattr(F, fn)(t, 0), rows[[0, 2, 3, 5]], tol=REDUCTION)
    # A row of only -inf is NaN in torch; gaze agrees.
    allmasked = np.full((1, 4), -np.inf, np.float32)
    np.testing.assert_array_equal(np.isnan(getattr(GF, fn)(gaze.tensor(allmasked), 1).numpy()),
                                  np.isnan(getattr(F, fn)(torch.tensor(allmasked), 1).numpy()))


@pytest.mark.parametrize("shape,ns", [((3, 17), (17,)), ((2, 5, 1000), (1000,)), ((4, 3, 17), (3, 17)), ((7, 3), (3,))])
@pytest.mark.parametrize("affine", ["both", "weight", "none"])
@pytest.mark.parametrize("eps", [1e-5, 1e-2])
def test_layer_norm(shape, ns, affine, eps):
    r = rng(2)
    x = (r.standard_normal(shape) * 3 + 5).astype(np.float32)
    w = r.uniform(0.5, 1.5, size=ns).astype(np.float32)
    b = r.standard_normal(ns).astype(np.float32)
    if affine == "both":
        check(lambda t, wt, bt: GF.layer_norm(t, list(ns), wt, bt, eps), lambda t, wt, bt: F.layer_norm(t, ns, wt, bt, eps),
              x, w, b, tol=REDUCTION)
    elif affine == "weight":
        check(lambda t, wt: GF.layer_norm(t, list(ns), wt, None, eps), lambda t, wt: F.layer_norm(t, ns, wt, None, eps),
              x, w, tol=REDUCTION)
    else:
        check(lambda t: GF.layer_norm(t, list(ns), eps=eps), lambda t: F.layer_norm(t, ns, eps=eps), x, tol=REDUCTION)


def test_layer_norm_over_one_element():
    # x - mean is exactly 0; torch's float32 kernel returns its rounding error times rstd = 1/sqrt(eps)
    # (about -1.6e-5 here), so this case is held to torch's float64 result, which is exact.
    x = np.array([[5.3], [-2.1]], dtype=np.float32)
    w, b = np.array([1.5], np.float32), np.array([0.25], np.float32)
    check(lambda t, wt, bt: GF.layer_norm(t, [1], wt, bt), lambda t, wt, bt: F.layer_norm(t, (1,), wt, bt), x, w, b,
          tol=REDUCTION, reference_float64=True)


@pytest.mark.parametrize("padding_idx", [None, 0, 3, -1])
def test_embedding(padding_idx):
    r = rng(3)
    w = r.standard_normal((10, 17)).astype(np.float32)
    ids = r.integers(0, 10, size=(4, 7)).astype(np.int64)
    ids[0, :3] = [0, 3, 9]  # make sure the padding rows occur
    check(lambda i, wt: GF.embedding(i, wt, padding_idx=padding_idx),
          lambda i, wt: F.embedding(i, wt, padding_idx=padding_idx), ids, w, grad=[False, True])


def test_dropout_statistics_and_reproducibility():
    x = gaze.ones([200, 1000])
    for p in (0.1, 0.5, 0.9):
        y = GF.dropout(x, p=p, training=True, generator=gaze.Generator(3)).numpy()
        kept = y != 0
        assert abs(kept.mean() - (1 - p)) < 0.005, (p, kept.mean())
        np.testing.assert_allclose(y[kept], 1 / (1 - p), rtol=1e-6)  # survivors are scaled by 1/(1-p)
        y2 = GF.dropout(x, p=p, training=True, generator=gaze.Generator(3)).numpy()
        np.testing.assert_array_equal(y, y2)  # same seed, same mask
        y3 = GF.dropout(x, p=p, training=True, generator=gaze.Generator(4)).numpy()
        assert (y != y3).any()
    assert GF.dropout(x, 0.5, training=False)._is_same(x)  # eval: the input itself, as torch
    np.testing.assert_array_equal(GF.dropout(x, 1.0).numpy(), 0)
    # The default generator follows manual_seed.
    gaze.manual_seed(5)
    a = GF.dropout(x, 0.5).numpy()
    gaze.manual_seed(5)
    np.testing.assert_array_equal(a, GF.dropout(x, 0.5).numpy())


def test_dropout_backward_uses_the_forward_mask():
    x = gaze.tensor(rng(4).standard_normal((50, 60)).astype(np.float32), requires_grad=True)
    y = GF.dropout(x, p=0.3, training=True)
    up = rng(5).standard_normal((50, 60)).astype(np.float32)
    (y * gaze.tensor(up)).sum().backward()
    mask = (y.detach().numpy() != 0) / 0.7
    np.testing.assert_allclose(x.grad.numpy(), up * mask, rtol=1e-6)


def _ce_pair(weight, ignore_index, reduction, label_smoothing):
    kw = dict(ignore_index=ignore_index, reduction=reduction, label_smoothing=label_smoothing)
    g = lambda z, y, *w: GF.cross_entropy(z, y, weight=w[0] if w else None, **kw)
    t = lambda z, y, *w: F.cross_entropy(z, y, weight=w[0] if w else None, **kw)
    return g, t


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1, 0.7])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ignore_index", [-100, 2])
def test_cross_entropy(reduction, label_smoothing, weighted, ignore_index):
    r = rng(6)
    n, c = 37, 5
    z = (r.standard_normal((n, c)) * 3).astype(np.float32)
    y = r.integers(0, c, size=n).astype(np.int64)
    y[::5] = ignore_index  # some targets ignored (-100 out of range, or the valid class 2)
    w = r.uniform(0.2, 2.0, size=c).astype(np.float32)
    g, t = _ce_pair(w if weighted else None, ignore_index, reduction, label_smoothing)
    arrays = (z, y, w) if weighted else (z, y)
    check(g, t, *arrays, grad=[True, False] + ([False] if weighted else []), tol=REDUCTION)


@pytest.mark.parametrize("shape", [(5,), (4, 5), (3, 5, 7), (2, 5, 3, 4)])
def test_cross_entropy_shapes(shape):
    r = rng(7)
    z = r.standard_normal(shape).astype(np.float32)
    tshape = shape[1:] if len(shape) == 1 else (shape[0],) + shape[2:]
    tshape = () if len(shape) == 1 else tshape
    y = r.integers(0, 5, size=tshape).astype(np.int64)
    for reduction in ("mean", "none"):
        g, t = _ce_pair(None, -100, reduction, 0.2)
        check(g, t, z, y, grad=[True, False], tol=REDUCTION)


def test_cross_entropy_large_logits_and_all_ignored():
    z = np.array([[1e4, -1e4, 0.0], [-1e30, 0.0, 5.0]], dtype=np.float32)
    y = np.array([1, 0], dtype=np.int64)
    g, t = _ce_pair(None, -100, "mean", 0.0)
    check(g, t, z, y, grad=[True, False], tol=REDUCTION)
    yi = np.array([-100, -100], dtype=np.int64)
    gl = GF.cross_entropy(gaze.tensor(z), gaze.tensor(yi)).item()
    tl = F.cross_entropy(torch.tensor(z), torch.tensor(yi)).item()
    assert np.isnan(gl) and np.isnan(tl)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss(reduction):
    r = rng(8)
    a, b = r.standard_normal((4, 17)).astype(np.float32), r.standard_normal((4, 17)).astype(np.float32)
    check(lambda x, y: GF.mse_loss(x, y, reduction=reduction), lambda x, y: F.mse_loss(x, y, reduction=reduction), a, b,
          tol=REDUCTION)
