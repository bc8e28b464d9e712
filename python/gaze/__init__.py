"""gaze: attention-based sequence models in C++, with PyTorch's names and semantics.

Tensors convert to and from numpy (zero-copy where safe); autograd works as in torch
(``requires_grad``, ``backward``, ``.grad``, ``gaze.no_grad()``).
"""
import builtins as _builtins
import functools as _functools
import numbers as _numbers

import numpy as _np

from . import _C

__version__ = _C.__version__  # the library's version; _C.git_commit is the commit it was built from
from ._C import (Tensor, dtype, Error, ValueError, IndexError, StateError, DataError, Generator,
                 from_numpy, is_grad_enabled, set_grad_enabled, precision_supported, set_num_threads, get_num_threads,
                 manual_seed, simd_targets, simd_target, force_simd_target, allocator_stats,
                 reset_peak_memory, empty_cache, zeros, ones, empty, full, arange, randn, rand,
                 add, sub, mul, div, neg, pow, sqrt, abs, reciprocal, exp, log, tanh, sigmoid, relu,
                 expand, sum, mean, max, sum_to, reshape, flatten, unsqueeze, squeeze, permute,
                 transpose, cat, split, chunk, narrow, select, matmul, bmm, softmax, log_softmax,
                 sinusoidal_positions, alibi_slopes)

float32 = dtype.float32
float64 = dtype.float64
int64 = dtype.int64
bool = dtype.bool  # noqa: A001 - torch exports the same name
float = float32  # noqa: A001
double = float64
long = int64
concat = cat

_NUMPY_DTYPES = {float32: _np.float32, float64: _np.float64, int64: _np.int64, bool: _np.bool_}


def tensor(data, dtype=None, requires_grad=False):
    """A new tensor holding a copy of ``data`` (a numpy array, a tensor, a nested list or a number).

    As torch.tensor: numpy arrays keep their dtype (ints become int64); Python floats become float32,
    Python ints int64 and Python bools bool.
    """
    if isinstance(data, Tensor):
        arr = data.detach().numpy()
    elif isinstance(data, _np.ndarray):
        arr = data
    else:
        arr = _np.array(data)
        if arr.dtype.kind == "f":
            arr = arr.astype(_np.float32)
    if dtype is not None:
        arr = arr.astype(_NUMPY_DTYPES[dtype])
    elif arr.dtype.kind in "iu":
        arr = arr.astype(_np.int64)
    elif arr.dtype.kind == "f" and arr.dtype.itemsize not in (4, 8):
        arr = arr.astype(_np.float32)
    t = _C._from_numpy_copy(arr)
    if requires_grad:
        t.requires_grad = True
    return t


class no_grad:
    """Context manager and decorator that turns autograd recording off (like torch.no_grad)."""

    def __enter__(self):
        self._prev = is_grad_enabled()
        set_grad_enabled(False)

    def __exit__(self, *exc):
        set_grad_enabled(self._prev)
        return False

    def __call__(self, fn):
        @_functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__():
                return fn(*args, **kwargs)
        return wrapper


class autocast:
    """torch.autocast(device_type="cpu", dtype=torch.bfloat16) for gaze: inside, float32 linear layers
    multiply bfloat16-rounded inputs and weights with float32 accumulation, results and gradients
    (mixed-precision training; ``train.precision: bf16``). Recurrent layers stay float32. A no-op on a
    CPU without bf16 instructions (``gaze.precision_supported("bf16")``)."""

    def __init__(self, device_type="cpu", dtype="bf16", enabled=True):
        if device_type != "cpu":
            raise ValueError(f"autocast: gaze runs on the CPU, got device_type={device_type!r}")
        name = str(dtype).removeprefix("torch.")
        name = {"bfloat16": "bf16", "float32": "fp32"}.get(name, name)
        if name not in ("bf16", "fp32"):
            raise ValueError(f"autocast: dtype must be bf16 (bfloat16) or fp32, got {dtype!r}")
        self._want = name if enabled else "fp32"
        self._prev = []  # a stack: the same object may be entered again inside itself

    def __enter__(self):
        self._prev.append(_C._autocast_precision())
        _C._set_autocast_precision(self._want)
        return self

    def __exit__(self, *exc):
        _C._set_autocast_precision(self._prev.pop())
        return False


class enable_grad(no_grad):
    """Turns autograd recording back on inside a no_grad region."""

    def __enter__(self):
        self._prev = is_grad_enabled()
        set_grad_enabled(True)


# ---- Tensor methods and operators, as torch spells them -----------------------------------------------

def _shape_args(args):
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        return list(args[0])
    return list(args)


def _binary(fn, rfn=None):
    def op(self, other):
        if isinstance(other, _numbers.Number):
            return fn(self, _builtins.float(other))
        if isinstance(other, Tensor):
            return fn(self, other)
        return NotImplemented

    def rop(self, other):
        if isinstance(other, _numbers.Number):
            return rfn(self, _builtins.float(other))
        return NotImplemented

    return op, rop


