"""Bad input from Python raises Python exceptions (gaze.Error and the matching builtin), never crashes."""
import numpy as np
import pytest

import gaze
import gaze.nn.functional as F

a23, a43 = gaze.ones([2, 3]), gaze.ones([4, 3])

CASES = [
    (lambda: a23 + a43, ValueError, r"add: shapes \[2, 3\] and \[4, 3\] cannot be broadcast"),
    (lambda: a23 @ a23, ValueError, r"matmul: shapes \[2, 3\] and \[2, 3\] cannot be multiplied"),
    (lambda: a23.reshape(4, 2), ValueError, r"reshape: shape \[4, 2\] is invalid for input of shape \[2, 3\]"),
    (lambda: gaze.cat([a23, a43], 1), ValueError, r"cat: sizes of tensors must match"),
    (lambda: F.softmax(a23, 2), IndexError, r"softmax: dimension out of range"),
    (lambda: a23[5], IndexError, r"select: index 5 is out of bounds"),
    (lambda: F.layer_norm(a23, [2]), ValueError, r"layer_norm: normalized_shape \[2\]"),
    (lambda: F.embedding(gaze.tensor([0, 7]), a43), IndexError, r"embedding: index 7 at position 1"),
    (lambda: F.embedding(gaze.tensor([0.0]), a43), ValueError, r"embedding: expected 'input' to be int64"),
    (lambda: F.cross_entropy(a43, gaze.tensor([0, 1, 3, 0])), IndexError, r"cross_entropy: target 3 at position 2"),
    (lambda: F.cross_entropy(a43, gaze.tensor([0, 1])), ValueError, r"cross_entropy: target has shape \[2\]"),
    (lambda: F.cross_entropy(a43, gaze.tensor([0, 1, 2, 0]), reduction="avg"), ValueError, r"reduction must be"),
    (lambda: F.gelu(a23, approximate="fast"), ValueError, r"gelu: approximate must be"),
    (lambda: F.dropout(a23, p=2.0), ValueError, r"dropout: probability"),
    (lambda: gaze.max(gaze.ones([0, 3]), 0), ValueError, r"max: cannot reduce over dimension 0 of size 0"),
    (lambda: gaze.relu(gaze.arange(3)), ValueError, r"relu: expected 'input' to be a floating-point tensor"),
    (lambda: gaze.ones([2]) + gaze.ones([2], dtype=gaze.float64), ValueError, r"add: dtypes differ"),
    (lambda: gaze.ones([1] * 9), ValueError, r"at most 8 dimensions"),
    (lambda: gaze.force_simd_target("NOPE"), ValueError, r"unknown or unsupported SIMD target"),
]


@pytest.mark.parametrize("fn,exc,pattern", CASES)
def test_bad_input_raises(fn, exc, pattern):
    with pytest.raises(exc, match=pattern) as info:
        fn()
    assert isinstance(info.value, gaze.Error)  # also catchable as a gaze error


def test_nan_inputs_propagate():
    x = gaze.tensor([[1.0, float("nan"), 2.0]], requires_grad=True)
    loss = F.cross_entropy(x, gaze.tensor([0])) + F.layer_norm(x, [3]).sum() + F.softmax(x, 1).sum()
    assert np.isnan(loss.item())
    loss.backward()  # no crash; NaN gradients are the honest answer
    assert x.grad.shape == (1, 3)


def test_backward_twice_through_freed_buffers():
    x = gaze.tensor([1.0, 2.0], requires_grad=True)
    y = F.softmax(x, 0).sum()
    y.backward()
    with pytest.raises(gaze.StateError, match="backward through the graph a second time"):
        y.backward()


ZERO_SIZE = {
    "add": lambda z, z2: z + 1, "mul": lambda z, z2: z * z, "exp": lambda z, z2: gaze.exp(z),
    "gelu": lambda z, z2: F.gelu(z2), "sum": lambda z, z2: z.sum(0), "softmax": lambda z, z2: F.softmax(z2, 1),
    "log_softmax": lambda z, z2: F.log_softmax(z, 0), "layer_norm": lambda z, z2: F.layer_norm(z, [4]),
    "matmul": lambda z, z2: z @ gaze.ones([4, 2]), "matmul_k0": lambda z, z2: z2 @ gaze.zeros([0, 2]),
    "linear": lambda z, z2: F.linear(z, gaze.ones([3, 4])), "permute": lambda z, z2: z.permute(1, 0),
    "cat": lambda z, z2: gaze.cat([z, z], 0), "split": lambda z, z2: gaze.split(z2, 1, 1)[0] if z2.shape[1] else z2,
    "slice": lambda z, z2: z[1:], "dropout": lambda z, z2: F.dropout(z, 0.5),
    "embedding": lambda z, z2: F.embedding(gaze.tensor(np.zeros((0,), np.int64)), gaze.ones([5, 3])),
    "masked_softmax": lambda z, z2: F.masked_softmax(z2, gaze.ones([3, 0], dtype=gaze.bool), 1),
    "rope": lambda z, z2: F.rotary_embedding(gaze.zeros([1, 2, 0, 4])),
    "sdpa_no_keys": lambda z, z2: F.scaled_dot_product_attention(gaze.ones([1, 2, 3, 4]), gaze.ones([1, 2, 0, 4]),
                                                                 gaze.ones([1, 2, 0, 4])),
    "sdpa_no_batch": lambda z, z2: F.scaled_dot_product_attention(*(gaze.ones([0, 2, 3, 4]) for _ in range(3))),
    "mha_no_queries": lambda z, z2: gaze.nn.MultiheadAttention(4, 2, batch_first=True)(
        gaze.zeros([2, 0, 4]), gaze.zeros([2, 3, 4]), gaze.zeros([2, 3, 4]))[0],
}


@pytest.mark.parametrize("name", sorted(ZERO_SIZE))
def test_zero_size_inputs_never_crash(name):
    z, z2 = gaze.zeros([0, 4]), gaze.zeros([3, 0])
    z.requires_grad = True
    z2.requires_grad = True
    out = ZERO_SIZE[name](z, z2)
    s = out.sum()
    if s.requires_grad:
        s.backward()
    assert out.numel() == 0 or np.isfinite(out.detach().numpy()).all()
