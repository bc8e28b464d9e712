// Pointwise LSTM and GRU cells (PyTorch's gate order and equations) over raw buffers, forward and
// backward, with a per-row "valid" flag: invalid rows (past a sequence's length) carry their state.
#pragma once

#include <cstdint>

namespace gaze::kernels {

// LSTM, gates in order i, f, g, o. xg = x W_ih^T + b_ih and hg = h W_hh^T + b_hh, each [B, 4H].
//   i = s(xi + hi), f = s(xf + hf), g = tanh(xg + hg), o = s(xo + ho)
//   c = f c_prev + i g,  h = o tanh(c)      (rows with valid[b] == 0: c = c_prev, h = h_prev)
// act [B, 4H] receives i, f, g, o for the backward.
template <typename T>
void lstm_cell(const T* xg, const T* hg, const T* h_prev, const T* c_prev, const bool* valid,
               int64_t B, int64_t H, T* act, T* h, T* c);

// dh, dc: gradients of h and c; outputs dgates [B, 4H] (for both xg and hg), dc_prev and dh_prev
// (non-zero only on carried rows: elsewhere h_prev reaches the output through hg).
template <typename T>
void lstm_cell_backward(const T* act, const T* c_prev, const T* c, const bool* valid, const T* dh,
                        const T* dc, int64_t B, int64_t H, T* dgates, T* dc_prev, T* dh_prev);

// GRU, gates in order r, z, n (xg, hg [B, 3H] as above):
//   r = s(xr + hr), z = s(xz + hz), n = tanh(xn + r hn),  h = (1 - z) n + z h_prev
// act [B, 3H] receives r, z, n.
template <typename T>
void gru_cell(const T* xg, const T* hg, const T* h_prev, const bool* valid, int64_t B, int64_t H,
              T* act, T* h);

// dh: gradient of h; outputs dxg [B, 3H], dhg [B, 3H] and dh_prev (the direct z h_prev path, or all
// of dh on carried rows).
template <typename T>
void gru_cell_backward(const T* act, const T* hg, const T* h_prev, const bool* valid, const T* dh,
                       int64_t B, int64_t H, T* dxg, T* dhg, T* dh_prev);

}  // namespace gaze::kernels
