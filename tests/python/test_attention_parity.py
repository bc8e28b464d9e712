"""Parity of gaze's attention functions and RNN attention modules with PyTorch references written here
(torch 1.13 has no public scaled_dot_product_attention): outputs and gradients."""
import math

import numpy as np
import pytest
import torch

import gaze
import gaze.nn.functional as GF
from parity import REDUCTION, assert_close, check, rng


def torch_sdpa(q, k, v, attn_mask=None, is_causal=False, scale=None, alibi=None, bottom_right=False):
    """PyTorch 2.x scaled_dot_product_attention semantics, composed (bhtd, kv heads repeated)."""
    g = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(g, dim=1), v.repeat_interleave(g, dim=1)
    s = (q @ k.transpose(-1, -2)) * (1 / math.sqrt(q.shape[-1]) if scale is None else scale)
    Tq, Tk = q.shape[-2], k.shape[-2]
    off = Tk - Tq if bottom_right else 0
    if alibi is not None:
        dist = (torch.arange(Tq)[:, None] + off - torch.arange(Tk)[None, :]).abs().to(s.dtype)
        s = s - alibi[:, None, None] * dist
    if is_causal:
        s = s.masked_fill(torch.arange(Tk)[None, :] > torch.arange(Tq)[:, None] + off, float("-inf"))
    if attn_mask is not None:
        s = s.masked_fill(~attn_mask, float("-inf")) if attn_mask.dtype == torch.bool else s + attn_mask
    return torch.softmax(s, -1) @ v


def qkv(B, H, Hkv, Tq, Tk, D, seed):
    r = rng(seed)
    return (r.standard_normal((B, H, Tq, D)).astype(np.float32), r.standard_normal((B, Hkv, Tk, D)).astype(np.float32),
            r.standard_normal((B, Hkv, Tk, D)).astype(np.float32))


@pytest.mark.parametrize("case", ["plain", "causal", "causal_br", "bool_mask", "float_mask", "mask_bcast", "gqa",
                                  "scale", "alibi", "T1", "long"])
def test_sdpa(case):
    B, H, Hkv, Tq, Tk, D = 2, 4, 4, 37, 53, 24
    kw_g, kw_t = {}, {}
    if case == "causal":
        Tq = Tk = 70
        kw_g["is_causal"] = kw_t["is_causal"] = True
    elif case == "causal_br":
        kw_g.update(is_causal=True, causal_alignment="bottom_right")
        kw_t.update(is_causal=True, bottom_right=True)
    elif case == "gqa":
        Hkv = 2
    elif case == "scale":
        kw_g["scale"] = kw_t["scale"] = 0.05
    elif case == "T1":
        Tq, Tk = 1, 1
    elif case == "long":
        Tq, Tk, D = 300, 300, 64
        kw_g["is_causal"] = kw_t["is_causal"] = True
    q, k, v = qkv(B, H, Hkv, Tq, Tk, D, 1)
    r = rng(2)
    if case == "bool_mask":
        m = r.random((B, 1, Tq, Tk)) < 0.7
        m[..., 0] = True
        kw_g["attn_mask"], kw_t["attn_mask"] = gaze.tensor(m), torch.tensor(m)
    elif case == "float_mask":
        f = r.standard_normal((B, H, Tq, Tk)).astype(np.float32)
        kw_g["attn_mask"], kw_t["attn_mask"] = gaze.tensor(f), torch.tensor(f)
    elif case == "mask_bcast":
        f = r.standard_normal((Tk,)).astype(np.float32)
        kw_g["attn_mask"], kw_t["attn_mask"] = gaze.tensor(f), torch.tensor(f)
    elif case == "alibi":
        kw_g["alibi_slopes"] = gaze.alibi_slopes(H)
        kw_t["alibi"] = torch.tensor(gaze.alibi_slopes(H).numpy())
    check(lambda a, b, c: GF.scaled_dot_product_attention(a, b, c, **kw_g),
          lambda a, b, c: torch_sdpa(a, b, c, **kw_t), q, k, v, tol=REDUCTION, what=case)


@pytest.mark.parametrize("causal,Tq,Tk,w", [(False, 200, 200, 7), (True, 200, 200, 7), (True, 40, 300, 20),
                                             (False, 300, 300, 0), (True, 150, 150, 500)])
