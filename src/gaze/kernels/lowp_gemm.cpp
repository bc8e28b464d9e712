#include "gaze/kernels/lowp_gemm.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "gaze/kernels/lowp_gemm.cpp"
// foreach_target.h must come first: it re-includes this file once per SIMD target.
// clang-format off
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "gaze/kernels/simd-inl.h"
// clang-format on

#include <algorithm>
#include <cmath>
#include <cstring>

#include "gaze/core/threads.h"

HWY_BEFORE_NAMESPACE();
namespace gaze::kernels {
namespace HWY_NAMESPACE {

// Round to nearest even on the bit pattern: add 0x7fff plus the lowest kept bit, keep the top half.
// Highway 1.0's DemoteTo to bfloat16 truncates instead. NaNs become a quiet NaN of the same sign.
void FloatToBf16Impl(const float* x, uint16_t* out, int64_t n) {
  const hn::ScalableTag<float> df;
  const hn::RebindToUnsigned<decltype(df)> du;
  const hn::Rebind<uint16_t, decltype(df)> du16;
  const hn::RebindToSigned<decltype(df)> di;
  const size_t N = hn::Lanes(df);
  for (int64_t i = 0; i < n; i += static_cast<int64_t>(N)) {
    const size_t m = std::min<size_t>(N, static_cast<size_t>(n - i));
    const auto v = LoadUpTo(df, x + i, m);
    const auto bits = hn::BitCast(du, v);
    const auto lsb = hn::And(hn::ShiftRight<16>(bits), hn::Set(du, 1));
    auto r = hn::ShiftRight<16>(hn::Add(bits, hn::Add(lsb, hn::Set(du, 0x7fff))));
    const auto nan = hn::RebindMask(du, hn::IsNaN(v));
    r = hn::IfThenElse(nan, hn::Or(hn::ShiftRight<16>(bits), hn::Set(du, 0x40)), r);
    const auto h = hn::DemoteTo(du16, hn::BitCast(di, r));
    if (m == N)
      hn::StoreU(h, du16, out + i);
    else
      hn::BlendedStore(h, hn::FirstN(du16, m), du16, out + i);
  }
}

void QuantizeRowImpl(const float* x, int64_t K, int8_t* q, float* scale, bool offset) {
  const hn::ScalableTag<float> df;
  const hn::RebindToSigned<decltype(df)> di;
  const hn::Rebind<int8_t, decltype(df)> d8;
  const size_t N = hn::Lanes(df);
  // max |x| on the bit patterns: with the sign cleared they order as the values do, and a NaN or
  // an infinity lands at or above 0x7f800000 (a float Max would drop a NaN on x86).
  // Two running maxima, so that the loop is not one Max latency per vector.
  const auto magnitude = hn::Set(di, 0x7fffffff);
  auto mx = hn::Zero(di), mx2 = hn::Zero(di);
  int64_t i = 0;
  for (; i + 2 * static_cast<int64_t>(N) <= K; i += 2 * static_cast<int64_t>(N)) {
    mx = hn::Max(mx, hn::And(hn::BitCast(di, hn::LoadU(df, x + i)), magnitude));
    mx2 = hn::Max(mx2, hn::And(hn::BitCast(di, hn::LoadU(df, x + i + N)), magnitude));
  }
  for (; i < K; i += static_cast<int64_t>(N)) {
    const size_t m = std::min<size_t>(N, static_cast<size_t>(K - i));
    mx = hn::Max(mx, hn::And(hn::BitCast(di, LoadUpTo(df, x + i, m)), magnitude));
  }
  const int32_t top = hn::GetLane(hn::MaxOfLanes(di, hn::Max(mx, mx2)));
  const bool finite = top < 0x7f800000;
  float amax;
  std::memcpy(&amax, &top, sizeof(amax));
  const float s = amax > 0 ? amax / 127.0f : 1.0f, inv_s = 1.0f / s;
  // Rows that quantize to zeros: one holding a NaN or an infinity has no finite scale and gets a
  // NaN one, so the outputs it feeds are NaN as they would be in float32; below max |x| ~ 4e-37,
  // 1 / s overflows (x * inf would flip signs or give NaN), and the row is zeros to within 1e-37.
  if (!finite || !std::isfinite(inv_s)) {
    *scale = finite ? s : std::numeric_limits<float>::quiet_NaN();
    std::fill(q, q + K, offset ? int8_t{-128} : int8_t{0});  // 0, or 0 + 128 as uint8
    return;
  }
  *scale = s;
  // |x| / s <= 127 (to rounding): the conversion rounds to nearest even and never needs a clamp
  // beyond DemoteTo's saturation.
  const auto inv = hn::Set(df, inv_s);
  // offset: flipping the sign bit of an int8 byte gives the uint8 byte of the value + 128.
  const auto flip = hn::Set(d8, static_cast<int8_t>(offset ? -128 : 0));
  i = 0;
#if HWY_TARGET <= HWY_AVX3 && !HWY_HAVE_SCALABLE
  if constexpr (hn::MaxLanes(df) == 16) {
    // 64 values at a time: two saturating packs take four vectors of int32 to one of int8 (in an
    // order interleaved by 128-bit lane, which one permutation restores), where DemoteTo spends
    // three shuffles on every 16. Without the overflow fix-up of NearestInt: |x| / s <= 127 here.
    // Measured at half the time of the loop below for rows of 256 and 1024 on Zen 5.
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    const __m512i flip64 = _mm512_set1_epi8(static_cast<char>(offset ? -128 : 0));
    const __m512 inv64 = _mm512_set1_ps(inv_s);
    for (; i + 64 <= K; i += 64) {
      const __m512i a = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + i), inv64));
      const __m512i b = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + i + 16), inv64));
      const __m512i c = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + i + 32), inv64));
      const __m512i e = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + i + 48), inv64));
      const __m512i packed = _mm512_packs_epi16(_mm512_packs_epi32(a, b), _mm512_packs_epi32(c, e));
      _mm512_storeu_si512(q + i, _mm512_xor_si512(_mm512_permutexvar_epi32(order, packed), flip64));
    }
  }
