"""Whole-model training parity, as llm.c checks it: a small TransformerSeq2Seq and a small RnnSeq2Seq
train for 10 AdamW steps (linear warm-up and decay, gradient clipping, label-smoothed cross-entropy
that ignores padding) in gaze and in a PyTorch reference written here from the models' definitions,
starting from the same weights and seeing the same batches. Losses, gradient norms and the final
parameters must agree to rel 1e-3."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import gaze
from parity import assert_close, rng
from reference_models import PAD, TorchRnnSeq2Seq, TorchTransformerSeq2Seq

STEPS, WARMUP, CLIP, SMOOTHING = 10, 3, 0.5, 0.1
TOL = dict(rtol=1e-3, atol_scale=1e-4)


# --- the training run --------------------------------------------------------------------------


def batches(seed, B, S, T, src_vocab, tgt_vocab):
    """STEPS batches of (src, src_len, tgt_in, tgt_out, tgt_len) with padding, as int64 arrays."""
    r = rng(seed)
    out = []
    for _ in range(STEPS):
        src_len = r.integers(2, S + 1, B)
        src_len[0] = S  # the longest sets the padded width, as a batcher would
        tgt_len = r.integers(2, T + 1, B)
        tgt_len[0] = T
        src = r.integers(1, src_vocab, (B, S))
        tgt = r.integers(1, tgt_vocab, (B, T + 1))
        src[np.arange(S)[None, :] >= src_len[:, None]] = PAD
        tgt[np.arange(T + 1)[None, :] >= tgt_len[:, None] + 1] = PAD
        out.append((src, src_len, tgt[:, :-1], tgt[:, 1:], tgt_len))
    return out


def linear_warmup_decay(step):
    return step / WARMUP if step < WARMUP else max(0.0, (STEPS - step) / (STEPS - WARMUP))


def train_torch(model, data, forward):
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, linear_warmup_decay)
    losses, norms = [], []
    for batch in data:
        logits = forward(model, *[torch.tensor(a) for a in batch])
        tgt_out = torch.tensor(batch[3])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt_out.reshape(-1), ignore_index=PAD,
                               label_smoothing=SMOOTHING)
        opt.zero_grad()
        loss.backward()
        norms.append(torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP).item())
        opt.step()
        sched.step()
        losses.append(loss.item())
    return losses, norms


def train_gaze(model, data, forward):
    params = [p for _, p in model.named_parameters()]
    opt = gaze.optim.AdamW(params, lr=3e-3, weight_decay=0.01)
    sched = gaze.optim.LRScheduler(opt, "linear", warmup_steps=WARMUP, total_steps=STEPS)
    losses, norms = [], []
    for batch in data:
        logits = forward(model, *[gaze.tensor(a) for a in batch])
        V = logits.shape[-1]
        loss = gaze.nn.functional.cross_entropy(logits.reshape([-1, V]), gaze.tensor(batch[3].reshape(-1)),
                                                ignore_index=PAD, label_smoothing=SMOOTHING)
        opt.zero_grad()
        loss.backward()
        norms.append(gaze.nn.utils.clip_grad_norm_(params, CLIP))
        opt.step()
        sched.step()
        losses.append(loss.item())
    return losses, norms


def run_parity(g, t, data, g_forward, t_forward):
    sd = {k: torch.tensor(v.numpy()) for k, v in g.state_dict().items()}
    t.load_state_dict(sd)  # strict: the reference has exactly gaze's keys
    g.train(), t.train()
    t_losses, t_norms = train_torch(t, data, t_forward)
    g_losses, g_norms = train_gaze(g, data, g_forward)
    assert_close(g_losses, t_losses, **TOL, what="losses")
    assert_close(g_norms, t_norms, **TOL, what="gradient norms")
    assert max(t_norms) > CLIP, f"the test should exercise clipping: norms {t_norms}"
    tp = dict(t.named_parameters())
    for name, p in g.named_parameters():
        got, want = p.detach().numpy(), tp[name].detach().numpy()
        if name.endswith("in_proj_bias"):
            # The key bias adds q.b_k to every score of a row, which softmax ignores: its true gradient
            # is 0 and both frameworks compute round-off noise that Adam scales up to steps of size lr.
            # Its final value is therefore noise in both; compare the query and value blocks only.
            d = got.shape[0] // 3
            assert np.abs(tp[name].grad.numpy()[d:2 * d]).max() < 1e-6
            got, want = np.delete(got, np.s_[d:2 * d]), np.delete(want, np.s_[d:2 * d])
        assert_close(got, want, **TOL, what=f"final {name}")
    # The run must have moved the weights: equal final parameters are not equal initial ones.
    moved = [name for name, p in g.named_parameters() if not np.array_equal(p.detach().numpy(), sd[name].numpy())]
    assert len(moved) == len(sd)


@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_transformer_seq2seq_trains_like_torch(activation):
    c = dict(src_vocab_size=23, tgt_vocab_size=19, d_model=32, nhead=4, num_encoder_layers=2, num_decoder_layers=2,
             dim_feedforward=64, dropout=0.0, activation=activation, norm_first=True, tie_output=True,
             share_embeddings=False, scale_embeddings=True, positions="sinusoidal", pad_id=PAD)
    gaze.manual_seed(7)
    g = gaze.models.TransformerSeq2Seq(**c)
    t = TorchTransformerSeq2Seq(c)
    data = batches(1, B=4, S=9, T=7, src_vocab=c["src_vocab_size"], tgt_vocab=c["tgt_vocab_size"])
    run_parity(g, t, data,
               lambda m, src, sl, ti, to, tl: m.forward(src, sl, ti, tl),
               lambda m, src, sl, ti, to, tl: m(src, sl, ti, tl))


@pytest.mark.parametrize("cell,attention", [("lstm", "additive"), ("gru", "general")])
def test_rnn_seq2seq_trains_like_torch(cell, attention):
    c = dict(src_vocab_size=21, tgt_vocab_size=17, embed_dim=12, hidden_size=10, decoder_hidden_size=16,
             num_encoder_layers=2, attention_dim=14, readout_dim=13, dropout=0.0, cell=cell, attention=attention,
             pad_id=PAD)
    gaze.manual_seed(8)
    g = gaze.models.RnnSeq2Seq(**c)
    t = TorchRnnSeq2Seq(c)
    data = batches(2, B=4, S=8, T=6, src_vocab=c["src_vocab_size"], tgt_vocab=c["tgt_vocab_size"])
    run_parity(g, t, data,
               lambda m, src, sl, ti, to, tl: m.forward(src, sl, ti),
               lambda m, src, sl, ti, to, tl: m(src, sl, ti)[0])