def test_sdpa_sliding_window_equals_torch_with_the_band_mask(causal, Tq, Tk, w):
    """window=w: query i (at i + Tk - Tq with bottom-right alignment) sees keys within w positions; torch
    gets the same band as an explicit boolean mask. Forward and gradients."""
    q, k, v = qkv(2, 4, 2, Tq, Tk, 32, 5)
    pos = np.arange(Tq)[:, None] + (Tk - Tq)
    band = np.abs(pos - np.arange(Tk)[None, :]) <= w
    if causal:
        band &= np.arange(Tk)[None, :] <= pos
    check(lambda a, b, c: GF.scaled_dot_product_attention(a, b, c, is_causal=causal, window=w,
                                                          causal_alignment="bottom_right"),
          lambda a, b, c: torch_sdpa(a, b, c, attn_mask=torch.tensor(band)), q, k, v, tol=REDUCTION,
          what=f"window {w}")
    with pytest.raises(ValueError, match="window"):
        GF.scaled_dot_product_attention(gaze.tensor(q), gaze.tensor(k), gaze.tensor(v), window=-2)
    # A window wider than any distance is no window (and no overflow of the kernel's arithmetic).
    wide = GF.scaled_dot_product_attention(gaze.tensor(q), gaze.tensor(k), gaze.tensor(v), is_causal=causal,
                                           causal_alignment="bottom_right", window=2**62)
    full = GF.scaled_dot_product_attention(gaze.tensor(q), gaze.tensor(k), gaze.tensor(v), is_causal=causal,
                                           causal_alignment="bottom_right")
    assert np.array_equal(wide.numpy(), full.numpy())


def test_multihead_attention_and_models_take_a_window():
    """nn.MultiheadAttention(window=...) is torch's MHA with the band mask; a Transformer classifier with
    model.attention_window >= T computes what the full model computes, and a narrow window changes it."""
    E, H, T = 32, 4, 30
    mha = gaze.nn.MultiheadAttention(E, H, batch_first=True)
    ref = torch.nn.MultiheadAttention(E, H, batch_first=True)
    with torch.no_grad():
        for name, p in ref.named_parameters():
            p.copy_(torch.tensor(dict(mha.named_parameters())[name].detach().numpy()))
    x = rng(6).standard_normal((2, T, E)).astype(np.float32)
    band = np.abs(np.arange(T)[:, None] - np.arange(T)[None, :]) <= 3
    got, _ = mha.forward(gaze.tensor(x), gaze.tensor(x), gaze.tensor(x), need_weights=False, window=3)
    want, _ = ref(torch.tensor(x), torch.tensor(x), torch.tensor(x), need_weights=False,
                  attn_mask=torch.tensor(~band))
    assert_close(got.detach().numpy(), want.detach().numpy(), 1e-5, 1e-5, "MultiheadAttention window")
    tokens, lengths = gaze.tensor(np.arange(2 * T).reshape(2, T) % 50 + 1), gaze.tensor(np.array([T, 20]))
    outs = {}
    for w in (-1, T, 2):
        gaze.manual_seed(0)
        m = gaze.models.TransformerClassifier(vocab_size=60, num_classes=2, d_model=32, nhead=4, num_layers=2,
                                              dim_feedforward=64, dropout=0.0, attention_window=w)
        m.eval()
        outs[w] = m(tokens, lengths).detach().numpy()
    assert np.array_equal(outs[-1], outs[T])
    assert not np.allclose(outs[-1], outs[2])


@pytest.mark.parametrize("layout", ["bthd", "tbhd"])
def test_sdpa_layouts_and_padding(layout):
    B, H, T, D = 3, 2, 21, 16
    q, k, v = qkv(B, H, H, T, T, D, 3)
    lengths = np.array([21, 10, 1], np.int64)
    pad = np.arange(T)[None, :] >= lengths[:, None]
    perm = (0, 2, 1, 3) if layout == "bthd" else (2, 0, 1, 3)
    inv = np.argsort(perm)
    g_kw = dict(layout=layout, key_lengths=gaze.tensor(lengths))

    def gfn(a, b, c):
        out = GF.scaled_dot_product_attention(a.permute(*perm), b.permute(*perm), c.permute(*perm), **g_kw)
        return out.permute(*inv)

    check(gfn, lambda a, b, c: torch_sdpa(a, b, c, attn_mask=torch.tensor(~pad)[:, None, None, :]), q, k, v,
          tol=REDUCTION)
    g_kw = dict(layout=layout, key_padding_mask=gaze.tensor(pad))  # the same, as booleans
    check(gfn, lambda a, b, c: torch_sdpa(a, b, c, attn_mask=torch.tensor(~pad)[:, None, None, :]), q, k, v,
          tol=REDUCTION)