#endif
  for (; i < K; i += static_cast<int64_t>(N)) {
    const size_t m = std::min<size_t>(N, static_cast<size_t>(K - i));
    const auto b =
        hn::Xor(hn::DemoteTo(d8, hn::NearestInt(hn::Mul(LoadUpTo(df, x + i, m), inv))), flip);
    if (m == N)
      hn::StoreU(b, d8, q + i);
    else
      hn::BlendedStore(b, hn::FirstN(d8, m), d8, q + i);
  }
}

// x * Phi(x) with Abramowitz & Stegun's erf fit 7.1.28, erfc(z) = (1 + a1 z + ... + a6 z^6)^-16
// (absolute error < 3e-7): no exponential, about half the operations of the 7.1.26 form with
// ExpFast, which made GELU a third of an int8 feed-forward product. GELU for the int8 epilogue
// only: its absolute error stays below 1e-6, far under the products' own (~1e-2, and the next
// product quantizes to 1/127 of the row's maximum), but far in the left tail (-8.5 < x < -5) the
// fit decays as z^-96 rather than e^(-z^2), so values there are tiny but not relatively accurate.
// z is capped at 6 so that the power stays finite for the Newton step, and past it the tail is 0;
// NaN stays NaN through x.
template <class D>
HWY_INLINE VecT<D> GeluFast(D d, VecT<D> x) {
  const auto z_all = hn::Mul(hn::Abs(x), hn::Set(d, 0.70710678118654752f));
  const auto z = hn::Min(z_all, hn::Set(d, 6.0f));
  auto p = hn::Set(d, 0.0000430638f);
  p = hn::MulAdd(p, z, hn::Set(d, 0.0002765672f));
  p = hn::MulAdd(p, z, hn::Set(d, 0.0001520143f));
  p = hn::MulAdd(p, z, hn::Set(d, 0.0092705272f));
  p = hn::MulAdd(p, z, hn::Set(d, 0.0422820123f));
  p = hn::MulAdd(p, z, hn::Set(d, 0.0705230784f));
  p = hn::MulAdd(p, z, hn::Set(d, 1.0f));
  p = hn::Mul(p, p);
  p = hn::Mul(p, p);
  p = hn::Mul(p, p);
  p = hn::Mul(p, p);
  // Half of erfc(z) = 0.5 / p, the reciprocal estimate refined once: r (1 - 0.5 p r).
  const auto r = hn::ApproximateReciprocal(p);
  const auto half_erfc =
      hn::Mul(r, hn::NegMulAdd(hn::Mul(hn::Set(d, 0.5f), p), r, hn::Set(d, 1.0f)));
  // Past the cap erfc(z) < 2e-17: 0, so that x Phi(x) goes to -0 (and -inf to NaN) as in float32.
  const auto half_erfc_z = hn::IfThenZeroElse(hn::Gt(z_all, hn::Set(d, 6.0f)), half_erfc);
  const auto cdf =
      hn::IfThenElse(hn::Lt(x, hn::Zero(d)), half_erfc_z, hn::Sub(hn::Set(d, 1.0f), half_erfc_z));
  return hn::Mul(x, cdf);
}

