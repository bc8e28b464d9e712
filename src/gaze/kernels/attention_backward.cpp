// Fused attention backward (FlashAttention-2): probabilities are recomputed block by block from the
// saved log-sum-exp, so memory stays O(T). Tasks own (batch, kv head, chunk of key blocks) and loop
// over every query head of the group, so each dK/dV row has exactly one writer: no atomics, and the
// result does not depend on scheduling. dQ is written directly when a kv head is one task (the
// usual case); otherwise each chunk fills its own partial dQ and the partials are summed in a fixed
// order.
#include "gaze/kernels/attention.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "gaze/kernels/attention_backward.cpp"
// foreach_target.h must come first: it re-includes this file once per SIMD target.
// clang-format off
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "gaze/kernels/attention-inl.h"
// clang-format on

#include "gaze/core/threads.h"
#include "gaze/kernels/scratch.h"

HWY_BEFORE_NAMESPACE();
namespace gaze::kernels {
namespace HWY_NAMESPACE {

constexpr int64_t kBwdRows = 64, kBwdKeys = 64;

// Per-thread buffers. Q^T and dO^T of the current query head are packed once and serve every key
// block; the score-shaped tiles are [keys x queries].
template <typename T>
struct BwdBuffers {
  BwdBuffers(const AttentionArgs<T>& a, size_t L, int64_t chunk_keys)
      : dp(RoundUp(a.D, L)),
        dvp(RoundUp(a.Dv, L)),
        tqp(RoundUp(a.Tq, L)),
        brp(RoundUp(kBwdRows, L)),
        qt(a.D * tqp),
        dot(a.Dv * tqp),
        qp(a.D % L ? a.Tq * dp : 1),
        dop(a.Dv % L ? a.Tq * dvp : 1),
        kp(a.D % L ? kBwdKeys * dp : 1),
        dq(tqp * dp),
        delta(tqp),
        lsep(tqp),
        st(kBwdKeys * brp),
        dst(kBwdKeys * brp),
        dk(chunk_keys * dp),
        dv(chunk_keys * dvp),
        q_done(static_cast<size_t>((a.Tq + kBwdRows - 1) / kBwdRows + 1)) {}
  size_t dp, dvp, tqp, brp;
  Scratch<T> qt, dot, qp, dop, kp, dq, delta, lsep, st, dst, dk, dv;
  Scratch<uint8_t> q_done;  // per query block of the current head: dQ rows written yet
};

// Rows [r0, r1) of an accumulator, w columns each, set to zero.
template <typename T>
void ZeroRows(T* p, size_t ld, int64_t r0, int64_t r1, size_t w) {
  for (int64_t r = r0; r < r1; ++r) std::fill(p + r * ld, p + r * ld + w, T(0));
}

// Rows of a [T, D] operand as a B matrix: in place when whole vectors fit in a row, else a padded
// copy.
template <typename T>
const T* RowsOperand(const T* src, int64_t stride, int64_t rows, int64_t cols, size_t L, size_t ldp,
                     T* buf, size_t* ldb) {
  if (cols % static_cast<int64_t>(L) == 0) {
    *ldb = static_cast<size_t>(stride);
    return src;
  }
  PackRows(src, stride, rows, cols, buf, ldp);
  *ldb = ldp;
  return buf;
}

// One task: key blocks [kb0, kb1) of kv head kvh in batch b, for every query head in its group.
// dq_out/dq_layout: where this task's dQ goes (the real dq, or this chunk's partial buffer).
template <typename T>
void BackwardTask(const AttentionArgs<T>& a, int64_t b, int64_t kvh, int64_t kb0, int64_t kb1,
                  const T* out, const T* dout, const HeadLayout& ol, const T* lse, T* dq_out,
                  const HeadLayout& dq_layout, T* dk, T* dv, BwdBuffers<T>& w) {
  const hn::ScalableTag<T> d;
  using V = VecT<decltype(d)>;
  const size_t L = hn::Lanes(d), dp = w.dp, dvp = w.dvp, tqp = w.tqp;
  const size_t dvw = static_cast<size_t>(a.Dv) / L * L;  // whole vectors of a value row
  const int64_t group = a.H / a.Hkv;
  const int64_t kfirst = kb0 * kBwdKeys,
                klast = std::min(a.Tk, kb1 * kBwdKeys);  // this task's keys
  int64_t kstop = klast;  // keys beyond the length get zero gradient without being visited
  if (a.key_lengths) kstop = std::max(kfirst, std::min(kstop, a.key_lengths[b]));
  const int64_t nkeys = klast - kfirst;
  // The gradients accumulate in the outputs' own rows when those are whole vectors (nothing to
  // skip), else in padded buffers copied out at the end. (The copies were 4 % of forward+backward
  // at T = 128.)
  const bool whole_d = a.D % static_cast<int64_t>(L) == 0,
             whole_dv = a.Dv % static_cast<int64_t>(L) == 0;
  T* const dkb = dk + b * a.k_layout.b + kvh * a.k_layout.h;
  T* const dvb = dv + b * a.v_layout.b + kvh * a.v_layout.h;
  T* const dk_acc = whole_d ? dkb + kfirst * a.k_layout.t : w.dk.data();
  T* const dv_acc = whole_dv ? dvb + kfirst * a.v_layout.t : w.dv.data();
  const size_t ld_dk = whole_d ? static_cast<size_t>(a.k_layout.t) : dp,
               ld_dv = whole_dv ? static_cast<size_t>(a.v_layout.t) : dvp;
  // Accumulator rows start with their first product instead of a zero fill (the fills were 4 % of
  // forward+backward at T = 128: a pass over every dQ, dK and dV row). Rows no product reaches are
  // zeroed: keys past the length here, blocks no query sees and query blocks no key block reaches
  // below.
  ZeroRows(dk_acc, ld_dk, kstop - kfirst, nkeys, dp);
  ZeroRows(dv_acc, ld_dv, kstop - kfirst, nkeys, dvp);
  const T* kb = a.k + b * a.k_layout.b + kvh * a.k_layout.h;
  const T* vb = a.v + b * a.v_layout.b + kvh * a.v_layout.h;
  const V vscale = hn::Set(d, static_cast<T>(a.scale));
  const T inf = std::numeric_limits<T>::infinity();
  const ExpArgs<T> ea = exp_args(a);
  const V vsk = hn::Set(d, ea.sk), vmk = hn::Set(d, ea.mk);

  for (int64_t hq = 0; hq < group; ++hq) {
    const int64_t h = kvh * group + hq;
    const T* qh = a.q + b * a.q_layout.b + h * a.q_layout.h;
    const T* oh = out + b * ol.b + h * ol.h;
    const T* doh = dout + b * ol.b + h * ol.h;
    PackTransposed(d, qh, a.q_layout.t, a.Tq, a.D, w.qt.data(), tqp);
    PackTransposed(d, doh, ol.t, a.Tq, a.Dv, w.dot.data(), tqp);
    size_t ldq = 0, lddo = 0;
    const T* qrows = RowsOperand(qh, a.q_layout.t, a.Tq, a.D, L, dp, w.qp.data(), &ldq);
    const T* dorows = RowsOperand(doh, ol.t, a.Tq, a.Dv, L, dvp, w.dop.data(), &lddo);
    for (int64_t i = 0; i < static_cast<int64_t>(tqp); ++i) {
      if (i >= a.Tq) {  // padding lanes: no probability, no gradient
        w.delta[i] = 0, w.lsep[i] = inf;
        continue;
      }
      // Delta_i = dO_i . O_i (= sum_j P_ij dP_ij), in vectors: a scalar loop is one chain of
      // dependent additions, which at T = 128 cost a fifth of the backward.
      const T *dor = doh + i * ol.t, *orow = oh + i * ol.t;
      V acc = hn::Zero(d);
      for (size_t c = 0; c < dvw; c += L)
        acc = hn::MulAdd(hn::LoadU(d, dor + c), hn::LoadU(d, orow + c), acc);
      T tail = 0;
      for (size_t c = dvw; c < static_cast<size_t>(a.Dv); ++c) tail += dor[c] * orow[c];
      w.delta[i] = SumLanes(d, acc) + tail;
      const T l = lse[(b * a.H + h) * a.Tq + i];
      w.lsep[i] = l == -inf ? inf : l;  // a query that saw no key: probabilities 0
    }
    T* const dqh = dq_out + b * dq_layout.b + h * dq_layout.h;
    T* const dq_acc = whole_d ? dqh : w.dq.data();
    const size_t ld_dq = whole_d ? static_cast<size_t>(dq_layout.t) : dp;
    const int64_t qblocks = (a.Tq + kBwdRows - 1) / kBwdRows;
    std::fill(w.q_done.data(), w.q_done.data() + qblocks, uint8_t{0});

    for (int64_t j0 = kfirst; j0 < kstop; j0 += kBwdKeys) {
      const int64_t bc = std::min(kBwdKeys, kstop - j0);
      const T* krows_src = kb + j0 * a.k_layout.t;
      const T* vrows_src = vb + j0 * a.v_layout.t;
      size_t ldk = 0;
      const T* krows = RowsOperand(krows_src, a.k_layout.t, bc, a.D, L, dp, w.kp.data(), &ldk);
      T* dkj = dk_acc + (j0 - kfirst) * ld_dk;
      T* dvj = dv_acc + (j0 - kfirst) * ld_dv;
      // Causal: queries before j0 - offset cannot see this block.
      int64_t i_lo = a.causal ? std::clamp<int64_t>(j0 - a.query_offset, 0, a.Tq) : 0;
      // A window: only queries within it of some key of the block.
      int64_t i_hi = a.Tq;
      if (a.window >= 0) {
        i_lo = std::max(i_lo, std::clamp<int64_t>(j0 - a.window - a.query_offset, 0, a.Tq));
        i_hi = std::clamp<int64_t>(j0 + bc - 1 + a.window - a.query_offset + 1, 0, a.Tq);
      }
      const int64_t i_first = i_lo / kBwdRows * kBwdRows;
      if (i_first >= i_hi && hq == 0) {  // no query sees these keys
        ZeroRows(dkj, ld_dk, 0, bc, dp);
        ZeroRows(dvj, ld_dv, 0, bc, dvp);
      }
      for (int64_t i0 = i_first; i0 < i_hi; i0 += kBwdRows) {
        const size_t rows = static_cast<size_t>(std::min(kBwdRows, a.Tq - i0)),
                     brp = RoundUp(rows, L);
        // The same query range for every head of the group: the first head's first block starts
        // dK_j and dV_j.
        const bool kv_acc = hq > 0 || i0 > i_first;
        const bool q_acc = w.q_done[i0 / kBwdRows] != 0;
        w.q_done[i0 / kBwdRows] = 1;
        // St = K Q^T (identical arithmetic to the forward's scores); dPt = V dO^T.
        MatmulPacked(d, krows_src, a.k_layout.t, 1, bc, a.D, w.qt.data() + i0, tqp, brp / L,
                     w.st.data(), brp, false);
        MatmulPacked(d, vrows_src, a.v_layout.t, 1, bc, a.Dv, w.dot.data() + i0, tqp, brp / L,
                     w.dst.data(), brp, false);
        const bool rowpass = BlockNeedsRowPass(a, i0, static_cast<int64_t>(rows), j0, bc);
        for (int64_t j = 0; j < bc; ++j) {
          T* st = w.st.data() + j * brp;
          T* ds = w.dst.data() + j * brp;
          if (rowpass) PrepareKeyRow(d, a, b, h, j0 + j, i0, brp, st);
          // P = exp(s - lse); dS = P * (dP' - Delta) * scale with dP' the gradient through the
          // dropout mask; then P becomes the dropped-out P that multiplied V in the forward.
          if (a.dropout_p > 0) DropoutKeyRow(a, b, h, j0 + j, i0, static_cast<int64_t>(rows), ds);
          for (size_t c = 0; c < brp; c += L) {
            const V p =
                SoftmaxExp(d, hn::MulSub(hn::LoadU(d, st + c), vsk,
                                         hn::Mul(hn::LoadU(d, w.lsep.data() + i0 + c), vmk)));
            hn::StoreU(p, d, st + c);
            const V g = hn::Sub(hn::LoadU(d, ds + c), hn::LoadU(d, w.delta.data() + i0 + c));
            hn::StoreU(hn::Mul(hn::Mul(p, g), vscale), d, ds + c);
          }
          if (a.dropout_p > 0) DropoutKeyRow(a, b, h, j0 + j, i0, static_cast<int64_t>(rows), st);
        }
        // dV_j += P^T dO_i ; dK_j += dS^T Q_i ; dQ_i += dS K_j  (scale is inside dS)
        MatmulPacked(d, w.st.data(), static_cast<ptrdiff_t>(brp), 1, bc, rows, dorows + i0 * lddo,
                     lddo, dvp / L, dvj, ld_dv, kv_acc);
        MatmulPacked(d, w.dst.data(), static_cast<ptrdiff_t>(brp), 1, bc, rows, qrows + i0 * ldq,
                     ldq, dp / L, dkj, ld_dk, kv_acc);
        MatmulPacked(d, w.dst.data(), 1, static_cast<ptrdiff_t>(brp), rows, bc, krows, ldk, dp / L,
                     dq_acc + i0 * ld_dq, ld_dq, q_acc);
      }
    }
    for (int64_t qb = 0; qb < qblocks; ++qb)  // queries no key block of this task reached
      if (!w.q_done[qb])
        ZeroRows(dq_acc, ld_dq, qb * kBwdRows, std::min(a.Tq, (qb + 1) * kBwdRows), dp);
    if (!whole_d)
      for (int64_t i = 0; i < a.Tq; ++i)
        std::memcpy(dqh + i * dq_layout.t, w.dq.data() + i * dp, sizeof(T) * a.D);
  }
  for (int64_t j = 0; j < nkeys && !(whole_d && whole_dv); ++j) {
    if (!whole_d)
      std::memcpy(dkb + (kfirst + j) * a.k_layout.t, w.dk.data() + j * dp, sizeof(T) * a.D);
    if (!whole_dv)
      std::memcpy(dvb + (kfirst + j) * a.v_layout.t, w.dv.data() + j * dvp, sizeof(T) * a.Dv);
  }
}

template <typename T>
void BackwardImpl(const AttentionArgs<T>& a, const T* out, const T* dout, const HeadLayout& ol,
                  const T* lse, T* dq, T* dk, T* dv) {
  const hn::ScalableTag<T> d;
  const size_t L = hn::Lanes(d);
  const int64_t kblocks = std::max<int64_t>(1, (a.Tk + kBwdKeys - 1) / kBwdKeys);
  const int threads = num_threads();
  // Split a kv head's keys into chunks only when there are fewer kv heads than threads to keep
  // busy.
  const int64_t heads = a.B * a.Hkv;
  if (heads == 0) return;  // an empty batch: nothing to write
  const int64_t chunks = std::min(kblocks, std::max<int64_t>(1, (2 * threads + heads - 1) / heads));
  const int64_t per_chunk = (kblocks + chunks - 1) / chunks;
  const int64_t tasks = heads * chunks;
  // Partial dQ per chunk, [chunks, B, H, Tq, D] contiguous, when a kv head spans several tasks.
  const HeadLayout part{a.H * a.Tq * a.D, a.Tq * a.D, a.D};
  Scratch<T> partial(chunks > 1 ? static_cast<size_t>(chunks * a.B * a.H * a.Tq * a.D) : 1);
  const int team = team_for(tasks);
  PerThread<BwdBuffers<T>> buffers(team, a, L, per_chunk * kBwdKeys);
  for_team(team, tasks, 1, [&](int t, int64_t task) {
    const int64_t c = task % chunks, bk = task / chunks;
    const int64_t kb0 = c * per_chunk, kb1 = std::min(kblocks, kb0 + per_chunk);
    T* dq_dst = chunks > 1 ? partial.data() + c * a.B * a.H * a.Tq * a.D : dq;
    BackwardTask(a, bk / a.Hkv, bk % a.Hkv, kb0, kb1, out, dout, ol, lse, dq_dst,
                 chunks > 1 ? part : a.q_layout, dk, dv, buffers[t]);
  });
  if (chunks > 1) {  // dq = sum of the partials, in chunk order
    parallel_for(0, a.B * a.H * a.Tq, 256, [&](int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi; ++r) {
        const int64_t b = r / (a.H * a.Tq), h = (r / a.Tq) % a.H, i = r % a.Tq;
        T* dst = dq + b * a.q_layout.b + h * a.q_layout.h + i * a.q_layout.t;
        const size_t stride = static_cast<size_t>(a.B * a.H * a.Tq * a.D);
        const T* src = partial.data() + r * a.D;
        for (int64_t c = 0; c < a.D; ++c) {
          T acc = src[c];
          for (int64_t k = 1; k < chunks; ++k) acc += src[k * stride + c];
          dst[c] = acc;
        }
      }
    });
  }
}

void BackwardF32(const AttentionArgs<float>& a, const float* out, const float* dout,
                 const HeadLayout& ol, const float* lse, float* dq, float* dk, float* dv) {
  BackwardImpl(a, out, dout, ol, lse, dq, dk, dv);
}
void BackwardF64(const AttentionArgs<double>& a, const double* out, const double* dout,
                 const HeadLayout& ol, const double* lse, double* dq, double* dk, double* dv) {
  BackwardImpl(a, out, dout, ol, lse, dq, dk, dv);
}

}  // namespace HWY_NAMESPACE
}  // namespace gaze::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include "gaze/core/error.h"
#include "gaze/kernels/dispatch.h"

namespace gaze::kernels {

HWY_EXPORT(BackwardF32);
HWY_EXPORT(BackwardF64);

template <typename T>
void attention_backward(const AttentionArgs<T>& a, const T* out, const T* dout,
                        const HeadLayout& out_layout, const T* lse, T* dq, T* dk, T* dv) {
  GAZE_CHECK(!a.kv_bf16, ValueError, "attention backward: keys and values kept in bf16 have none");
  pick<T>(HWY_DYNAMIC_DISPATCH(BackwardF32), HWY_DYNAMIC_DISPATCH(BackwardF64))(
      a, out, dout, out_layout, lse, dq, dk, dv);
}

template void attention_backward<float>(const AttentionArgs<float>&, const float*, const float*,
                                        const HeadLayout&, const float*, float*, float*, float*);
template void attention_backward<double>(const AttentionArgs<double>&, const double*, const double*,
                                         const HeadLayout&, const double*, double*, double*,
                                         double*);

}  // namespace gaze::kernels
#endif  // HWY_ONCE