def test_sdpa_weights_and_dropout():
    q, k, v = qkv(2, 3, 3, 8, 10, 4, 4)
    out, w = GF.scaled_dot_product_attention(gaze.tensor(q), gaze.tensor(k), gaze.tensor(v), is_causal=True,
                                             need_weights=True, weight_heads=[2, 0])
    ref = torch.softmax((torch.tensor(q) @ torch.tensor(k).transpose(-1, -2)) / 2 +
                        torch.full((8, 10), float("-inf")).triu(1), -1)
    assert w.shape == (2, 2, 8, 10)
    assert_close(w.numpy(), ref[:, [2, 0]].numpy(), **REDUCTION)
    # Dropout: same generator seed -> same output; weights are the dropped-out probabilities used.
    g1, g2 = gaze.Generator(5), gaze.Generator(5)
    a, wa = GF.scaled_dot_product_attention(gaze.tensor(q), gaze.tensor(k), gaze.tensor(v), dropout_p=0.5,
                                            need_weights=True, generator=g1)
    b = GF.scaled_dot_product_attention(gaze.tensor(q), gaze.tensor(k), gaze.tensor(v), dropout_p=0.5, generator=g2)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert_close(a.numpy(), (wa.numpy() @ v), **REDUCTION)
    kept = (wa.numpy() != 0).mean()
    assert 0.4 < kept < 0.6


def test_kv_cache_from_python_matches_full_causal():
    q, k, v = qkv(1, 4, 2, 12, 12, 8, 6)
    full = GF.scaled_dot_product_attention(gaze.tensor(q), gaze.tensor(k), gaze.tensor(v), is_causal=True).numpy()
    cache = gaze.nn.KVCache(1, 2, 8)
    for t in range(12):
        cache.append(gaze.tensor(k[:, :, t:t + 1]), gaze.tensor(v[:, :, t:t + 1]))
        step = cache.attend(gaze.tensor(q[:, :, t:t + 1])).numpy()
        np.testing.assert_array_equal(step[:, :, 0], full[:, :, t])
    assert cache.length == 12