// One row of an int8 product: y = act((s32 accumulator - comp[n]) * row_scale * col_scale[n] +
// bias[n]) + residual[n], act a GemmAct, in the one pass over the row; `acc` holds the
// accumulators' bits and may be y itself; bias and residual may be null. comp removes, exactly,
// what the +128 offset of uint8 activations added to them.
void DequantizeRowImpl(const float* acc_bits, float* y, int64_t N, float row_scale,
                       const float* col_scale, const int32_t* comp, const float* bias,
                       const float* residual, int act) {
  const hn::ScalableTag<float> df;
  const hn::RebindToSigned<decltype(df)> di;
  const size_t L = hn::Lanes(df);
  const auto rs = hn::Set(df, row_scale);
  for (int64_t i = 0; i < N; i += static_cast<int64_t>(L)) {
    const size_t m = std::min<size_t>(L, static_cast<size_t>(N - i));
    const auto acc = hn::ConvertTo(
        df, hn::Sub(hn::BitCast(di, LoadUpTo(df, acc_bits + i, m)), LoadUpTo(di, comp + i, m)));
    const auto b = bias ? LoadUpTo(df, bias + i, m) : hn::Zero(df);
    auto v = hn::MulAdd(acc, hn::Mul(rs, LoadUpTo(df, col_scale + i, m)), b);
    if (act == static_cast<int>(GemmAct::relu)) {
      v = hn::Max(v, hn::Zero(df));
    } else if (act == static_cast<int>(GemmAct::gelu)) {
      v = GeluFast(df, v);
    } else if (act == static_cast<int>(GemmAct::gelu_tanh)) {
      v = GeluTanh(df, v);
    }
    if (residual) v = hn::Add(LoadUpTo(df, residual + i, m), v);
    StoreUpTo(v, df, y + i, m);
  }
}

