#include "gaze/ops/shape_ops.h"

#include <numeric>

#include "gaze/autograd/node.h"
#include "gaze/core/error.h"
#include "gaze/kernels/copy.h"
#include "gaze/ops/checks.h"

namespace gaze {

using autograd::any_requires_grad;
using autograd::BackwardContext;
using autograd::record;

Tensor reshape(const Tensor& x, const Shape& shape) {
  ops_detail::check_defined(x, "reshape", "input");
  GAZE_CHECK(shape.numel() == x.numel(), ValueError,
             "reshape: shape {} is invalid for input of shape {} ({} elements)", shape.str(),
             x.shape_str(), x.numel());
  Tensor y = x.alias(shape);
  if (any_requires_grad({&x})) {
    record("reshape", {x}, {y},
           [sx = x.shape()](BackwardContext& ctx) { ctx.set(0, reshape(ctx.grad(), sx)); });
  }
  return y;
}

Tensor reshape(const Tensor& x, const std::vector<int64_t>& shape) {
  ops_detail::check_defined(x, "reshape", "input");
  int infer = -1;
  int64_t known = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      GAZE_CHECK(infer < 0, ValueError, "reshape: only one dimension can be -1, got shape [{}]",
                 fmt::join(shape, ", "));
      infer = static_cast<int>(i);
    } else {
      GAZE_CHECK(shape[i] >= 0, ValueError, "reshape: invalid size {} in shape [{}]", shape[i],
                 fmt::join(shape, ", "));
      known *= shape[i];
    }
  }
  std::vector<int64_t> s = shape;
  if (infer >= 0) {
    GAZE_CHECK(known != 0 && x.numel() % known == 0, ValueError,
               "reshape: shape [{}] is invalid for input of shape {} ({} elements)",
               fmt::join(shape, ", "), x.shape_str(), x.numel());
    s[infer] = x.numel() / known;
  }
  return reshape(x, Shape(s));
}

Tensor flatten(const Tensor& x, int64_t start_dim, int64_t end_dim) {
  if (x.dim() == 0) return reshape(x, Shape{1});
  const int s = wrap_dim(start_dim, x.dim(), "flatten"), e = wrap_dim(end_dim, x.dim(), "flatten");
  GAZE_CHECK(s <= e, ValueError, "flatten: start_dim {} comes after end_dim {}", start_dim,
             end_dim);
  Shape out;
  int64_t merged = 1;
  for (int i = 0; i < x.dim(); ++i) {
    if (i < s || i > e)
      out.push_back(x.shape()[i]);
    else
      merged *= x.shape()[i];
    if (i == e) out.push_back(merged);
  }
  return reshape(x, out);
}

Tensor unsqueeze(const Tensor& x, int64_t dim) {
  const int d = wrap_dim(dim, x.dim() + 1, "unsqueeze");
  Shape s = x.shape();
  s.insert(d, 1);
  return reshape(x, s);
}

Tensor squeeze(const Tensor& x) {
  Shape s;
  for (int64_t v : x.shape())
    if (v != 1) s.push_back(v);
  return reshape(x, s);
}

Tensor squeeze(const Tensor& x, int64_t dim) {
  if (x.dim() == 0) return x;
  const int d = wrap_dim(dim, x.dim(), "squeeze");
  if (x.shape()[d] != 1) return x;
  Shape s = x.shape();
  s.erase(d);
  return reshape(x, s);
}

Tensor permute(const Tensor& x, const std::vector<int64_t>& dims) {
  ops_detail::check_defined(x, "permute", "input");
  GAZE_CHECK(static_cast<int>(dims.size()) == x.dim(), ValueError,
             "permute: number of dims don't match: input has {} dims {}, permutation has {} ([{}])",
             x.dim(), x.shape_str(), dims.size(), fmt::join(dims, ", "));
  int perm[Shape::kMaxDims];
  std::vector<bool> seen(x.dim(), false);
  Shape out;
  bool identity = true;
  for (int i = 0; i < x.dim(); ++i) {
    const int d = wrap_dim(dims[i], x.dim(), "permute");
    GAZE_CHECK(!seen[d], ValueError, "permute: dim {} repeated in [{}]", dims[i],
               fmt::join(dims, ", "));
    seen[d] = true;
    perm[i] = d;
    identity &= d == i;
    out.push_back(x.shape()[d]);
  }
  Tensor y = identity ? x.clone_data() : Tensor::empty(out, x.dtype());
  if (!identity)
    kernels::permute(x.raw_data(), x.shape(), perm, y.raw_data(), dtype_size(x.dtype()));
  if (any_requires_grad({&x})) {
    std::vector<int64_t> inv(x.dim());
    for (int i = 0; i < x.dim(); ++i) inv[perm[i]] = i;
    record("permute", {x}, {y},
           [inv](BackwardContext& ctx) { ctx.set(0, permute(ctx.grad(), inv)); });
  }
  return y;
}

