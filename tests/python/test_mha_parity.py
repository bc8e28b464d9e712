"""Parity with torch 1.13 nn.MultiheadAttention: the torch module's state dict loads unchanged into
gaze's, and outputs, weights, input gradients and every parameter gradient agree."""
import numpy as np
import pytest
import torch

import gaze
from parity import REDUCTION, assert_close, rng

HEAD_DIMS = [1, 8, 64, 80]
LENGTHS = [1, 7, 64, 65, 300]


def make_pair(embed_dim, heads, batch_first, kdim=None, vdim=None, bias=True, seed=0):
    torch.manual_seed(seed)
    t = torch.nn.MultiheadAttention(embed_dim, heads, bias=bias, kdim=kdim, vdim=vdim, batch_first=batch_first)
    g = gaze.nn.MultiheadAttention(embed_dim, heads, bias=bias, kdim=kdim, vdim=vdim, batch_first=batch_first)
    g.load_state_dict(t.state_dict())
    return g, t


def run_pair(g, t, q, k, v, upstream, g_kwargs=None, t_kwargs=None, self_attention=False):
    """Runs both modules on the same arrays, back-propagates `upstream` through the output (and a fixed
    projection of the weights, when returned), and returns outputs, weights and gradients of both."""
    g_kwargs, t_kwargs = g_kwargs or {}, t_kwargs or {}
    gq = gaze.tensor(q, requires_grad=True)
    tq = torch.tensor(q, requires_grad=True)
    if self_attention:
        gk = gv = gq
        tk = tv = tq
    else:
        gk, gv = gaze.tensor(k, requires_grad=True), gaze.tensor(v, requires_grad=True)
        tk, tv = torch.tensor(k, requires_grad=True), torch.tensor(v, requires_grad=True)
    go, gw = g(gq, gk, gv, **g_kwargs)
    to, tw = t(tq, tk, tv, **t_kwargs)
    (go * gaze.tensor(upstream)).sum().backward()
    (to * torch.tensor(upstream)).sum().backward()
    grads_g = {"query": gq.grad.numpy()}
    grads_t = {"query": tq.grad.numpy()}
    if not self_attention:
        grads_g.update(key=gk.grad.numpy(), value=gv.grad.numpy())
        grads_t.update(key=tk.grad.numpy(), value=tv.grad.numpy())
    for name, p in g.named_parameters():
        grads_g[name] = p.grad.numpy()
    for name, p in t.named_parameters():
        grads_t[name] = p.grad.numpy()
    return (go.detach().numpy(), gw, grads_g), (to.detach().numpy(), tw, grads_t)


def compare(gres, tres, what):
    (go, gw, gg), (to, tw, tg) = gres, tres
    assert_close(go, to, **REDUCTION, what=f"{what} output")
    if tw is not None:
        assert_close(gw.numpy(), tw.detach().numpy(), **REDUCTION, what=f"{what} weights")
    assert set(gg) == set(tg), (sorted(gg), sorted(tg))
    for name in tg:
        assert_close(gg[name], tg[name], **REDUCTION, what=f"{what} grad {name}")


def shapes(B, Tq, Tk, E, kdim, vdim, batch_first):
    if batch_first:
        return (B, Tq, E), (B, Tk, kdim), (B, Tk, vdim)
    return (Tq, B, E), (Tk, B, kdim), (Tk, B, vdim)