// out[r, :] = q[r, :] * scale[r] for rows [0, rows): an int8 weight as the floats it stands for.
void DequantizeWeightRowsImpl(const int8_t* q, const float* scale, int64_t rows, int64_t cols,
                              float* out) {
  const hn::ScalableTag<float> df;
  const hn::RebindToSigned<decltype(df)> di;
  const hn::Rebind<int8_t, decltype(df)> d8;
  const size_t L = hn::Lanes(df);
  for (int64_t r = 0; r < rows; ++r) {
    const auto s = hn::Set(df, scale[r]);
    const int8_t* src = q + r * cols;
    float* dst = out + r * cols;
    int64_t c = 0;
    for (; c + static_cast<int64_t>(L) <= cols; c += static_cast<int64_t>(L))
      hn::StoreU(hn::Mul(hn::ConvertTo(df, hn::PromoteTo(di, hn::LoadU(d8, src + c))), s), df,
                 dst + c);
    for (; c < cols; ++c) dst[c] = static_cast<float>(src[c]) * scale[r];
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace gaze::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE

#include <map>
#include <memory>
#include <mutex>

#include "gaze/core/allocator.h"
#include "gaze/core/error.h"
#include "gaze/kernels/onednn_matmul.h"
#include "gaze/kernels/scratch.h"

namespace gaze::kernels {

HWY_EXPORT(FloatToBf16Impl);
HWY_EXPORT(QuantizeRowImpl);
HWY_EXPORT(DequantizeRowImpl);
HWY_EXPORT(DequantizeWeightRowsImpl);

void float_to_bf16(const float* x, uint16_t* out, int64_t n) {
  parallel_for(0, n, 1 << 14, [&](int64_t lo, int64_t hi) {
    HWY_DYNAMIC_DISPATCH(FloatToBf16Impl)(x + lo, out + lo, hi - lo);
  });
}

void bf16_to_float(const void* bits, float* out, int64_t n) {
  const auto* src = static_cast<const unsigned char*>(bits);
  for (int64_t i = 0; i < n; ++i) {  // a bf16 value is the high half of a float
    uint16_t h;
    std::memcpy(&h, src + 2 * i, 2);
    const uint32_t wide = static_cast<uint32_t>(h) << 16;
    std::memcpy(out + i, &wide, 4);
  }
}

void quantize_rows(const float* x, int64_t M, int64_t K, int8_t* q, float* scale, bool offset) {
  // Chunks of at least 64K values (~5 us): a parallel region costs ~3 us here, and its rows were
  // mostly written by the other core. Split finer, a 1 x 128 classifier's int8 inference on 2
  // threads spent 8 us per quantization and ran 3-5 % slower.
  parallel_for(
      0, M, std::max<int64_t>(1, 65536 / std::max<int64_t>(K, 1)), [&](int64_t lo, int64_t hi) {
        for (int64_t m = lo; m < hi; ++m)
          HWY_DYNAMIC_DISPATCH(QuantizeRowImpl)(x + m * K, K, q + m * K, scale + m, offset);
      });
}

namespace {

using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;
using Cache = onednn::MatmulCache<7>;

bool isa_has(dnnl::cpu_isa isa, dnnl::cpu_isa want) {
  const auto a = static_cast<unsigned>(isa), w = static_cast<unsigned>(want);
  return (a & w) == w;
}

// The product of one precision and shape, shared by every weight of that shape (the weights'
// scales are applied outside oneDNN, so they are not part of the primitive). `packed`: the weights'
// layout (null: let oneDNN choose, which weights_desc() records).
// bf16_out (bf16 only): C written as bfloat16, for a product whose only reader is another bf16
// product. residual (bf16 only): a float32 [M, N] matrix added to C in the epilogue, a binary
// post-op after the activation's (residual_post_op gives its index).
int residual_post_op(GemmAct act) {
  return act == GemmAct::none ? 0 : 1;
}
std::shared_ptr<const onednn::Matmul> matmul(Precision p, int64_t M, int64_t N, int64_t K,
                                             bool bias, GemmAct act,
                                             const dnnl::memory::desc* packed,
                                             bool bf16_out = false, bool residual = false) {
  static Cache cache;
  const Cache::Key key{static_cast<int64_t>(p),
                       M,
                       N,
                       K,
                       bias,
                       static_cast<int64_t>(act) + (packed ? 16 : 0),
                       int64_t{bf16_out} + 2 * int64_t{residual}};
  return cache.get(key, [&] {
    const bool int8 = p == Precision::int8;
    dnnl::primitive_attr attr;
    // int8 leaves scales, bias and activation to the epilogue (the row scales are not known to
    // oneDNN); bf16 lets oneDNN add the bias and apply the activation while C is in registers.
    if (!int8) {
      dnnl::post_ops po;
      onednn::append_activation(po, act);
      if (residual)
        po.append_binary(dnnl::algorithm::binary_add, dnnl::memory::desc({M, N}, dt::f32, tag::ab));
      attr.set_post_ops(po);
    }
    // int8: uint8 activations (offset by 128) times int8 weights. With int8 activations, oneDNN
    // 2.6 on an AMX CPU packs the weights for its AMX kernel and then has only its reference
    // kernel for few rows in that layout; uint8 runs AMX for many rows and VNNI for few.
    return onednn::make_matmul(
        dnnl::memory::desc({M, K}, int8 ? dt::u8 : dt::bf16, tag::ab),
        packed ? *packed : dnnl::memory::desc({K, N}, int8 ? dt::s8 : dt::bf16, tag::any),
        bias && !int8 ? dnnl::memory::desc({1, N}, dt::f32, tag::ab) : dnnl::memory::desc(),
        dnnl::memory::desc({M, N}, int8 ? dt::s32 : (bf16_out ? dt::bf16 : dt::f32), tag::ab), attr,
        fmt::format("linear ({}): oneDNN could not create a kernel for M={} N={} K={}",
                    enum_name(p), M, N, K));
  });
}

// The packed layout of a [K, N] weight: what the kernels chose for a mid-sized M (the choice does
// not depend on M; every other M is created with this layout, and would fail rather than differ).
// Kept from its first use for the life of the process: weights packed in it must still be read
// in it after the pool size changes (the primitives, keyed by pool size, are made again).
// A PackedWeight keeps the address (map nodes do not move), so its products take no lock for it.
const dnnl::memory::desc* weights_desc(Precision p, int64_t N, int64_t K) {
  static std::mutex mu;
  static std::map<std::array<int64_t, 3>, dnnl::memory::desc> layouts;
  const std::array<int64_t, 3> key{static_cast<int64_t>(p), N, K};
  {
    std::lock_guard lock(mu);
    if (auto it = layouts.find(key); it != layouts.end()) return &it->second;
  }
  const dnnl::memory::desc chosen = matmul(p, 64, N, K, false, GemmAct::none, nullptr)->weights;
  std::lock_guard lock(mu);
  return &layouts.emplace(key, chosen).first->second;
}

const dnnl::memory::desc& layout(const void* kept) {
  return *static_cast<const dnnl::memory::desc*>(kept);
}

// The int8 products' row tasks: f(lo, hi) quantizes, multiplies and dequantizes rows [lo, hi)
// start to end on one thread (oneDNN runs single-threaded inside a parallel region), a task's rows
// few enough that its quantized rows and s32 accumulators (`width` values a row at most) stay near
// 512 KB, in its core's L2 from one pass to the next. Run through oneDNN's own threads instead, one
// pass after the other, they went to memory and back between passes and took a third of int8
// inference. Every thread gets rows of its own from 32 rows a thread: quantization and
// dequantization then run on both threads too, and each thread's rows stay in its cache from one
// product to the next (a 1 x 128 classifier in int8 on 2 threads: 1.91 -> 1.83 ms, where a task
// per thread once needed 256 rows). Fewer rows: one task, parallel inside, where oneDNN splits the
// columns, so that each thread reads only its part of the weights (which then cost more than the
// rows: decoding's few rows and many vocabulary columns).
template <class F>
void for_row_tasks(int64_t M, int64_t width, F&& f) {
  const int64_t nt = num_threads(), fit = std::max<int64_t>(16, (int64_t{1} << 19) / (4 * width));
  if (M < nt * 32 || (nt == 1 && M < fit)) {
    f(0, M);
    return;
  }
  int64_t tasks = std::max<int64_t>(nt, (M + fit - 1) / fit);
  tasks = (tasks + nt - 1) / nt * nt;
  const int64_t rows = (M + tasks - 1) / tasks;
  tasks = (M + rows - 1) / rows;
  // A task that throws (an allocation, a oneDNN primitive made for its row count) ends its
  // thread's chunk; parallel_for rethrows the first error after the region.
  parallel_for(0, tasks, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t t = lo; t < hi; ++t) f(t * rows, std::min(M, (t + 1) * rows));
  });
}

}  // namespace

bool precision_supported(Precision p, std::string* why) {
  if (p == Precision::fp32) return true;
  const dnnl::cpu_isa isa = dnnl::get_effective_cpu_isa();
  const bool ok = p == Precision::bf16 ? isa_has(isa, dnnl::cpu_isa::avx512_core_bf16)
                                       : isa_has(isa, dnnl::cpu_isa::avx512_core_vnni) ||
                                             isa_has(isa, dnnl::cpu_isa::avx2_vnni);
  if (!ok && why)
    *why = p == Precision::bf16 ? "this CPU has no bfloat16 instructions (AVX512-BF16 or AMX)"
                                : "this CPU has no int8 dot-product instructions (VNNI)";
  return ok;
}

bool int8_on_avx2_vnni() {
  const dnnl::cpu_isa isa = dnnl::get_effective_cpu_isa();
  return isa_has(isa, dnnl::cpu_isa::avx2_vnni) && !isa_has(isa, dnnl::cpu_isa::avx512_core_vnni);
}

LowpWeight quantize_weight(const float* w, int64_t rows, int64_t cols, Precision p) {
  GAZE_CHECK(p != Precision::fp32, ValueError, "quantize_weight: precision must be bf16 or int8");
  GAZE_CHECK(rows > 0 && cols > 0, ValueError, "quantize_weight: empty matrix [{}, {}]", rows,
             cols);
  LowpWeight out;
  out.precision = p, out.rows = rows, out.cols = cols;
  const size_t n = static_cast<size_t>(rows) * static_cast<size_t>(cols);
  if (p == Precision::bf16) {
    out.bf16.resize(n);
    float_to_bf16(w, out.bf16.data(), static_cast<int64_t>(n));
  } else {
    out.q.resize(n);
    out.scale.resize(static_cast<size_t>(rows));
    quantize_rows(w, rows, cols, out.q.data(), out.scale.data());
  }
  return out;
}

void dequantize_weight(const LowpWeight& w, float* out) {
  const size_t n = static_cast<size_t>(w.rows) * static_cast<size_t>(w.cols);
  if (w.precision == Precision::bf16) {
    bf16_to_float(w.bf16.data(), out, static_cast<int64_t>(n));
  } else {
    // A quantized folder's matrices pass through here when their float values are first read
    // (Storage::deferred); the scalar loop was a third of loading one (20 ns a value).
    const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(1, w.cols));
    parallel_for(0, w.rows, grain, [&](int64_t lo, int64_t hi) {
      HWY_DYNAMIC_DISPATCH(DequantizeWeightRowsImpl)
      (w.q.data() + lo * w.cols, w.scale.data() + lo, hi - lo, w.cols, out + lo * w.cols);
    });
  }
}