Tensor transpose(const Tensor& x, int64_t dim0, int64_t dim1) {
  ops_detail::check_defined(x, "transpose", "input");
  if (x.dim() == 0) return x;
  std::vector<int64_t> p(x.dim());
  std::iota(p.begin(), p.end(), 0);
  std::swap(p[wrap_dim(dim0, x.dim(), "transpose")], p[wrap_dim(dim1, x.dim(), "transpose")]);
  return permute(x, p);
}

namespace {

// Copies `src` into the [.., offset : offset + src.size(d), ..] block of `dst` along dim d, or the
// reverse (extract) when `into` is false.
void copy_block(const Tensor& src, const Tensor& dst, int d, int64_t offset, bool into) {
  const Tensor& part = into ? src : dst;
  const Tensor& whole = into ? dst : src;
  const auto pa = ops_detail::split_at(part.shape(), d),
             wa = ops_detail::split_at(whole.shape(), d);
  const size_t es = dtype_size(part.dtype());
  const int64_t part_row = pa.n * pa.inner * es, whole_row = wa.n * wa.inner * es;
  char* wbase = static_cast<char*>(whole.raw_data()) + offset * wa.inner * es;
  if (into)
    kernels::copy_rows(part.raw_data(), part_row, wbase, whole_row, pa.outer, part_row);
  else
    kernels::copy_rows(wbase, whole_row, part.raw_data(), part_row, pa.outer, part_row);
}

}  // namespace

Tensor cat(const std::vector<Tensor>& ts, int64_t dim) {
  GAZE_CHECK(!ts.empty(), ValueError, "cat: expected a non-empty list of tensors");
  const Tensor& t0 = ts[0];
  ops_detail::check_defined(t0, "cat", "tensors[0]");
  GAZE_CHECK(t0.dim() > 0, ValueError,
             "cat: zero-dimensional tensor (at position 0) cannot be concatenated");
  const int d = wrap_dim(dim, t0.dim(), "cat");
  Shape out = t0.shape();
  out[d] = 0;
  for (size_t i = 0; i < ts.size(); ++i) {
    ops_detail::check_defined(ts[i], "cat", fmt::format("tensors[{}]", i));
    ops_detail::check_same_dtype(t0, ts[i], "cat");
    GAZE_CHECK(
        ts[i].dim() == t0.dim(), ValueError,
        "cat: tensors must have the same number of dims: tensors[0] is {}, tensors[{}] is {}",
        t0.shape_str(), i, ts[i].shape_str());
    for (int k = 0; k < t0.dim(); ++k)
      GAZE_CHECK(k == d || ts[i].shape()[k] == t0.shape()[k], ValueError,
                 "cat: sizes of tensors must match except in dimension {}: expected size {} but "
                 "got size {} for "
                 "tensors[{}] of shape {} at dim {}",
                 d, t0.shape()[k], ts[i].shape()[k], i, ts[i].shape_str(), k);
    out[d] += ts[i].shape()[d];
  }
  Tensor y = Tensor::empty(out, t0.dtype());
  int64_t off = 0;
  std::vector<int64_t> sizes;
  for (const Tensor& t : ts) {
    copy_block(t, y, d, off, true);
    off += t.shape()[d];
    sizes.push_back(t.shape()[d]);
  }
  if (any_requires_grad(ts)) {
    record("cat", ts, {y}, [sizes, d](BackwardContext& ctx) {
      std::vector<Tensor> parts = split(ctx.grad(), sizes, d);
      for (size_t i = 0; i < parts.size(); ++i)
        if (ctx.needs(static_cast<int>(i))) ctx.set(static_cast<int>(i), parts[i]);
    });
  }
  return y;
}

std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim) {
  ops_detail::check_defined(x, "split", "input");
  GAZE_CHECK(x.dim() > 0, ValueError, "split: cannot split a zero-dimensional tensor");
  const int d = wrap_dim(dim, x.dim(), "split");
  int64_t total = 0;
  for (int64_t s : sizes) {
    GAZE_CHECK(s >= 0, ValueError, "split: split sizes must be non-negative, got [{}]",
               fmt::join(sizes, ", "));
    total += s;
  }
  GAZE_CHECK(total == x.shape()[d], ValueError,
             "split: split sizes [{}] sum to {} but dimension {} of the input {} has size {}",
             fmt::join(sizes, ", "), total, d, x.shape_str(), x.shape()[d]);
  std::vector<Tensor> outs;
  int64_t off = 0;
  for (int64_t s : sizes) {
    Shape ps = x.shape();
    ps[d] = s;
    Tensor p = Tensor::empty(ps, x.dtype());
    copy_block(x, p, d, off, false);
    outs.push_back(p);
    off += s;
  }
  if (any_requires_grad({&x})) {
    // One node with several outputs: pieces that got no gradient arrive as zeros from the engine.
    record("split", {x}, outs, [d](BackwardContext& ctx) {
      std::vector<Tensor> gs;
      for (int i = 0; i < ctx.num_outputs(); ++i) gs.push_back(ctx.grad(i));
      ctx.set(0, cat(gs, d));
    });
  }
  return outs;
}