@pytest.mark.parametrize("head_dim", HEAD_DIMS)
@pytest.mark.parametrize("T", LENGTHS)
def test_grid(head_dim, T):
    # Options rotate through the grid so every one meets several head dims and lengths.
    idx = HEAD_DIMS.index(head_dim) * len(LENGTHS) + LENGTHS.index(T)
    batch_first = idx % 2 == 0
    self_attn = idx % 3 == 0
    heads, B = 2, 2
    E = heads * head_dim
    Tq, Tk = (T, T) if self_attn else (T, max(1, T + (idx % 5) - 2))
    kdim = vdim = None
    if not self_attn and idx % 4 == 1:
        kdim, vdim = E + 3, max(1, E - 1)
    g, t = make_pair(E, heads, batch_first, kdim, vdim, bias=idx % 7 != 3, seed=idx)
    r = rng(idx)
    qs, ks, vs = shapes(B, Tq, Tk, E, kdim or E, vdim or E, batch_first)
    q, k, v = (r.standard_normal(s).astype(np.float32) for s in (qs, ks, vs))
    kwargs = {"need_weights": idx % 2 == 1, "average_attn_weights": idx % 4 != 3}
    if idx % 3 == 1 and Tk > 1:  # key padding: the last key of batch 1
        kpm = np.zeros((B, Tk), bool)
        kpm[1, -1] = True
        kwargs["key_padding_mask"] = kpm
    up = r.standard_normal(qs).astype(np.float32)
    gk = {k2: gaze.tensor(v2) if isinstance(v2, np.ndarray) else v2 for k2, v2 in kwargs.items()}
    tk = {k2: torch.tensor(v2) if isinstance(v2, np.ndarray) else v2 for k2, v2 in kwargs.items()}
    compare(*run_pair(g, t, q, k, v, up, gk, tk, self_attention=self_attn),
            what=f"hd{head_dim} T{T} bf{batch_first} self{self_attn}")


@pytest.mark.parametrize("kind", ["bool", "float", "bool3d", "float3d", "causal", "kpm_float", "kpm_and_mask"])
@pytest.mark.parametrize("batch_first", [False, True])
def test_masks(kind, batch_first):
    heads, hd, B, Tq, Tk = 4, 8, 3, 9, 11
    E = heads * hd
    g, t = make_pair(E, heads, batch_first, seed=5)
    r = rng(6)
    qs, ks, vs = shapes(B, Tq, Tk, E, E, E, batch_first)
    q, k, v = (r.standard_normal(s).astype(np.float32) for s in (qs, ks, vs))
    g_kw, t_kw = {"need_weights": True, "average_attn_weights": False}, {"need_weights": True, "average_attn_weights": False}
    bool2d = r.random((Tq, Tk)) < 0.3
    bool2d[:, 0] = False  # every query keeps a key
    if kind == "bool":
        g_kw["attn_mask"], t_kw["attn_mask"] = gaze.tensor(bool2d), torch.tensor(bool2d)
    elif kind == "float":
        f = r.standard_normal((Tq, Tk)).astype(np.float32)
        g_kw["attn_mask"], t_kw["attn_mask"] = gaze.tensor(f), torch.tensor(f)
    elif kind == "bool3d":
        m = r.random((B * heads, Tq, Tk)) < 0.3
        m[:, :, 1] = False
        g_kw["attn_mask"], t_kw["attn_mask"] = gaze.tensor(m), torch.tensor(m)
    elif kind == "float3d":
        f = r.standard_normal((B * heads, Tq, Tk)).astype(np.float32)
        g_kw["attn_mask"], t_kw["attn_mask"] = gaze.tensor(f), torch.tensor(f)
    elif kind == "causal":  # torch 1.13 has no is_causal: the equivalent mask
        g_kw["is_causal"] = True
        t_kw["attn_mask"] = torch.triu(torch.ones(Tq, Tk, dtype=torch.bool), diagonal=1)
    elif kind == "kpm_float":
        f = np.zeros((B, Tk), np.float32)
        f[0, -3:] = -np.inf
        f[2, 2] = -1.5
        g_kw["key_padding_mask"], t_kw["key_padding_mask"] = gaze.tensor(f), torch.tensor(f)
    else:
        kpm = np.zeros((B, Tk), bool)
        kpm[1, 5:] = True
        g_kw.update(key_padding_mask=gaze.tensor(kpm), attn_mask=gaze.tensor(bool2d))
        t_kw.update(key_padding_mask=torch.tensor(kpm), attn_mask=torch.tensor(bool2d))
    up = r.standard_normal(qs).astype(np.float32)
    compare(*run_pair(g, t, q, k, v, up, g_kw, t_kw), what=kind)


