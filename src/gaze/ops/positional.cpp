#include "gaze/ops/positional.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "gaze/autograd/node.h"
#include "gaze/core/error.h"
#include "gaze/core/threads.h"
#include "gaze/kernels/rotary.h"
#include "gaze/ops/checks.h"

namespace gaze {

Tensor sinusoidal_positions(int64_t n, int64_t dim, int64_t offset, DType dtype) {
  GAZE_CHECK(n >= 0 && dim > 0 && offset >= 0, ValueError,
             "sinusoidal_positions: need n >= 0, dim > 0 and offset >= 0, got {}, {}, {}", n, dim,
             offset);
  // In double, rounded once to the output type. Every Transformer with these positions computes
  // its table (512 x d_model) while it loads: with the frequency recomputed per entry, separate
  // sin and cos and a double table converted afterwards, that was 15 ms of `gaze translate`'s
  // 70 ms start. The angles are the same products as before, so the values are too.
  std::vector<double> freq(static_cast<size_t>((dim + 1) / 2));
  for (size_t i = 0; i < freq.size(); ++i)
    freq[i] = std::exp(-std::log(10000.0) * static_cast<double>(2 * i) / static_cast<double>(dim));
  Tensor out = Tensor::empty(Shape{n, dim}, dtype);
  dispatch_floating(dtype, "sinusoidal_positions", [&]<typename T>() {
    T* pe = out.data<T>();
    parallel_for(0, n, std::max<int64_t>(1, 8192 / dim), [&](int64_t lo, int64_t hi) {
      for (int64_t p = lo; p < hi; ++p) {
        T* row = pe + p * dim;
        for (int64_t i = 0; 2 * i < dim; ++i) {
          double s, c;
          sincos(static_cast<double>(p + offset) * freq[static_cast<size_t>(i)], &s, &c);
          row[2 * i] = static_cast<T>(s);
          if (2 * i + 1 < dim) row[2 * i + 1] = static_cast<T>(c);
        }
      }
    });
  });
  return out;
}

Tensor timing_signal(int64_t n, int64_t dim, int64_t offset, DType dtype) {
  GAZE_CHECK(n >= 0 && dim >= 4 && dim % 2 == 0 && offset >= 0, ValueError,
             "timing_signal: need n >= 0, an even dim >= 4 and offset >= 0, got {}, {}, {}", n, dim,
             offset);
  const int64_t half = dim / 2;
  std::vector<float> pe(static_cast<size_t>(n * dim));
  for (int64_t i = 0; i < half; ++i) {
    const auto w = static_cast<float>(
        std::exp(-std::log(10000.0) * static_cast<double>(i) / static_cast<double>(half - 1)));
    for (int64_t p = 0; p < n; ++p) {
      const float th = static_cast<float>(p + offset) * w;
      pe[static_cast<size_t>(p * dim + i)] = std::sin(th);
      pe[static_cast<size_t>(p * dim + half + i)] = std::cos(th);
    }
  }
  return Tensor::from_vector(pe, Shape{n, dim}).to_dtype(dtype);
}

namespace {

constexpr const char* kRope = "rotary_embedding";

// One position per row of the tensor viewed as [rows, D], in memory order.
std::vector<int64_t> row_positions(const Tensor& x, const RotaryOptions& o) {
  const auto& s = x.shape();
  int64_t B, H, T;
  switch (o.layout) {
    case HeadsLayout::bhtd:
      B = s[0], H = s[1], T = s[2];
      break;
    case HeadsLayout::bthd:
      B = s[0], T = s[1], H = s[2];
      break;
    default:
      T = s[0], B = s[1], H = s[2];
      break;
  }
  const Tensor& p = o.positions;
  if (p.defined()) {
    ops_detail::check_dtype(p, DType::i64, kRope, "positions");
    GAZE_CHECK(p.shape() == Shape{T} || p.shape() == (Shape{B, T}), ValueError,
               "{}: positions must be [T] = [{}] or [B, T] = [{}, {}], got {}", kRope, T, B, T,
               p.shape_str());
  }
  auto pos = [&](int64_t b, int64_t t) {
    if (!p.defined()) return o.offset + t;
    return p.dim() == 1 ? p.data<int64_t>()[t] : p.data<int64_t>()[b * T + t];
  };
  std::vector<int64_t> out;
  out.reserve(static_cast<size_t>(B * H * T));
  for (int64_t i0 = 0; i0 < s[0]; ++i0)
    for (int64_t i1 = 0; i1 < s[1]; ++i1)
      for (int64_t i2 = 0; i2 < s[2]; ++i2) {
        switch (o.layout) {
          case HeadsLayout::bhtd:
            out.push_back(pos(i0, i2));
            break;
          case HeadsLayout::bthd:
            out.push_back(pos(i0, i1));
            break;
          default:
            out.push_back(pos(i1, i0));
            break;
        }
      }
  return out;
}

}  // namespace

Tensor rotary_embedding(const Tensor& x, const RotaryOptions& o) {
  ops_detail::check_floating(x, kRope);
  GAZE_CHECK(x.dim() == 4, ValueError, "{}: input must be 4-D (heads layout), got {}", kRope,
             x.shape_str());
  const int64_t D = x.size(3);
  const int64_t rd = o.rotary_dim < 0 ? D : o.rotary_dim;
  GAZE_CHECK(rd > 0 && rd <= D && rd % 2 == 0, ValueError,
             "{}: rotary_dim must be even and in (0, {}], got {}", kRope, D, rd);
  GAZE_CHECK(o.base > 0, ValueError, "{}: base must be positive, got {}", kRope, o.base);
  auto positions = std::make_shared<std::vector<int64_t>>(row_positions(x, o));
  auto inv_freq = std::make_shared<std::vector<double>>(rd / 2);
  for (int64_t i = 0; i < rd / 2; ++i)
    (*inv_freq)[i] = std::pow(o.base, -2.0 * static_cast<double>(i) / rd);
  kernels::RotaryArgs a{x.numel() / D, D, rd, o.interleaved, positions->data(), inv_freq->data()};
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  dispatch_floating(x.dtype(), kRope,
                    [&]<typename T>() { kernels::rotary(a, x.data<T>(), y.data<T>(), false); });
  if (autograd::any_requires_grad({&x})) {
    autograd::record(kRope, {x}, {y}, [a, positions, inv_freq](autograd::BackwardContext& ctx) {
      const Tensor& g = ctx.grad();
      Tensor gx = Tensor::empty(g.shape(), g.dtype());
      dispatch_floating(g.dtype(), kRope,
                        [&]<typename T>() { kernels::rotary(a, g.data<T>(), gx.data<T>(), true); });
      ctx.set(0, gx);
    });
  }
  return y;
}

}  // namespace gaze