PackedWeight::PackedWeight(const LowpWeight& w, int64_t row0, int64_t rows)
    : precision_(w.precision), n_(rows), k_(w.cols) {
  GAZE_CHECK(w.precision != Precision::fp32 && row0 >= 0 && rows > 0 && row0 + rows <= w.rows,
             ValueError, "PackedWeight: rows [{}, {}) of a [{}, {}] {} weight", row0, row0 + rows,
             w.rows, w.cols, enum_name(w.precision));
  const bool int8 = precision_ == Precision::int8;
  if (int8) {
    scale_.assign(w.scale.begin() + row0, w.scale.begin() + row0 + rows);
    // What the activations' +128 offset adds to output n: 128 * sum_k q[n, k].
    comp_.resize(static_cast<size_t>(rows));
    // In wrapping 32-bit arithmetic, as the accumulators: for very long rows both wrap, and the
    // difference is still the exact int8 product whenever that fits in int32.
    for (int64_t n = 0; n < rows; ++n) {
      uint32_t sum = 0;
      const int8_t* row = w.q.data() + (row0 + n) * k_;
      for (int64_t k = 0; k < k_; ++k) sum += static_cast<uint32_t>(static_cast<int32_t>(row[k]));
      comp_[static_cast<size_t>(n)] = static_cast<int32_t>(128u * sum);
    }
  }
  layout_ = weights_desc(precision_, n_, k_);
  const dnnl::memory::desc& packed = layout(layout_);
  bytes_ = packed.get_size();
  data_ = allocator::allocate(bytes_);
  // The rows as stored ([N, K] row-major) are the [K, N] matrix oneDNN multiplies by, transposed.
  const void* src = int8 ? static_cast<const void*>(w.q.data() + row0 * k_)
                         : static_cast<const void*>(w.bf16.data() + row0 * k_);
  const dnnl::memory::desc plain({k_, n_}, int8 ? dt::s8 : dt::bf16, tag::ba);
  const dnnl::engine& e = onednn::engine();
  dnnl::memory from(plain, e, const_cast<void*>(src)), to(packed, e, data_);
  dnnl::stream s(e);
  dnnl::reorder(from, to).execute(s, from, to);
  s.wait();
}

