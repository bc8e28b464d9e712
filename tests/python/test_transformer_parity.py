"""Parity with torch 1.13 for TransformerEncoderLayer / DecoderLayer / TransformerEncoder /
TransformerDecoder / Transformer: same weights, outputs and every gradient (rel 1e-4)."""
import numpy as np
import pytest
import torch

import gaze
from parity import REDUCTION, assert_close, rng


def copy_weights(g, t):
    g.load_state_dict(t.state_dict())


def grads_match(g, t, what):
    tg = dict(t.named_parameters())
    gg = dict(g.named_parameters())
    assert sorted(gg) == sorted(tg), (sorted(gg), sorted(tg))
    for name, p in gg.items():
        assert_close(p.grad.numpy(), tg[name].grad.numpy(), **REDUCTION, what=f"{what} grad {name}")


def run(g, t, g_inputs, t_inputs, g_kwargs, t_kwargs, out_shape, seed=0):
    up = rng(seed).standard_normal(out_shape).astype(np.float32)
    go = g(*g_inputs, **g_kwargs)
    to = t(*t_inputs, **t_kwargs)
    assert_close(go.detach().numpy(), to.detach().numpy(), **REDUCTION, what="output")
    (go * gaze.tensor(up)).sum().backward()
    (to * torch.tensor(up)).sum().backward()
    for gi, ti in zip(g_inputs, t_inputs):
        if ti.requires_grad:
            assert_close(gi.grad.numpy(), ti.grad.numpy(), **REDUCTION, what="input grad")


def pair_inputs(*arrays):
    return ([gaze.tensor(a, requires_grad=True) for a in arrays], [torch.tensor(a, requires_grad=True) for a in arrays])


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("masks", ["none", "causal", "padding", "float_mask"])
def test_encoder_layer(norm_first, activation, batch_first, masks):
    d, h, ff, B, T = 32, 4, 64, 3, 9
    torch.manual_seed(1)
    t = torch.nn.TransformerEncoderLayer(d, h, ff, dropout=0.0, activation=activation, batch_first=batch_first,
                                         norm_first=norm_first)
    g = gaze.nn.TransformerEncoderLayer(d, h, ff, dropout=0.0, activation=activation, batch_first=batch_first,
                                        norm_first=norm_first)
    copy_weights(g, t)
    shape = (B, T, d) if batch_first else (T, B, d)
    x = rng(2).standard_normal(shape).astype(np.float32)
    (gx,), (tx,) = pair_inputs(x)
    gk, tk = {}, {}
    if masks == "causal":
        m = np.triu(np.ones((T, T), bool), 1)
        gk["src_mask"], tk["src_mask"] = gaze.tensor(m), torch.tensor(m)
    elif masks == "padding":
        p = np.zeros((B, T), bool)
        p[1, 6:] = True
        p[2, 3:] = True
        gk["src_key_padding_mask"], tk["src_key_padding_mask"] = gaze.tensor(p), torch.tensor(p)
    elif masks == "float_mask":
        f = rng(3).standard_normal((T, T)).astype(np.float32)
        gk["src_mask"], tk["src_mask"] = gaze.tensor(f), torch.tensor(f)
    run(g, t, [gx], [tx], gk, tk, shape)
    grads_match(g, t, "encoder layer")


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_decoder_layer(norm_first, activation):
    d, h, ff, B, Tt, Ts = 24, 3, 48, 2, 7, 11
    torch.manual_seed(4)
    t = torch.nn.TransformerDecoderLayer(d, h, ff, dropout=0.0, activation=activation, batch_first=True,
                                         norm_first=norm_first)
    g = gaze.nn.TransformerDecoderLayer(d, h, ff, dropout=0.0, activation=activation, batch_first=True,
                                        norm_first=norm_first)
    copy_weights(g, t)
    r = rng(5)
    tgt, mem = r.standard_normal((B, Tt, d)).astype(np.float32), r.standard_normal((B, Ts, d)).astype(np.float32)
    causal = np.triu(np.ones((Tt, Tt), bool), 1)
    mpad = np.zeros((B, Ts), bool)
    mpad[1, 8:] = True
    tpad = np.zeros((B, Tt), bool)
    tpad[0, 6:] = True
    gin, tin = pair_inputs(tgt, mem)
    run(g, t, gin, tin,
        dict(tgt_mask=gaze.tensor(causal), memory_key_padding_mask=gaze.tensor(mpad), tgt_key_padding_mask=gaze.tensor(tpad)),
        dict(tgt_mask=torch.tensor(causal), memory_key_padding_mask=torch.tensor(mpad), tgt_key_padding_mask=torch.tensor(tpad)),
        (B, Tt, d))
    grads_match(g, t, "decoder layer")


