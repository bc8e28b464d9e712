"""Parity with torch 1.13 for reductions (sum, mean, max) and shape ops."""
import numpy as np
import pytest
import torch

import gaze
from parity import ELEMENTWISE, REDUCTION, check, rng


@pytest.mark.parametrize("shape", [(1,), (3,), (17,), (1000,), (3, 4, 5), (2, 1000), (1000, 3)])
@pytest.mark.parametrize("keepdim", [False, True])
def test_sum_mean(shape, keepdim):
    x = rng(1).standard_normal(shape).astype(np.float32)
    check(lambda t: gaze.sum(t), lambda t: torch.sum(t), x, tol=REDUCTION)
    check(lambda t: gaze.mean(t), lambda t: torch.mean(t), x, tol=REDUCTION)
    for d in range(-len(shape), len(shape)):
        check(lambda t: gaze.sum(t, d, keepdim), lambda t: torch.sum(t, d, keepdim), x, tol=REDUCTION, what=f"sum {d}")
        check(lambda t: t.mean(d, keepdim), lambda t: t.mean(d, keepdim), x, tol=REDUCTION, what=f"mean {d}")
    if len(shape) == 3:
        for dims in [(0, 2), (1, 2), (0, 1, 2), (-1, 0)]:
            check(lambda t: gaze.sum(t, list(dims), keepdim), lambda t: torch.sum(t, dims, keepdim), x, tol=REDUCTION)
            check(lambda t: gaze.mean(t, list(dims), keepdim), lambda t: torch.mean(t, dims, keepdim), x, tol=REDUCTION)


@pytest.mark.parametrize("shape", [(1,), (3,), (17,), (1000,), (3, 4, 5)])
def test_max(shape):
    x = rng(2).permutation(int(np.prod(shape))).reshape(shape).astype(np.float32)  # no ties
    check(lambda t: gaze.max(t), lambda t: torch.max(t), x, tol=REDUCTION)
    for d in range(-len(shape), len(shape)):
        for keepdim in (False, True):
            check(lambda t: gaze.max(t, d, keepdim), lambda t: tuple(torch.max(t, d, keepdim)), x, tol=REDUCTION,
                  what=f"max {d} {keepdim}")


def test_max_ties_share_gradient_like_torch():
    x = np.array([1, 3, 3, 2], dtype=np.float32)
    check(gaze.max, torch.max, x)


def test_shape_ops():
    r = rng(3)
    x = r.standard_normal((2, 3, 4)).astype(np.float32)
    y = r.standard_normal((2, 5, 4)).astype(np.float32)
    check(lambda t: t.reshape(4, -1), lambda t: t.reshape(4, -1), x)
    check(lambda t: t.view(-1), lambda t: t.view(-1), x)
    check(lambda t: gaze.flatten(t, 1), lambda t: torch.flatten(t, 1), x)
    check(lambda t: t.unsqueeze(1).squeeze(1), lambda t: t.unsqueeze(1).squeeze(1), x)
    check(lambda t: t.unsqueeze(-1), lambda t: t.unsqueeze(-1), x)
    for dims in [(2, 0, 1), (0, 2, 1), (1, 0, 2), (0, 1, 2)]:
        check(lambda t: t.permute(*dims), lambda t: t.permute(*dims), x, what=str(dims))
    check(lambda t: t.transpose(-1, -2), lambda t: t.transpose(-1, -2), x)
    check(lambda a, b: gaze.cat([a, b, a], 1), lambda a, b: torch.cat([a, b, a], 1), x, y)
    check(lambda a: gaze.cat([a, a], -1), lambda a: torch.cat([a, a], -1), x)
    check(lambda t: gaze.split(t, 2, 1), lambda t: torch.split(t, 2, 1), y)
    check(lambda t: gaze.split(t, [1, 4], 1), lambda t: torch.split(t, [1, 4], 1), y)
    check(lambda t: gaze.chunk(t, 3, 1), lambda t: torch.chunk(t, 3, 1), y)
    check(lambda t: t.narrow(2, 1, 2), lambda t: t.narrow(2, 1, 2), x)
    check(lambda t: t.expand(3, 2, 3, 4), lambda t: t.expand(3, 2, 3, 4), x)
    check(lambda t: t.expand(2, 2, 4), lambda t: t.expand(2, 2, 4), r.standard_normal((2, 1, 4)).astype(np.float32))


@pytest.mark.parametrize("index", [0, -1, (1, 2), (slice(None), 1), (slice(1, None), slice(None, None, 2)),
                                   (Ellipsis, 0), (None, 1), (slice(-2, None), Ellipsis, slice(1, 3)),
                                   (0, slice(5, 10)), (slice(None, None, 3),)])
def test_indexing(index):
    x = rng(4).standard_normal((3, 4, 5)).astype(np.float32)
    check(lambda t: t[index], lambda t: t[index], x, what=str(index))