Tensor.__add__, Tensor.__radd__ = _binary(add, lambda t, s: add(t, s))
Tensor.__sub__, Tensor.__rsub__ = _binary(sub, _C.rsub)
Tensor.__mul__, Tensor.__rmul__ = _binary(mul, lambda t, s: mul(t, s))
Tensor.__truediv__, Tensor.__rtruediv__ = _binary(div, _C.rdiv)
Tensor.__neg__ = lambda self: neg(self)
Tensor.__matmul__ = lambda self, other: matmul(self, other)
Tensor.__pow__ = lambda self, e: pow(self, _builtins.float(e))
Tensor.__len__ = lambda self: self.shape[0] if self.ndim else _raise(TypeError("len() of a 0-d tensor"))
Tensor.__array__ = lambda self, dtype=None: self.detach().numpy() if dtype is None else self.detach().numpy().astype(dtype)
Tensor.__float__ = lambda self: _builtins.float(self.item())
Tensor.__int__ = lambda self: _builtins.int(self.item())
Tensor.__bool__ = lambda self: _builtins.bool(self.item())


def _raise(e):
    raise e


def _repr(self):
    body = _np.array2string(self.detach().numpy(), separator=", ", precision=4, threshold=200)
    extra = ""
    if self.dtype not in (float32, int64):
        extra += f", dtype=gaze.{self.dtype.name}"
    if self.grad_fn is not None:
        extra += f", grad_fn=<{self.grad_fn}>"
    elif self.requires_grad:
        extra += ", requires_grad=True"
    return f"tensor({body}{extra})"


Tensor.__repr__ = _repr
Tensor.__str__ = _repr
Tensor.tolist = lambda self: self.detach().numpy().tolist()
Tensor.reshape = lambda self, *shape: reshape(self, _shape_args(shape))
Tensor.view = Tensor.reshape
Tensor.permute = lambda self, *dims: permute(self, _shape_args(dims))
Tensor.expand = lambda self, *sizes: expand(self, _shape_args(sizes))
Tensor.transpose = lambda self, dim0, dim1: transpose(self, dim0, dim1)
Tensor.t = lambda self: transpose(self, 0, 1) if self.ndim == 2 else self
Tensor.flatten = lambda self, start_dim=0, end_dim=-1: flatten(self, start_dim, end_dim)
Tensor.unsqueeze = lambda self, dim: unsqueeze(self, dim)
Tensor.squeeze = lambda self, dim=None: squeeze(self, dim)
Tensor.sum = lambda self, dim=None, keepdim=False: sum(self, dim, keepdim)
Tensor.mean = lambda self, dim=None, keepdim=False: mean(self, dim, keepdim)
Tensor.max = lambda self, dim=None, keepdim=False: max(self, dim, keepdim)
Tensor.softmax = lambda self, dim: softmax(self, dim)
Tensor.log_softmax = lambda self, dim: log_softmax(self, dim)
Tensor.matmul = lambda self, other: matmul(self, other)
Tensor.split = lambda self, split_size, dim=0: split(self, split_size, dim)
Tensor.chunk = lambda self, chunks, dim=0: chunk(self, chunks, dim)
Tensor.narrow = lambda self, dim, start, length: narrow(self, dim, start, length)
Tensor.contiguous = lambda self: self  # gaze tensors are always contiguous
Tensor.clone = lambda self: self * 1.0 if self.requires_grad else self.clone_data()
Tensor.to = lambda self, dtype: self if self.dtype == dtype else self.to_dtype(dtype)
Tensor.float = lambda self: self.to(float32)
Tensor.double = lambda self: self.to(float64)
Tensor.long = lambda self: self.to(int64)
def _method(fn):
    # Compiled functions do not bind as methods when set on a class; wrap them in Python functions.
    return lambda self, *args, **kwargs: fn(self, *args, **kwargs)


for _name in ("exp", "log", "tanh", "sigmoid", "relu", "sqrt", "abs", "neg", "reciprocal"):
    setattr(Tensor, _name, _method(getattr(_C, _name)))
Tensor.pow = lambda self, exponent: pow(self, _builtins.float(exponent))


def _getitem(self, index):
    """Basic indexing: ints, slices (any step > 0), None and Ellipsis, as torch."""
    if not isinstance(index, tuple):
        index = (index,)
    n_real = _builtins.sum(1 for i in index if i is not None and i is not Ellipsis)
    if n_real > self.ndim:
        raise IndexError(f"too many indices for tensor of dimension {self.ndim}")
    out, dim = self, 0
    for i in index:
        if i is Ellipsis:
            dim += self.ndim - n_real
        elif i is None:
            out = unsqueeze(out, dim)
            dim += 1
        elif isinstance(i, _numbers.Integral):
            out = select(out, dim, int(i))
        elif isinstance(i, slice):
            step = 1 if i.step is None else i.step
            if step <= 0:
                raise ValueError("step must be greater than zero")
            out = _C.slice(out, dim, i.start, i.stop, step)
            dim += 1
        else:
            raise TypeError(f"gaze supports int, slice, None and ... indices, got {type(i).__name__}")
    return out


Tensor.__getitem__ = _getitem

from . import nn, optim, io, models, text  # noqa: E402  (need the names above)
from .pipelines import (Pipeline, Explanation, load, quantize, explain, import_use_lite, import_bert,  # noqa: E402
                        save_pipeline)
from .training import train  # noqa: E402