@pytest.mark.parametrize("norm_first", [False, True])
def test_stacks_with_final_norm(norm_first):
    d, h, ff, B, T = 16, 2, 32, 2, 6
    torch.manual_seed(6)
    tl = torch.nn.TransformerEncoderLayer(d, h, ff, dropout=0.0, batch_first=True, norm_first=norm_first)
    te = torch.nn.TransformerEncoder(tl, 3, norm=torch.nn.LayerNorm(d))
    gl = gaze.nn.TransformerEncoderLayer(d, h, ff, dropout=0.0, batch_first=True, norm_first=norm_first)
    ge = gaze.nn.TransformerEncoder(gl, 3, norm=gaze.nn.LayerNorm(d))
    assert sorted(ge.state_dict()) == sorted(te.state_dict())
    copy_weights(ge, te)
    x = rng(7).standard_normal((B, T, d)).astype(np.float32)
    (gx,), (tx,) = pair_inputs(x)
    run(ge, te, [gx], [tx], {}, {}, (B, T, d))
    grads_match(ge, te, "encoder stack")
    # Attention weights per layer and head on request.
    out, weights = ge(gaze.tensor(x), return_attention=True)
    assert len(weights) == 3 and weights[0].shape == (B, h, T, T)
    np.testing.assert_allclose(weights[1].numpy().sum(-1), 1, rtol=1e-5)


def test_transformer():
    d, h, ff, B, Ts, Tt = 16, 4, 32, 2, 8, 5
    torch.manual_seed(8)
    t = torch.nn.Transformer(d, h, 2, 2, ff, dropout=0.0, batch_first=False)
    g = gaze.nn.Transformer(d, h, 2, 2, ff, dropout=0.0, batch_first=False)
    assert sorted(g.state_dict()) == sorted(t.state_dict())
    copy_weights(g, t)
    r = rng(9)
    src, tgt = r.standard_normal((Ts, B, d)).astype(np.float32), r.standard_normal((Tt, B, d)).astype(np.float32)
    tmask = torch.nn.Transformer.generate_square_subsequent_mask(Tt)
    np.testing.assert_array_equal(gaze.nn.Transformer.generate_square_subsequent_mask(Tt).numpy(), tmask.numpy())
    spad = np.zeros((B, Ts), bool)
    spad[1, 6:] = True
    gin, tin = pair_inputs(src, tgt)
    run(g, t, gin, tin,
        dict(tgt_mask=gaze.tensor(tmask.numpy()), src_key_padding_mask=gaze.tensor(spad),
             memory_key_padding_mask=gaze.tensor(spad)),
        dict(tgt_mask=tmask, src_key_padding_mask=torch.tensor(spad), memory_key_padding_mask=torch.tensor(spad)),
        (Tt, B, d))
    grads_match(g, t, "transformer")


def test_dropout_and_modes():
    g = gaze.nn.TransformerEncoderLayer(16, 2, 32, dropout=0.3, batch_first=True)
    x = gaze.randn([2, 5, 16])
    assert g.training
    a, b = g(x).detach().numpy(), g(x).detach().numpy()
    assert not np.allclose(a, b)
    g.eval()
    assert not g.self_attn.training  # eval() reaches submodules
    np.testing.assert_array_equal(g(x).detach().numpy(), g(x).detach().numpy())


def test_embedding_and_layer_norm_modules():
    torch.manual_seed(10)
    te = torch.nn.Embedding(10, 4, padding_idx=2)
    ge = gaze.nn.Embedding(10, 4, padding_idx=2)
    np.testing.assert_array_equal(ge.weight.detach().numpy()[2], 0)
    ge.load_state_dict(te.state_dict())
    ids = np.array([[1, 2, 3], [2, 9, 0]])
    assert_close(ge(gaze.tensor(ids)).detach().numpy(), te(torch.tensor(ids)).detach().numpy(), rtol=0, atol_scale=0)
    tl, gl = torch.nn.LayerNorm([3, 4]), gaze.nn.LayerNorm([3, 4])
    assert sorted(gl.state_dict()) == ["bias", "weight"]
    x = rng(11).standard_normal((2, 3, 4)).astype(np.float32)
    assert_close(gl(gaze.tensor(x)).detach().numpy(), tl(torch.tensor(x)).detach().numpy(), **REDUCTION)
