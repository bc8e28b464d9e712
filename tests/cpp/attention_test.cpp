// The fused attention kernel against a naive reference that materialises the softmax (composed from
// gaze ops, so autograd gives its gradients), over head dims, lengths, layouts, masks and thread
// counts.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "gaze/core/threads.h"
#include "gaze/ops/ops.h"
#include "gradcheck.h"

namespace gaze {
namespace {

using testing::gradcheck;
using testing::rand_input;

struct Case {
  int64_t B = 2, H = 2, Hkv = 2, Tq = 5, Tk = 7, D = 8, Dv = 8;
  bool causal = false, bottom_right = false;
  HeadsLayout layout = HeadsLayout::bhtd, kv_layout = HeadsLayout::bhtd;
  bool bool_mask = false, float_mask = false, lengths = false, padding = false, alibi = false;
  double scale = 0;  // 0 = default
  std::string name() const {
    return fmt::format(
        "B{} H{} Hkv{} Tq{} Tk{} D{} Dv{}{}{}{}{}{}{}{}{}", B, H, Hkv, Tq, Tk, D, Dv,
        causal ? (bottom_right ? " causal-br" : " causal") : "",
        layout != HeadsLayout::bhtd || kv_layout != HeadsLayout::bhtd
            ? fmt::format(" layouts {}/{}", static_cast<int>(layout), static_cast<int>(kv_layout))
            : "",
        bool_mask ? " boolmask" : "", float_mask ? " floatmask" : "", lengths ? " lengths" : "",
        padding ? " padding" : "", alibi ? " alibi" : "", scale ? " scale" : "");
  }
};

struct Inputs {
  Tensor q, k, v;  // bhtd, float64, requiring grad
  SdpaOptions opt;
};

Inputs make_inputs(const Case& c, uint64_t seed) {
  Inputs in;
  in.q = rand_input({c.B, c.H, c.Tq, c.D}, seed, -1.5, 1.5);
  in.k = rand_input({c.B, c.Hkv, c.Tk, c.D}, seed + 1, -1.5, 1.5);
  in.v = rand_input({c.B, c.Hkv, c.Tk, c.Dv}, seed + 2, -1, 1);
  SdpaOptions& o = in.opt;
  o.is_causal = c.causal;
  o.causal_alignment = c.bottom_right ? CausalAlignment::bottom_right : CausalAlignment::top_left;
  if (c.scale) o.scale = c.scale;
  Generator g(seed + 3);
  if (c.bool_mask) {  // [Tq, Tk], broadcast over batch and heads; ~80% visible
    Tensor u = rand(Shape{c.Tq, c.Tk}, DType::f64, &g);
    Tensor m = Tensor::empty(u.shape(), DType::b8);
    for (int64_t i = 0; i < u.numel(); ++i) m.data<bool>()[i] = u.data<double>()[i] < 0.8;
    for (int64_t i = 0; i < c.Tq; ++i) m.data<bool>()[i * c.Tk] = true;  // keep every row alive
    o.attn_mask = m;
  }
  if (c.float_mask) o.attn_mask = uniform(Shape{c.B, 1, c.Tq, c.Tk}, -2, 2, DType::f64, &g);
  if (c.lengths) {
    std::vector<int64_t> len(c.B);
    for (int64_t b = 0; b < c.B; ++b) len[b] = std::max<int64_t>(1, c.Tk - 3 * b);
    o.key_lengths = Tensor::from_vector(len, Shape{c.B});
  }
  if (c.padding) {
    Tensor p = Tensor::zeros(Shape{c.B, c.Tk}, DType::b8);
    for (int64_t b = 0; b < c.B; ++b)
      for (int64_t j = 1; j < c.Tk; j += 2 + b) p.data<bool>()[b * c.Tk + j] = true;
    o.key_padding_mask = p;
  }
  if (c.alibi) o.alibi_slopes = alibi_slopes(c.H, DType::f64);
  return in;
}

// The additive mask [B, H, Tq, Tk] (0 or -inf, plus float masks and ALiBi) implied by the options.
Tensor additive_mask(const Case& c, const SdpaOptions& o, DType dtype) {
  Tensor m = Tensor::zeros(Shape{c.B, c.H, c.Tq, c.Tk}, DType::f64);
  const double ninf = -std::numeric_limits<double>::infinity();
  const int64_t off = c.bottom_right ? c.Tk - c.Tq : 0;
  double* p = m.data<double>();
  for (int64_t b = 0; b < c.B; ++b)
    for (int64_t h = 0; h < c.H; ++h)
      for (int64_t i = 0; i < c.Tq; ++i)
        for (int64_t j = 0; j < c.Tk; ++j) {
          double& x = p[((b * c.H + h) * c.Tq + i) * c.Tk + j];
          if (c.alibi)
            x -= o.alibi_slopes.data<double>()[h] * std::abs(static_cast<double>(i + off - j));
          if (c.float_mask) x += o.attn_mask.data<double>()[(b * c.Tq + i) * c.Tk + j];
          if (c.bool_mask && !o.attn_mask.data<bool>()[i * c.Tk + j]) x = ninf;
          if (c.causal && j > i + off) x = ninf;
          if (c.lengths && j >= o.key_lengths.data<int64_t>()[b]) x = ninf;
          if (c.padding && o.key_padding_mask.data<bool>()[b * c.Tk + j]) x = ninf;
        }
  return m.to_dtype(dtype);
}

// softmax(q k^T * scale + mask) v with the Tq x Tk matrix in memory; kv heads repeated for GQA.
Tensor naive(const Case& c, const Tensor& q, const Tensor& k, const Tensor& v,
             const SdpaOptions& o) {
  const int64_t g = c.H / c.Hkv;
  auto repeat = [&](const Tensor& t) {
    const int64_t T = t.size(2), D = t.size(3);
    return reshape(expand(reshape(t, Shape{c.B, c.Hkv, 1, T, D}), Shape{c.B, c.Hkv, g, T, D}),
                   Shape{c.B, c.H, T, D});
  };
  const double scale = o.scale ? *o.scale : 1.0 / std::sqrt(static_cast<double>(c.D));
  Tensor s = matmul(q, repeat(k), false, true) * scale + additive_mask(c, o, q.dtype());
  return matmul(softmax(s, -1), repeat(v));
}

// A bhtd tensor in another layout, and back (the inverse permutation).
std::vector<int64_t> layout_perm(HeadsLayout l) {
  switch (l) {
    case HeadsLayout::bhtd:
      return {0, 1, 2, 3};
    case HeadsLayout::bthd:
      return {0, 2, 1, 3};
    case HeadsLayout::tbhd:
      return {2, 0, 1, 3};
  }
  return {};
}
Tensor to_layout(const Tensor& t, HeadsLayout l) {
  return permute(t, layout_perm(l));
}
Tensor from_layout(const Tensor& t, HeadsLayout l) {
  const auto p = layout_perm(l);
  std::vector<int64_t> inv(4);
  for (int64_t i = 0; i < 4; ++i) inv[p[i]] = i;
  return permute(t, inv);
}

// Runs the fused op on (q, k, v) in the case's layouts, returning its output in bhtd.
Tensor fused(const Case& c, const Tensor& q, const Tensor& k, const Tensor& v, SdpaOptions o) {
  o.layout = c.layout;
  o.kv_layout = c.kv_layout;
  return from_layout(scaled_dot_product_attention(to_layout(q, c.layout), to_layout(k, c.kv_layout),
                                                  to_layout(v, c.kv_layout), o)
                         .output,
                     c.layout);
}

double max_rel_err(const Tensor& got, const Tensor& want) {
  const Tensor g = got.to_dtype(DType::f64), w = want.to_dtype(DType::f64);
  double scale = 1e-2, err = 0;
  for (int64_t i = 0; i < w.numel(); ++i) scale = std::max(scale, std::abs(w.data<double>()[i]));
  for (int64_t i = 0; i < w.numel(); ++i)
    err = std::max(err, std::abs(g.data<double>()[i] - w.data<double>()[i]));
  return err / scale;
}

// Forward and every input gradient of the fused kernel against the naive reference (float64 both).
void expect_matches_naive(const Case& c, DType dtype, double tol) {
  SCOPED_TRACE(c.name() + (dtype == DType::f32 ? " f32" : " f64"));
  Inputs in = make_inputs(c, 17);
  Tensor q = in.q.to_dtype(dtype).set_requires_grad(), k = in.k.to_dtype(dtype).set_requires_grad(),
         v = in.v.to_dtype(dtype).set_requires_grad();
  SdpaOptions o = in.opt;
  if (o.attn_mask.defined() && o.attn_mask.dtype() != DType::b8)
    o.attn_mask = o.attn_mask.to_dtype(dtype);
  if (o.alibi_slopes.defined()) o.alibi_slopes = o.alibi_slopes.to_dtype(dtype);
  Tensor out = fused(c, q, k, v, o);
  Generator gg(5);
  const Tensor up = normal(out.shape(), 0, 1, DType::f64, &gg);
  out.backward(up.to_dtype(dtype));
  // Reference in float64 from the float64 originals.
  Tensor rq = in.q.detach().set_requires_grad(), rk = in.k.detach().set_requires_grad(),
         rv = in.v.detach().set_requires_grad();
  Tensor ref = naive(c, rq, rk, rv, in.opt);
  ref.backward(up);
  EXPECT_LE(max_rel_err(out, ref), tol) << "output";
  EXPECT_LE(max_rel_err(q.grad(), rq.grad()), tol) << "dq";
  EXPECT_LE(max_rel_err(k.grad(), rk.grad()), tol) << "dk";
  EXPECT_LE(max_rel_err(v.grad(), rv.grad()), tol) << "dv";
}

std::vector<Case> grid() {
  std::vector<Case> cases;
  for (int64_t D : {1, 3, 8, 17, 64, 80, 256}) {
    Case c;
    c.D = c.Dv = D;
    cases.push_back(c);
  }
  auto add = [&](auto f) {
    Case c;
    f(c);
    cases.push_back(c);
  };
  add([](Case& c) { c.Tq = 1, c.Tk = 1; });
  // Queries and head widths that leave edges around the whole register blocks of the transposition
  // (16 x 16 floats, 8 x 8 doubles).
  add([](Case& c) { c.Tq = 70, c.Tk = 90, c.D = 40, c.Dv = 24; });
  add([](Case& c) { c.Tq = 33, c.Tk = 20, c.D = 48, c.Dv = 48, c.causal = true; });
  add([](Case& c) { c.Tq = 1, c.Tk = 300; });
  // Few queries (one at a time) over whole vectors of features: 16 keys' scores as one vector, then
  // the 4-key and single-key remainders; grouped heads, lengths, causal bottom-right.
  add([](Case& c) {
    c.Tq = 3, c.Tk = 45, c.D = c.Dv = 64, c.H = 4, c.Hkv = 2, c.causal = c.bottom_right = true,
    c.lengths = true, c.layout = c.kv_layout = HeadsLayout::bthd;
  });
  add([](Case& c) { c.Tq = 2, c.Tk = 200, c.D = 32, c.Dv = 48; });
  // Up to four queries that see the same keys share each key's loads (a cross-attention's beams).
  add([](Case& c) {
    c.Tq = 4, c.Tk = 70, c.D = c.Dv = 64, c.H = 4, c.Hkv = 2, c.lengths = true,
    c.layout = c.kv_layout = HeadsLayout::bthd;
  });
  add([](Case& c) { c.Tq = 3, c.Tk = 131, c.D = 16, c.Dv = 80; });
  add([](Case& c) { c.Tq = 130, c.Tk = 3; });
  // One kv head whose 5 key blocks the backward splits into 4 chunks of 2 at two threads: the last
  // chunk has no keys (and must still zero its partial dQ).
  add([](Case& c) { c.B = 1, c.H = c.Hkv = 1, c.Tq = 40, c.Tk = 300; });
  add([](Case& c) { c.Tq = 65, c.Tk = 200, c.Dv = 5; });
  add([](Case& c) { c.Tq = 129, c.Tk = 129, c.causal = true; });
  add([](Case& c) { c.Tq = 70, c.Tk = 150, c.causal = true; });
  add([](Case& c) { c.Tq = 70, c.Tk = 150, c.causal = true, c.bottom_right = true; });
  add([](Case& c) { c.Tq = 150, c.Tk = 70, c.causal = true, c.bottom_right = true; });
  add([](Case& c) { c.H = 4, c.Hkv = 1, c.Tq = 33, c.Tk = 40; });
  add([](Case& c) { c.H = 6, c.Hkv = 2, c.Tq = 70, c.Tk = 140, c.causal = true; });
  add([](Case& c) {
    c.Tq = 66, c.Tk = 131, c.H = 3, c.Hkv = 3, c.layout = c.kv_layout = HeadsLayout::bthd;
  });
  add([](Case& c) {
    c.Tq = 66, c.Tk = 131, c.H = 4, c.Hkv = 2, c.layout = c.kv_layout = HeadsLayout::tbhd;
  });
  add([](Case& c) {
    c.Tq = 9, c.Tk = 70, c.layout = HeadsLayout::bhtd, c.kv_layout = HeadsLayout::tbhd,
    c.causal = true, c.bottom_right = true;
  });
  add([](Case& c) { c.Tq = 40, c.Tk = 70, c.bool_mask = true; });
  add([](Case& c) { c.Tq = 40, c.Tk = 70, c.float_mask = true; });
  add([](Case& c) { c.Tq = 40, c.Tk = 140, c.lengths = true; });
  add([](Case& c) {
    c.Tq = 40, c.Tk = 140, c.padding = true, c.layout = c.kv_layout = HeadsLayout::bthd;
  });
  add([](Case& c) { c.Tq = 90, c.Tk = 90, c.alibi = true, c.causal = true, c.H = 3, c.Hkv = 3; });
  add([](Case& c) {
    c.Tq = 20, c.Tk = 33, c.alibi = true, c.float_mask = true, c.lengths = true, c.scale = 0.3;
  });
  return cases;
}

class AttentionVsNaive : public ::testing::TestWithParam<int> {};

TEST_P(AttentionVsNaive, Float64AndFloat32AtOneAndTwoThreads) {
  const int saved = num_threads();
  set_num_threads(GetParam());
  for (const Case& c : grid()) {
    expect_matches_naive(c, DType::f64, 1e-10);
    expect_matches_naive(c, DType::f32, 2e-5);
  }
  set_num_threads(saved);
}

TEST_P(AttentionVsNaive, LongSequencesUpTo1024) {
  const int saved = num_threads();
  set_num_threads(GetParam());
  for (auto [tq, tk, causal] : {std::tuple<int64_t, int64_t, bool>{1024, 1024, true},
                                {1000, 1024, false},
                                {1, 1024, false}}) {
    Case c;
    c.B = 1, c.H = 2, c.Hkv = 2, c.Tq = tq, c.Tk = tk, c.D = c.Dv = 64, c.causal = causal;
    expect_matches_naive(c, DType::f32, 5e-5);
  }
  set_num_threads(saved);
}

INSTANTIATE_TEST_SUITE_P(Threads, AttentionVsNaive, ::testing::Values(1, 2),
                         [](const auto& info) { return std::to_string(info.param) + "_threads"; });

}  // namespace
}  // namespace gaze
