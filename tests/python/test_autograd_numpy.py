"""Autograd and numpy interchange from Python: requires_grad, backward, .grad, no_grad, zero-copy."""
import numpy as np
import pytest

import gaze


def test_backward_and_grad():
    x = gaze.tensor([1.0, 2.0, 3.0], requires_grad=True)
    assert x.requires_grad and x.is_leaf and x.grad is None
    y = (x * x).sum()
    assert y.grad_fn == "sum" and not y.is_leaf
    y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2, 4, 6])
    (x * 2).sum().backward()  # accumulates
    np.testing.assert_array_equal(x.grad.numpy(), [4, 6, 8])
    x.grad = None
    assert x.grad is None


def test_backward_with_gradient_and_retain_graph():
    x = gaze.tensor([1.0, 2.0], requires_grad=True)
    y = gaze.exp(x)
    y.backward(gaze.tensor([1.0, 0.5]), retain_graph=True)
    y.backward(gaze.tensor([1.0, 0.5]))
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.exp([1.0, 2.0]) * [1.0, 0.5], rtol=1e-6)
    with pytest.raises(gaze.StateError, match="second time"):
        y.backward(gaze.tensor([1.0, 0.5]))


def test_no_grad_context_and_decorator():
    x = gaze.tensor([1.0], requires_grad=True)
    with gaze.no_grad():
        y = x * 2
        assert not gaze.is_grad_enabled()
    assert gaze.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None

    @gaze.no_grad()
    def f(t):
        return t * 3
    assert not f(x).requires_grad
    with gaze.no_grad():
        with gaze.enable_grad():
            assert (x * 2).requires_grad


def test_detach_and_in_place_rules():
    x = gaze.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(gaze.StateError, match="in-place"):
        x.fill_(0)
    with gaze.no_grad():
        x.fill_(0)  # optimizer-style update
    d = (x * 2).detach()
    assert not d.requires_grad and d.is_leaf
    with pytest.raises(gaze.StateError, match="requires grad"):
        x.numpy()
    assert x.detach().numpy().tolist() == [0, 0]


def test_from_numpy_shares_memory_and_numpy_shares_back():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = gaze.from_numpy(a)
    a[0, 0] = 42
    assert t.numpy()[0, 0] == 42
    back = t.numpy()
    assert np.shares_memory(back, a)
    # The array outlives the tensor's Python handle and vice versa.
    del a
    t2 = t * 1.0
    del t
    assert back[0, 0] == 42 and t2.numpy()[0, 0] == 42


def test_copies_when_sharing_is_not_safe():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)[:, ::2]  # not contiguous
    t = gaze.from_numpy(a)
    np.testing.assert_array_equal(t.numpy(), a)
    assert not np.shares_memory(t.numpy(), a)
    ro = np.arange(3, dtype=np.float32)
    ro.setflags(write=False)
    assert not np.shares_memory(gaze.from_numpy(ro).numpy(), ro)


def test_tensor_dtype_rules_like_torch():
    assert gaze.tensor([1.0, 2.0]).dtype == gaze.float32
    assert gaze.tensor([1, 2]).dtype == gaze.int64
    assert gaze.tensor(np.array([1, 2], dtype=np.int32)).dtype == gaze.int64
    assert gaze.tensor(np.zeros(2, dtype=np.float64)).dtype == gaze.float64
    assert gaze.tensor([True, False]).dtype == gaze.bool
    assert gaze.tensor([1, 2], dtype=gaze.float32).dtype == gaze.float32
    with pytest.raises(gaze.ValueError, match="unsupported numpy dtype"):
        gaze.from_numpy(np.zeros(2, dtype=np.complex64))
    t = gaze.tensor(np.arange(6, dtype=np.float32).reshape(2, 3))
    assert t.shape == (2, 3) and t.size(1) == 3 and t.ndim == 2 and t.numel() == 6 and len(t) == 2
    assert np.asarray(t).shape == (2, 3) and t.tolist() == [[0, 1, 2], [3, 4, 5]]


def test_threads_and_seed_settings():
    n = gaze.get_num_threads()
    gaze.set_num_threads(1)
    assert gaze.get_num_threads() == 1
    gaze.set_num_threads(n)
    with pytest.raises(ValueError):
        gaze.set_num_threads(0)
    gaze.manual_seed(9)
    a = gaze.randn([5]).numpy()
    gaze.manual_seed(9)
    np.testing.assert_array_equal(a, gaze.randn([5]).numpy())