def test_bf16_kv_cache_attends_over_torchs_bfloat16_rounding():
    # A bf16 cache rounds keys and values as torch's .to(torch.bfloat16) does (nearest even) and
    # attends in float32: causal attention over the rounded values, step by step.
    q, k, v = qkv(2, 4, 2, 9, 9, 8, 6)
    kr = torch.from_numpy(k).to(torch.bfloat16).float()
    vr = torch.from_numpy(v).to(torch.bfloat16).float()
    cache = gaze.nn.KVCache(2, 2, 8, bf16=True)
    for t in range(9):
        cache.append(gaze.tensor(k[:, :, t:t + 1]), gaze.tensor(v[:, :, t:t + 1]))
        step = cache.attend(gaze.tensor(q[:, :, t:t + 1])).numpy()
        qt = torch.from_numpy(q[:, :, t:t + 1])
        kt, vt = kr[:, :, :t + 1].repeat_interleave(2, 1), vr[:, :, :t + 1].repeat_interleave(2, 1)
        want = torch.softmax(qt @ kt.transpose(-1, -2) / math.sqrt(8), -1) @ vt
        np.testing.assert_allclose(step, want.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(cache.keys().numpy(), kr.permute(2, 0, 1, 3).numpy())
    with pytest.raises(ValueError):
        gaze.nn.KVCache(1, 2, 7, bf16=True)  # an odd head dim has no bf16 pairs


def test_alibi_slopes_follow_the_paper():
    def ref(n):  # the reference implementation's recipe
        def pow2(n):
            start = 2 ** (-2 ** -(math.log2(n) - 3))
            return [start * start ** i for i in range(n)]
        if math.log2(n).is_integer():
            return pow2(n)
        p = 2 ** math.floor(math.log2(n))
        return pow2(p) + ref(2 * p)[0::2][:n - p]
    for n in (1, 2, 8, 12, 16, 20):
        np.testing.assert_allclose(gaze.alibi_slopes(n, gaze.float64).numpy(), ref(n), rtol=1e-12)


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def torch_rope(x, offset=0, interleaved=False, base=10000.0, rotary_dim=None):
    """RoPE as in GPT-NeoX / HF LLaMA (rotate_half) or GPT-J (interleaved pairs); x [B, H, T, D]."""
    D = x.shape[-1]
    rd = rotary_dim or D
    inv = base ** (-torch.arange(0, rd, 2, dtype=torch.float64) / rd)
    ang = (torch.arange(x.shape[-2], dtype=torch.float64) + offset)[:, None] * inv[None, :]
    rot, rest = x[..., :rd], x[..., rd:]
    if interleaved:
        c, s = ang.cos().repeat_interleave(2, -1).to(x.dtype), ang.sin().repeat_interleave(2, -1).to(x.dtype)
        pairs = torch.stack((-rot[..., 1::2], rot[..., 0::2]), dim=-1).flatten(-2)
        out = rot * c + pairs * s
    else:
        c, s = torch.cat((ang.cos(), ang.cos()), -1).to(x.dtype), torch.cat((ang.sin(), ang.sin()), -1).to(x.dtype)
        out = rot * c + rotate_half(rot) * s
    return torch.cat((out, rest), -1)


@pytest.mark.parametrize("interleaved", [False, True])
@pytest.mark.parametrize("rotary_dim", [None, 8])
def test_rotary(interleaved, rotary_dim):
    x = rng(7).standard_normal((2, 3, 9, 16)).astype(np.float32)
    check(lambda t: GF.rotary_embedding(t, interleaved=interleaved, offset=5, rotary_dim=rotary_dim or -1),
          lambda t: torch_rope(t, 5, interleaved, rotary_dim=rotary_dim), x)
    m = gaze.nn.RotaryEmbedding(16, interleaved=interleaved)
    assert_close(m(gaze.tensor(x), 5).numpy(), torch_rope(torch.tensor(x), 5, interleaved).numpy(), rtol=1e-5,
                 atol_scale=1e-6)


def test_sinusoidal_positions():
    pe = gaze.sinusoidal_positions(50, 16, dtype=gaze.float64).numpy()
    pos = np.arange(50)[:, None]
    div = np.exp(np.arange(0, 16, 2) * (-math.log(10000.0) / 16))
    np.testing.assert_allclose(pe[:, 0::2], np.sin(pos * div), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(pe[:, 1::2], np.cos(pos * div), rtol=1e-12, atol=1e-15)
    enc = gaze.nn.SinusoidalPositionalEncoding(16)
    x = gaze.zeros([2, 50, 16])
    np.testing.assert_allclose(enc(x).numpy()[1], pe, rtol=1e-6, atol=1e-6)


class TorchAdditive(torch.nn.Module):
    def __init__(self, g):
        super().__init__()
        sd = {k: torch.tensor(v.numpy()) for k, v in g.state_dict().items()}
        self.Wq, self.Wk, self.bk, self.v = (torch.nn.Parameter(sd[n]) for n in
                                             ("query_proj.weight", "key_proj.weight", "key_proj.bias", "v.weight"))

    def forward(self, s, h, vals, lengths):
        e = torch.tanh((s @ self.Wq.T)[:, :, None, :] + (h @ self.Wk.T + self.bk)[:, None, :, :])
        scores = (e @ self.v.T).squeeze(-1)
        pad = torch.arange(h.shape[1])[None, None, :] >= lengths[:, None, None]
        w = torch.softmax(scores.masked_fill(pad, float("-inf")), -1)
        return w @ vals, w


class TorchLuong(torch.nn.Module):
    def __init__(self, g, score, qd):
        super().__init__()
        self.score, self.qd = score, qd
        sd = {k: torch.nn.Parameter(torch.tensor(v.numpy())) for k, v in g.state_dict().items()}
        self.params = torch.nn.ParameterDict({k.replace(".", "_"): p for k, p in sd.items()})

    def forward(self, s, h, vals, lengths):
        if self.score == "dot":
            scores = s @ h.transpose(1, 2)
        elif self.score == "general":
            scores = s @ (h @ self.params["W_weight"].T).transpose(1, 2)
        else:
            W = self.params["W_weight"]
            e = torch.tanh((s @ W[:, :self.qd].T)[:, :, None] + (h @ W[:, self.qd:].T)[:, None])
            scores = (e @ self.params["v_weight"].T).squeeze(-1)
        pad = torch.arange(h.shape[1])[None, None, :] >= lengths[:, None, None]
        w = torch.softmax(scores.masked_fill(pad, float("-inf")), -1)
        return w @ vals, w


def rnn_inputs(seed, Dq, Dk):
    r = rng(seed)
    return (r.standard_normal((3, 4, Dq)).astype(np.float32), r.standard_normal((3, 7, Dk)).astype(np.float32),
            r.standard_normal((3, 7, 5)).astype(np.float32), np.array([7, 3, 1], np.int64))


def test_additive_attention():
    g = gaze.nn.AdditiveAttention(6, 8, 10)
    t = TorchAdditive(g)
    s, h, vals, lengths = rnn_inputs(8, 6, 8)
    check(lambda a, b, c, L: g(a, b, c, lengths=L), lambda a, b, c, L: t(a, b, c, L), s, h, vals, lengths,
          grad=[True, True, True, False], tol=REDUCTION)
    # One decoder step with precomputed key projections, and the parameter gradients.
    gs, gh = gaze.tensor(s[:, 0], requires_grad=True), gaze.tensor(h)
    ctx, w = g(gs, gh, gaze.tensor(vals), lengths=gaze.tensor(lengths), projected_keys=g.project_keys(gh))
    tctx, tw = t(torch.tensor(s[:, :1]), torch.tensor(h), torch.tensor(vals), torch.tensor(lengths))
    assert ctx.shape == (3, 5) and w.shape == (3, 7)
    assert_close(ctx.detach().numpy(), tctx[:, 0].detach().numpy(), **REDUCTION)
    ctx.sum().backward()
    tctx.sum().backward()
    grads = dict(g.named_parameters())
    for gname, tp in (("query_proj.weight", t.Wq), ("key_proj.weight", t.Wk), ("key_proj.bias", t.bk), ("v.weight", t.v)):
        assert_close(grads[gname].grad.numpy(), tp.grad.numpy(), **REDUCTION, what=gname)


@pytest.mark.parametrize("score", ["dot", "general", "concat"])
def test_luong_attention(score):
    Dq = Dk = 6
    g = gaze.nn.LuongAttention(score, Dq, Dk, 9)
    t = TorchLuong(g, score, Dq)
    s, h, vals, lengths = rnn_inputs(9, Dq, Dk)
    check(lambda a, b, c, L: g(a, b, c, lengths=L), lambda a, b, c, L: t(a, b, c, L), s, h, vals, lengths,
          grad=[True, True, True, False], tol=REDUCTION)
    if score != "dot":
        gq = gaze.tensor(s, requires_grad=True)
        g(gq, gaze.tensor(h), gaze.tensor(vals), lengths=gaze.tensor(lengths))[0].sum().backward()
        t(torch.tensor(s), torch.tensor(h), torch.tensor(vals), torch.tensor(lengths))[0].sum().backward()
        for name, p in g.named_parameters():
            assert_close(p.grad.numpy(), t.params[name.replace(".", "_")].grad.numpy(), **REDUCTION, what=name)


def test_padding_mask_and_empty_sources():
    g = gaze.nn.AdditiveAttention(4, 4, 4)
    s, h = gaze.randn([2, 4]), gaze.randn([2, 3, 4])
    pad = np.array([[False, True, False], [True, True, True]])
    ctx, w = g(s, h, padding_mask=gaze.tensor(pad))
    w = w.detach().numpy()
    assert w[0, 1] == 0 and abs(w[0].sum() - 1) < 1e-6
    np.testing.assert_array_equal(w[1], 0)  # nothing to attend: zeros, not NaN
    assert np.isfinite(ctx.detach().numpy()).all()