PackedWeight::~PackedWeight() {
  if (data_) allocator::deallocate(data_, bytes_);
}

void PackedWeight::run(const float* x, int64_t M, float* y, const float* bias, GemmAct act) const {
  if (M == 0) return;
  if (precision_ == Precision::bf16) {
    const size_t mk = static_cast<size_t>(M) * static_cast<size_t>(k_);
    Scratch<uint16_t> a(mk);
    float_to_bf16(x, a.data(), static_cast<int64_t>(mk));
    run_bf16(a.data(), M, y, bias, act);
    return;
  }
  run_parts(x, M, std::span<float* const>(&y, 1), bias, act);
}

void PackedWeight::run_bf16(const uint16_t* a, int64_t M, float* y, const float* bias,
                            GemmAct act) const {
  GAZE_CHECK(precision_ == Precision::bf16, ValueError, "linear: bfloat16 inputs for a {} weight",
             enum_name(precision_));
  if (M == 0) return;
  const dnnl::memory::desc& packed = layout(layout_);
  onednn::execute(*matmul(precision_, M, n_, k_, bias != nullptr, act, &packed), a, data_, y, bias);
}

void PackedWeight::run_parts(const float* x, int64_t M, std::span<float* const> ys,
                             const float* bias, GemmAct act) const {
  const auto parts = static_cast<int64_t>(ys.size());
  GAZE_CHECK(precision_ == Precision::int8 && parts >= 1 && n_ % parts == 0, ValueError,
             "linear: a {} product of {} outputs cannot split into {} equal parts",
             enum_name(precision_), n_, parts);
  if (M == 0) return;
  for_row_tasks(M, std::max(n_, k_), [&](int64_t lo, int64_t hi) {
    run_int8_rows(x + lo * k_, lo, hi - lo, ys, bias, act, nullptr);
  });
}

