"""gaze's models against PyTorch references with the same weights (outputs, every parameter gradient,
attention weights per layer and head, rel 1e-4), attention capture that leaves outputs unchanged,
strict configurations, and a model rebuilt from its checkpoint folder."""
import json

import numpy as np
import pytest
import torch

import gaze
from parity import REDUCTION, assert_close, rng
from reference_models import (PAD, TorchClassifier, TorchRnnSeq2Seq, TorchTagger, TorchTransformerSeq2Seq,
                              record_attention, record_seq2seq_attention)


def tokens_and_lengths(seed, B, T, vocab, lengths):
    tokens = rng(seed).integers(1, vocab, (B, T))
    lengths = np.array(lengths, dtype=np.int64)
    tokens[np.arange(T)[None, :] >= lengths[:, None]] = PAD
    return tokens, lengths


def load_into_torch(g, t):
    t.load_state_dict({k: torch.tensor(v.numpy()) for k, v in g.state_dict().items()})  # strict


def compare_outputs_and_grads(g, t, g_out, t_out, seed=9):
    assert_close(g_out.detach().numpy(), t_out.detach().numpy(), **REDUCTION, what="output")
    up = rng(seed).standard_normal(t_out.shape).astype(np.float32)
    (g_out * gaze.tensor(up)).sum().backward()
    (t_out * torch.tensor(up)).sum().backward()
    tp = dict(t.named_parameters())
    assert sorted(n for n, _ in g.named_parameters()) == sorted(tp)
    for name, p in g.named_parameters():
        want = tp[name].grad
        want = np.zeros(p.shape, np.float32) if want is None else want.numpy()
        assert_close(p.grad.numpy(), want, **REDUCTION, what=f"grad {name}")


def capture_torch_encoder(t):
    store = []
    for layer in t.encoder.layers:
        record_attention(layer.self_attn, store)
    return store


def encoder_config(**extra):
    return dict(vocab_size=31, d_model=24, nhead=3, num_layers=2, dim_feedforward=40, dropout=0.0, **extra)


@pytest.mark.parametrize("pooling", ["mean", "cls", "max", "attention"])
@pytest.mark.parametrize("positions,norm_first,scale", [("sinusoidal", True, False), ("learned", False, True),
                                                        ("none", True, True)])
def test_classifier_matches_reference(pooling, positions, norm_first, scale):
    c = encoder_config(num_classes=3, pooling=pooling, positions=positions, norm_first=norm_first,
                       scale_embeddings=scale, max_positions=16)
    gaze.manual_seed(3)
    g = gaze.models.TransformerClassifier(**c)
    t = TorchClassifier(c)
    load_into_torch(g, t)
    tokens, lengths = tokens_and_lengths(4, 4, 10, c["vocab_size"], [10, 7, 3, 1])
    t_weights = capture_torch_encoder(t)
    g_out, g_weights = g.forward(gaze.tensor(tokens), gaze.tensor(lengths), return_attention=True)
    t_out = t(torch.tensor(tokens), torch.tensor(lengths))
    assert len(g_weights) == c["num_layers"]
    for layer, (gw, tw) in enumerate(zip(g_weights, t_weights)):
        assert gw.shape == (4, 3, 10, 10)
        assert_close(gw.numpy(), tw.numpy(), **REDUCTION, what=f"attention layer {layer}")
    if pooling == "attention":  # the pooling's own weights, zero on padding
        gp = g.pooling_attention(gaze.tensor(tokens), gaze.tensor(lengths)).numpy()
        assert_close(gp, t.attention_pool.weights.detach().numpy(), **REDUCTION, what="pooling")
        assert np.all(gp[np.arange(10)[None, :] >= lengths[:, None]] == 0)
    else:
        assert g.pooling_attention(gaze.tensor(tokens), gaze.tensor(lengths)) is None
    compare_outputs_and_grads(g, t, g_out, t_out)


def test_tagger_matches_reference():
    c = encoder_config(num_tags=5, activation="relu")
    gaze.manual_seed(5)
    g = gaze.models.TransformerTagger(**c)
    t = TorchTagger(c)
    load_into_torch(g, t)
    tokens, lengths = tokens_and_lengths(6, 3, 8, c["vocab_size"], [8, 5, 2])
    g_out = g.forward(gaze.tensor(tokens), gaze.tensor(lengths))
    assert g_out.shape == (3, 8, 5)
    compare_outputs_and_grads(g, t, g_out, t(torch.tensor(tokens), torch.tensor(lengths)))


def test_capturing_attention_changes_nothing():
    gaze.manual_seed(6)
    g = gaze.models.TransformerClassifier(**encoder_config(num_classes=2))
    g.eval()
    tokens, lengths = tokens_and_lengths(7, 2, 6, 31, [6, 4])
    with gaze.no_grad():
        plain = g.forward(gaze.tensor(tokens), gaze.tensor(lengths)).numpy()
        captured, weights = g.forward(gaze.tensor(tokens), gaze.tensor(lengths), return_attention=True)
    assert np.array_equal(plain, captured.numpy())
    w = weights[0].numpy()
    np.testing.assert_allclose(w.sum(-1), 1.0, rtol=1e-5)
    assert (w[1, :, :, 4:] == 0).all()  # padded keys get no attention