def test_rows_with_every_key_masked_give_zero_not_nan():
    """torch returns NaN for such rows (and NaN-pollutes every gradient); gaze returns 0 attention, i.e.
    out_proj.bias. Queries are independent, so torch run on the other rows is the reference."""
    heads, hd, B, Tq, Tk = 2, 8, 2, 6, 5
    E = heads * hd
    g, t = make_pair(E, heads, batch_first=True, seed=7)
    r = rng(8)
    q, k, v = (r.standard_normal(s).astype(np.float32) for s in ((B, Tq, E), (B, Tk, E), (B, Tk, E)))
    mask = r.random((Tq, Tk)) < 0.2
    mask[:, 0] = False
    mask[2, :] = True  # query 2 sees nothing
    up = r.standard_normal((B, Tq, E)).astype(np.float32)
    keep = [i for i in range(Tq) if i != 2]
    gq, gk, gv = (gaze.tensor(a, requires_grad=True) for a in (q, k, v))
    go, _ = g(gq, gk, gv, attn_mask=gaze.tensor(mask), need_weights=False)
    (go * gaze.tensor(up)).sum().backward()
    tq, tk, tv = (torch.tensor(a, requires_grad=True) for a in (q[:, keep], k, v))
    to, _ = t(tq, tk, tv, attn_mask=torch.tensor(mask[keep]), need_weights=False)
    (to * torch.tensor(up[:, keep])).sum().backward()
    go_np = go.detach().numpy()
    assert np.isfinite(go_np).all()
    assert_close(go_np[:, keep], to.detach().numpy(), **REDUCTION, what="kept rows")
    np.testing.assert_allclose(go_np[:, 2], np.broadcast_to(t.out_proj.bias.detach().numpy(), (B, E)), rtol=0, atol=0)
    np.testing.assert_array_equal(gq.grad.numpy()[:, 2], 0)
    assert_close(gq.grad.numpy()[:, keep], tq.grad.numpy(), **REDUCTION, what="query grad")
    assert_close(gk.grad.numpy(), tk.grad.numpy(), **REDUCTION, what="key grad")
    tgrads = dict(t.named_parameters())
    for name, p in g.named_parameters():
        want = tgrads[name].grad.numpy()
        if name == "out_proj.bias":  # the masked row's output is the bias: its gradient adds up[:, 2]
            want = want + up[:, 2].sum(0)
        assert_close(p.grad.numpy(), want, **REDUCTION, what=f"grad {name}")


def test_unbatched_and_eval_mode():
    g, t = make_pair(16, 4, batch_first=False, seed=9)
    x = rng(10).standard_normal((7, 16)).astype(np.float32)
    go, gw = g(gaze.tensor(x), gaze.tensor(x), gaze.tensor(x))
    to, tw = t(torch.tensor(x), torch.tensor(x), torch.tensor(x))
    assert_close(go.detach().numpy(), to.detach().numpy(), **REDUCTION)
    assert_close(gw.numpy(), tw.detach().numpy(), **REDUCTION)
    g.eval(), t.eval()
    with gaze.no_grad(), torch.no_grad():
        assert_close(g(gaze.tensor(x), gaze.tensor(x), gaze.tensor(x))[0].numpy(),
                     t(torch.tensor(x), torch.tensor(x), torch.tensor(x))[0].numpy(), **REDUCTION)


def test_dropout_in_training_only():
    g = gaze.nn.MultiheadAttention(16, 2, dropout=0.5, batch_first=True)
    x = gaze.randn([2, 20, 16])
    a, _ = g(x, x, x)
    b, _ = g(x, x, x)
    assert not np.allclose(a.detach().numpy(), b.detach().numpy())  # different masks per call
    g.eval()
    c, _ = g(x, x, x)
    d, _ = g(x, x, x)
    np.testing.assert_array_equal(c.detach().numpy(), d.detach().numpy())


def test_bad_inputs():
    g = gaze.nn.MultiheadAttention(8, 2, batch_first=True)
    x = gaze.randn([2, 5, 8])
    with pytest.raises(ValueError, match="attn_mask must be"):
        g(x, x, x, attn_mask=gaze.ones([4, 5], dtype=gaze.bool))
    with pytest.raises(ValueError, match="key_padding_mask must be"):
        g(x, x, x, key_padding_mask=gaze.ones([2, 4], dtype=gaze.bool))
    with pytest.raises(ValueError, match="feature sizes"):
        g(x, gaze.randn([2, 5, 7]), x)
    with pytest.raises(ValueError, match="multiple of num_heads"):
        gaze.nn.MultiheadAttention(10, 3)
    with pytest.raises(ValueError, match="missing keys"):
        g.load_state_dict({"in_proj_weight": np.zeros((24, 8), np.float32)})
