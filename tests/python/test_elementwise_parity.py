"""Parity with torch 1.13 for elementwise ops: unary math, activations, broadcasting arithmetic."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import gaze
import gaze.nn.functional as GF
from parity import ELEMENTWISE, check, rng

SIZES = [(1,), (3,), (17,), (1000,), (4, 17), (2, 3, 1000)]

UNARY = {
    "relu": (GF.relu, F.relu, (-3, 3)),
    "gelu": (lambda x: GF.gelu(x), lambda x: F.gelu(x), (-6, 6)),
    "tanh": (gaze.tanh, torch.tanh, (-6, 6)),
    "sigmoid": (gaze.sigmoid, torch.sigmoid, (-20, 20)),
    "exp": (gaze.exp, torch.exp, (-20, 20)),
    "log": (gaze.log, torch.log, (0.01, 50)),
    "neg": (gaze.neg, torch.neg, (-5, 5)),
    "sqrt": (gaze.sqrt, torch.sqrt, (0.01, 50)),
    "abs": (gaze.abs, torch.abs, (-5, 5)),
    "reciprocal": (gaze.reciprocal, torch.reciprocal, (0.1, 5)),
    "pow3": (lambda x: x ** 3, lambda x: x ** 3, (-3, 3)),
    "pow_half": (lambda x: gaze.pow(x, 0.5), lambda x: torch.pow(x, 0.5), (0.01, 9)),
}


@pytest.mark.parametrize("name", sorted(UNARY))
@pytest.mark.parametrize("shape", SIZES)
def test_unary(name, shape):
    gfn, tfn, (lo, hi) = UNARY[name]
    x = rng(len(shape)).uniform(lo, hi, size=shape).astype(np.float32)
    check(gfn, tfn, x, what=f"{name}{shape}")


@pytest.mark.parametrize("shape", SIZES)
def test_gelu_tanh(shape):
    # torch evaluates 0.5 x (1 + tanh u), which cancels to nothing in the left tail; gaze uses the same
    # function written as x * sigmoid(2u). It is therefore held to torch's float64 value.
    x = rng(7).uniform(-8, 6, size=shape).astype(np.float32)
    check(lambda t: GF.gelu(t, approximate="tanh"), lambda t: F.gelu(t, approximate="tanh"), x,
          what="gelu tanh", reference_float64=True)


def test_activation_extremes():
    x = np.array([-1e30, -1000, -88, -50, -10, -1e-8, 0, 1e-8, 10, 50, 88, 1000, 1e30], dtype=np.float32)
    for gfn, tfn in [(GF.relu, F.relu), (GF.gelu, F.gelu), (gaze.tanh, torch.tanh), (gaze.sigmoid, torch.sigmoid),
                     (gaze.exp, torch.exp)]:
        check(gfn, tfn, x, grad=[False], what=str(tfn))
    check(gaze.log, torch.log, np.array([0, 1e-30, 1, 1e30, np.inf], np.float32), grad=[False], what="log")


def test_nan_propagates_like_torch():
    x = np.array([1.0, np.nan, -2.0], dtype=np.float32)
    for gfn, tfn in [(GF.relu, F.relu), (GF.gelu, F.gelu), (gaze.tanh, torch.tanh), (gaze.exp, torch.exp),
                     (gaze.sigmoid, torch.sigmoid), (gaze.log, torch.log), (gaze.sqrt, torch.sqrt)]:
        np.testing.assert_array_equal(np.isnan(gfn(gaze.tensor(x)).numpy()), np.isnan(tfn(torch.tensor(x)).numpy()))


BROADCAST = [((3, 4), (3, 4)), ((3, 4), (4,)), ((3, 4), (3, 1)), ((2, 1, 4), (3, 1)), ((1,), (2, 3)),
             ((), (2, 2)), ((5,), ()), ((1, 17), (17, 1)), ((2, 3, 1000), (1000,)), ((1000,), (3, 1, 1000))]


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
@pytest.mark.parametrize("sa,sb", BROADCAST)
def test_broadcast_arithmetic(op, sa, sb):
    r = rng(11)
    a = r.uniform(-3, 3, size=sa).astype(np.float32)
    b = r.uniform(0.5, 3, size=sb).astype(np.float32)
    check(getattr(gaze, op), getattr(torch, op), a, b, what=f"{op}{sa}{sb}")


def test_add_alpha_and_operators():
    r = rng(12)
    a, b = r.standard_normal((3, 4)).astype(np.float32), r.standard_normal((4,)).astype(np.float32)
    check(lambda x, y: gaze.add(x, y, alpha=-2.5), lambda x, y: torch.add(x, y, alpha=-2.5), a, b)
    check(lambda x, y: gaze.sub(x, y, alpha=0.5), lambda x, y: torch.sub(x, y, alpha=0.5), a, b)
    check(lambda x, y: (2 - x) * 3 + 1 / (y * y + 1) - x / 4, lambda x, y: (2 - x) * 3 + 1 / (y * y + 1) - x / 4, a, b)


@pytest.mark.parametrize("shape", SIZES)
def test_scalar_ops(shape):
    x = rng(13).uniform(0.5, 2, size=shape).astype(np.float32)
    for gfn in [lambda t: t + 3, lambda t: t - 3, lambda t: 3 - t, lambda t: t * -1.5, lambda t: t / 4,
                lambda t: 2 / t, lambda t: -t]:
        check(gfn, gfn, x)