void PackedWeight::run_int8_rows(const float* x, int64_t row0, int64_t M,
                                 std::span<float* const> ys, const float* bias, GemmAct act,
                                 const float* residual) const {
  const dnnl::memory::desc& packed = layout(layout_);
  const auto parts = static_cast<int64_t>(ys.size());
  const int64_t np = n_ / parts;
  Scratch<int8_t> q(static_cast<size_t>(M) * static_cast<size_t>(k_));
  Scratch<float> scales(static_cast<size_t>(M));
  quantize_rows(x, M, k_, q.data(), scales.data(), true);
  // s32 accumulators, written where the floats go (one output) and dequantized in place, or to a
  // block of their own that each part's rows are dequantized out of.
  Scratch<float> block(parts > 1 ? static_cast<size_t>(M) * static_cast<size_t>(n_) : 0);
  float* acc = parts > 1 ? block.data() : ys[0] + row0 * n_;
  onednn::execute(*matmul(precision_, M, n_, k_, false, GemmAct::none, &packed), q.data(), data_,
                  acc, nullptr);
  // The same 64K-value chunks as quantize_rows (a feed-forward's 128 x 1024 still splits: inline,
  // it was slower).
  parallel_for(0, M, std::max<int64_t>(1, 65536 / n_), [&](int64_t lo, int64_t hi) {
    for (int64_t m = lo; m < hi; ++m)
      for (int64_t p = 0; p < parts; ++p) HWY_DYNAMIC_DISPATCH(DequantizeRowImpl)
    (acc + m * n_ + p * np, ys[static_cast<size_t>(p)] + (row0 + m) * np, np, scales[m],
     scale_.data() + p * np, comp_.data() + p * np, bias ? bias + p * np : nullptr,
     residual ? residual + (row0 + m) * n_ + p * np : nullptr, static_cast<int>(act));
  });
}