std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t dim) {
  ops_detail::check_defined(x, "split", "input");
  GAZE_CHECK(x.dim() > 0, ValueError, "split: cannot split a zero-dimensional tensor");
  const int d = wrap_dim(dim, x.dim(), "split");
  const int64_t n = x.shape()[d];
  GAZE_CHECK(split_size > 0 || (split_size == 0 && n == 0), ValueError,
             "split: split_size must be positive, got {}", split_size);
  std::vector<int64_t> sizes;
  for (int64_t off = 0; off < n; off += split_size) sizes.push_back(std::min(split_size, n - off));
  if (sizes.empty()) sizes.push_back(0);
  return split(x, sizes, d);
}

std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim) {
  GAZE_CHECK(chunks > 0, ValueError, "chunk: number of chunks must be positive, got {}", chunks);
  const int d = wrap_dim(dim, x.dim(), "chunk");
  const int64_t n = x.shape()[d];
  return split(x, std::max<int64_t>(1, (n + chunks - 1) / chunks), d);
}

Tensor slice(const Tensor& x, int64_t dim, std::optional<int64_t> start, std::optional<int64_t> end,
             int64_t step) {
  ops_detail::check_defined(x, "slice", "input");
  GAZE_CHECK(x.dim() > 0, ValueError, "slice: cannot slice a zero-dimensional tensor");
  GAZE_CHECK(step > 0, ValueError, "slice: step must be positive, got {}", step);
  const int d = wrap_dim(dim, x.dim(), "slice");
  const int64_t n = x.shape()[d];
  auto clamp = [n](int64_t v) { return std::clamp<int64_t>(v < 0 ? v + n : v, 0, n); };
  const int64_t s = start ? clamp(*start) : 0;
  const int64_t e = std::max(s, end ? clamp(*end) : n);
  const int64_t len = (e - s + step - 1) / step;
  Shape out = x.shape();
  out[d] = len;
  const auto ax = ops_detail::split_at(x.shape(), d);
  Tensor y;
  if (step == 1 && ax.outer == 1) {
    y = x.alias(out, s * ax.inner);  // contiguous in memory: a view
  } else {
    y = Tensor::empty(out, x.dtype());
    const size_t es = dtype_size(x.dtype());
    // Row r = (outer index o, output position k) comes from input position s + k * step.
    const char* src = static_cast<const char*>(x.raw_data());
    char* dst = static_cast<char*>(y.raw_data());
    for (int64_t o = 0; o < ax.outer; ++o)
      kernels::copy_rows(src + (o * n + s) * ax.inner * es, step * ax.inner * es,
                         dst + o * len * ax.inner * es, ax.inner * es, len, ax.inner * es);
  }
  if (any_requires_grad({&x})) {
    record("slice", {x}, {y}, [sx = x.shape(), ax, n, s, step, len](BackwardContext& ctx) {
      const Tensor& g = ctx.grad();
      Tensor gx = Tensor::zeros(sx, g.dtype());
      const size_t es = dtype_size(g.dtype());
      char* dst = static_cast<char*>(gx.raw_data());
      const char* src = static_cast<const char*>(g.raw_data());
      for (int64_t o = 0; o < ax.outer; ++o)
        kernels::copy_rows(src + o * len * ax.inner * es, ax.inner * es,
                           dst + (o * n + s) * ax.inner * es, step * ax.inner * es, len,
                           ax.inner * es);
      ctx.set(0, gx);
    });
  }
  return y;
}

Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length) {
  ops_detail::check_defined(x, "narrow", "input");
  const int d = wrap_dim(dim, x.dim(), "narrow");
  const int64_t n = x.shape()[d];
  const int64_t s = start < 0 ? start + n : start;
  GAZE_CHECK(s >= 0 && length >= 0 && s + length <= n, IndexError,
             "narrow: start ({}) + length ({}) exceeds dimension {} of size {} (input shape {})",
             start, length, d, n, x.shape_str());
  return slice(x, d, s, s + length);
}

Tensor select(const Tensor& x, int64_t dim, int64_t index) {
  ops_detail::check_defined(x, "select", "input");
  GAZE_CHECK(x.dim() > 0, IndexError, "select: cannot index a zero-dimensional tensor");
  const int d = wrap_dim(dim, x.dim(), "select");
  const int64_t n = x.shape()[d];
  GAZE_CHECK(index >= -n && index < n, IndexError,
             "select: index {} is out of bounds for dimension {} with size {} (input shape {})",
             index, d, n, x.shape_str());
  const int64_t i = index < 0 ? index + n : index;
  return squeeze(slice(x, d, i, i + 1), d);
}

}  // namespace gaze
