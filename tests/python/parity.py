"""Helpers for parity tests: run gaze and torch on the same arrays, compare outputs and gradients.

Tolerances follow the issue: relative 1e-5 for elementwise ops, 1e-4 for reductions and matmul. An
absolute floor scaled by the largest reference magnitude (atol_scale * max|ref|) covers values that are
float32 round-off away from zero, where a relative bound alone is meaningless (e.g. a softmax gradient
that is a difference of nearly equal terms).
"""
import numpy as np
import torch

import gaze

ELEMENTWISE = dict(rtol=1e-5, atol_scale=1e-6)
REDUCTION = dict(rtol=1e-4, atol_scale=1e-5)


def rng(seed=0):
    return np.random.default_rng(seed)


def assert_close(got, want, rtol, atol_scale, what=""):
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    finite = np.isfinite(want)
    assert np.array_equal(np.isnan(got), np.isnan(want)), f"{what}: NaN positions differ"
    assert np.array_equal(got[np.isinf(want)], want[np.isinf(want)]), f"{what}: infinities differ"
    if not finite.any():
        return
    scale = max(1.0, float(np.abs(want[finite]).max()))
    err = np.abs(got[finite] - want[finite])
    bound = atol_scale * scale + rtol * np.abs(want[finite])
    worst = int(np.argmax(err - bound))
    assert (err <= bound).all(), (f"{what}: max violation at flat index {worst}: got {got[finite][worst]!r}, "
                                  f"want {want[finite][worst]!r} (rtol {rtol}, atol {atol_scale * scale:.3g})")


def _to_pair(a, requires_grad):
    g = gaze.tensor(a, requires_grad=requires_grad)
    t = torch.tensor(a, requires_grad=requires_grad)
    return g, t


def check(gaze_fn, torch_fn, *arrays, grad=None, tol=ELEMENTWISE, seed=123, what="", reference_float64=False):
    """Runs gaze_fn(*gaze_tensors) and torch_fn(*torch_tensors) and compares outputs and gradients.

    grad: which arrays get requires_grad (default: the floating ones). The output(s) are back-propagated
    with the same random upstream gradient in both. reference_float64 computes torch in float64 (for ops
    where torch's float32 formula itself loses precision, so gaze is held to the exact value).
    """
    if grad is None:
        grad = [np.asarray(a).dtype.kind == "f" for a in arrays]
    gs, ts = [], []
    for a, rg in zip(arrays, grad):
        g, t = _to_pair(a, rg)
        if reference_float64 and t.dtype == torch.float32:
            t = t.detach().double().requires_grad_(rg)
        gs.append(g)
        ts.append(t)
    go = gaze_fn(*gs)
    to = torch_fn(*ts)
    gouts = go if isinstance(go, (tuple, list)) else [go]
    touts = to if isinstance(to, (tuple, list)) else [to]
    r = rng(seed)
    g_back, t_back = [], []
    for i, (g, t) in enumerate(zip(gouts, touts)):
        if t.dtype in (torch.int64, torch.bool):
            np.testing.assert_array_equal(g.numpy(), t.numpy(), err_msg=f"{what} output {i}")
            continue
        assert_close(g.detach().numpy(), t.detach().numpy(), **tol, what=f"{what} output {i}")
        if any(grad) and t.requires_grad:
            up = r.standard_normal(tuple(t.shape)).astype(np.float32)
            g_back.append((g, gaze.tensor(up)))
            t_back.append((t, torch.tensor(up, dtype=t.dtype)))
    if g_back:
        gsum = g_back[0][0].__mul__(g_back[0][1]).sum()
        tsum = (t_back[0][0] * t_back[0][1]).sum()
        for (g, u), (t, tu) in zip(g_back[1:], t_back[1:]):
            gsum = gsum + (g * u).sum()
            tsum = tsum + (t * tu).sum()
        gsum.backward()
        tsum.backward()
        for i, (g, t, rg) in enumerate(zip(gs, ts, grad)):
            if not rg:
                continue
            assert t.grad is not None, f"{what}: torch gave no grad for input {i}"
            assert g.grad is not None, f"{what}: gaze gave no grad for input {i}"
            assert_close(g.grad.numpy(), t.grad.numpy(), **tol, what=f"{what} grad of input {i}")
    return go, to