void PackedWeight::run_feed_forward(const float* x, int64_t M, const float* bias, GemmAct act,
                                    const PackedWeight& second, const float* bias2, float* y,
                                    const float* residual) const {
  GAZE_CHECK(second.precision_ == precision_ && second.k_ == n_, ValueError,
             "feed-forward: a {} [{}, {}] product cannot feed a {} [{}, {}] one",
             enum_name(precision_), n_, k_, enum_name(second.precision_), second.n_, second.k_);
  if (M == 0) return;
  if (precision_ == Precision::bf16) {
    const size_t mk = static_cast<size_t>(M) * static_cast<size_t>(k_),
                 mn = static_cast<size_t>(M) * static_cast<size_t>(n_);
    const auto &packed = layout(layout_), &packed2 = layout(second.layout_);
    // The hidden activations leave the first product's epilogue as bf16 (oneDNN rounds to nearest
    // even, as float_to_bf16 does): the second product reads them without a conversion pass.
    Scratch<uint16_t> a(mk), h(mn);
    float_to_bf16(x, a.data(), static_cast<int64_t>(mk));
    onednn::execute(*matmul(precision_, M, n_, k_, bias != nullptr, act, &packed, true), a.data(),
                    data_, h.data(), bias);
    // Held for the call: another thread filling the primitive cache may clear it meanwhile.
    const auto m2 = matmul(precision_, M, second.n_, n_, bias2 != nullptr, GemmAct::none, &packed2,
                           false, residual != nullptr);
    std::unordered_map<int, dnnl::memory> extra;
    if (residual)
      extra.emplace(
          DNNL_ARG_ATTR_MULTIPLE_POST_OP(residual_post_op(GemmAct::none)) | DNNL_ARG_SRC_1,
          dnnl::memory(dnnl::memory::desc({M, second.n_}, dt::f32, tag::ab), onednn::engine(),
                       const_cast<float*>(residual)));
    onednn::execute(*m2, h.data(), second.data_, y, bias2, std::move(extra));
    return;
  }
  // int8: the two products one row task after the other, so that a task's hidden rows stay in its
  // core's L2 between them. (Quantizing each hidden row in the pass that dequantizes it, while it
  // is in L1, was measured: no faster, so not worth a second path.)
  for_row_tasks(M, std::max({n_, k_, second.n_}), [&](int64_t lo, int64_t hi) {
    Scratch<float> hidden(static_cast<size_t>(hi - lo) * static_cast<size_t>(n_));
    float* const h[1] = {hidden.data()};
    float* const out[1] = {y};
    run_int8_rows(x + lo * k_, 0, hi - lo, h, bias, act, nullptr);
    second.run_int8_rows(hidden.data(), lo, hi - lo, out, bias2, GemmAct::none, residual);
  });
}

std::string PackedWeight::implementation(int64_t M) const {
  const dnnl::memory::desc& packed = layout(layout_);
  return matmul(precision_, M, n_, k_, false, GemmAct::none, &packed)->impl;
}

}  // namespace gaze::kernels

#endif  // HWY_ONCE