def test_seq2seq_matches_reference_with_every_attention_map():
    c = dict(src_vocab_size=23, tgt_vocab_size=19, d_model=16, nhead=2, num_encoder_layers=2, num_decoder_layers=1,
             dim_feedforward=32, dropout=0.0, activation="gelu")
    gaze.manual_seed(10)
    g = gaze.models.TransformerSeq2Seq(**c)
    t = TorchTransformerSeq2Seq(c)
    load_into_torch(g, t)
    enc_w, dec_w, cross_w = record_seq2seq_attention(t)
    src, src_len = tokens_and_lengths(11, 3, 7, 23, [7, 5, 2])
    tgt, tgt_len = tokens_and_lengths(12, 3, 6, 19, [6, 6, 3])
    g_out, att = g.forward(gaze.tensor(src), gaze.tensor(src_len), gaze.tensor(tgt), gaze.tensor(tgt_len),
                           return_attention=True)
    t_out = t(*(torch.tensor(a) for a in (src, src_len, tgt, tgt_len)))
    assert [len(att[k]) for k in ("encoder", "decoder", "cross")] == [2, 1, 1]
    for key, want in (("encoder", enc_w), ("decoder", dec_w), ("cross", cross_w)):
        for gw, tw in zip(att[key], want):
            assert_close(gw.numpy(), tw.numpy(), **REDUCTION, what=f"{key} attention")
    assert att["cross"][0].shape == (3, 2, 6, 7)
    assert (np.triu(att["decoder"][0].numpy()[0, 0], 1) == 0).all()  # causal
    compare_outputs_and_grads(g, t, g_out, t_out)


@pytest.mark.parametrize("cell,attention", [("lstm", "additive"), ("gru", "general")])
def test_rnn_seq2seq_matches_reference_and_returns_its_alignment(cell, attention):
    c = dict(src_vocab_size=21, tgt_vocab_size=17, embed_dim=12, hidden_size=10, decoder_hidden_size=16,
             num_encoder_layers=2, attention_dim=14, readout_dim=13, dropout=0.0, cell=cell, attention=attention)
    gaze.manual_seed(13)
    g = gaze.models.RnnSeq2Seq(**c)
    t = TorchRnnSeq2Seq(c)
    load_into_torch(g, t)
    src, src_len = tokens_and_lengths(14, 3, 8, 21, [8, 4, 1])
    tgt, _ = tokens_and_lengths(15, 3, 5, 17, [5, 5, 5])
    g_out, g_w = g.forward(gaze.tensor(src), gaze.tensor(src_len), gaze.tensor(tgt), return_attention=True)
    t_out, t_w = t(torch.tensor(src), torch.tensor(src_len), torch.tensor(tgt))
    assert g_w.shape == (3, 5, 8)  # per decoder step, over the source
    assert_close(g_w.detach().numpy(), t_w.detach().numpy(), **REDUCTION, what="alignment")
    assert (g_w.detach().numpy()[2, :, 1:] == 0).all() and np.allclose(g_w.detach().numpy()[2, :, 0], 1)
    compare_outputs_and_grads(g, t, g_out, t_out)


@pytest.mark.parametrize("config,pattern", [
    (dict(vocab_size=10, num_classes=2, d_modle=8), r"unknown key 'd_modle'.*d_model"),
    (dict(vocab_size="ten", num_classes=2), r"vocab_size"),
    (dict(vocab_size=10, num_classes=2, pooling="median"), r"pooling.*mean.*cls.*max"),
    (dict(vocab_size=10, num_classes=2, pad_id=12), r"pad_id 12"),
    (dict(vocab_size=10, num_classes=2, d_model=10, nhead=3), r"divisible|nhead|num_heads"),
])
def test_bad_configurations_are_rejected_with_the_valid_choices(config, pattern):
    with pytest.raises(ValueError, match=pattern):
        gaze.models.TransformerClassifier(**config)


def test_bad_token_ids_and_lengths_are_rejected():
    g = gaze.models.TransformerClassifier(**encoder_config(num_classes=2))
    with pytest.raises(IndexError, match="31"):
        g.forward(gaze.tensor(np.array([[1, 31]])), gaze.tensor(np.array([2])))
    with pytest.raises(IndexError, match="lengths"):
        g.forward(gaze.tensor(np.array([[1, 2]])), gaze.tensor(np.array([3])))
    with pytest.raises(ValueError, match="int64"):
        g.forward(gaze.tensor(np.ones((1, 2), np.float32)))
    learned = gaze.models.TransformerClassifier(**encoder_config(num_classes=2, positions="learned", max_positions=4))
    with pytest.raises(ValueError, match="max_positions"):
        learned.forward(gaze.tensor(np.ones((1, 5), np.int64)))


@pytest.mark.parametrize("kind,kwargs", [
    ("TransformerClassifier", encoder_config(num_classes=3)),
    ("TransformerTagger", encoder_config(num_tags=4)),
    ("TransformerSeq2Seq", dict(src_vocab_size=12, tgt_vocab_size=12, d_model=8, nhead=2, num_encoder_layers=1,
                                num_decoder_layers=1, dim_feedforward=16, share_embeddings=True, tie_output=False)),
    ("RnnSeq2Seq", dict(src_vocab_size=12, tgt_vocab_size=9, embed_dim=6, hidden_size=4, decoder_hidden_size=8,
                        attention="dot", cell="gru")),
])
def test_a_checkpoint_folder_rebuilds_the_model(tmp_path, kind, kwargs):
    gaze.manual_seed(20)
    m = getattr(gaze.models, kind)(**kwargs)
    gaze.io.save_checkpoint(str(tmp_path / "m"), m)
    back = gaze.models.load_model(str(tmp_path / "m"))
    assert type(back).__name__ == kind
    assert json.loads(back.config) == json.loads(m.config)
    for (name, a), (name_b, b) in zip(m.state_dict().items(), back.state_dict().items()):
        assert name == name_b and np.array_equal(a.numpy(), b.numpy())
