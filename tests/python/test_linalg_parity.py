"""Parity with torch 1.13 for matmul (all torch.matmul shape rules, plus transpose flags), bmm, linear."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import gaze
import gaze.nn.functional as GF
from parity import REDUCTION, check, rng

SHAPES = [((3, 4), (4, 5)), ((1, 1), (1, 1)), ((17, 3), (3, 1)), ((2, 3, 4), (4, 5)), ((3, 4), (2, 4, 5)),
          ((2, 3, 4), (2, 4, 5)), ((2, 1, 3, 4), (3, 4, 5)), ((4,), (4, 5)), ((3, 4), (4,)), ((4,), (4,)),
          ((2, 3, 4), (4,)), ((4,), (2, 4, 5)), ((64, 1000), (1000, 17)), ((1, 1000), (1000, 1000))]


@pytest.mark.parametrize("sa,sb", SHAPES)
def test_matmul(sa, sb):
    r = rng(5)
    a, b = r.standard_normal(sa).astype(np.float32), r.standard_normal(sb).astype(np.float32)
    check(gaze.matmul, torch.matmul, a, b, tol=REDUCTION, what=f"{sa}@{sb}")
    if len(sa) >= 2 and len(sb) >= 2:
        check(lambda x, y: x @ y, lambda x, y: x @ y, a, b, tol=REDUCTION)


@pytest.mark.parametrize("ta", [False, True])
@pytest.mark.parametrize("tb", [False, True])
@pytest.mark.parametrize("batch", [(), (2,), (2, 3)])
def test_matmul_transpose_flags(ta, tb, batch):
    r = rng(6)
    a = r.standard_normal(batch + ((4, 3) if ta else (3, 4))).astype(np.float32)
    b = r.standard_normal(((5, 4) if tb else (4, 5))).astype(np.float32)
    tt = lambda x, f: x.transpose(-1, -2) if f else x
    check(lambda x, y: gaze.matmul(x, y, transpose_a=ta, transpose_b=tb), lambda x, y: tt(x, ta) @ tt(y, tb), a, b,
          tol=REDUCTION)


def test_bmm():
    r = rng(7)
    check(gaze.bmm, torch.bmm, r.standard_normal((3, 2, 4)).astype(np.float32), r.standard_normal((3, 4, 5)).astype(np.float32),
          tol=REDUCTION)


@pytest.mark.parametrize("xshape", [(4,), (3, 4), (2, 3, 4), (1000, 4)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear(xshape, bias):
    r = rng(8)
    x, w, b = (r.standard_normal(s).astype(np.float32) for s in (xshape, (6, 4), (6,)))
    if bias:
        check(GF.linear, F.linear, x, w, b, tol=REDUCTION)
    else:
        check(GF.linear, F.linear, x, w, tol=REDUCTION)
