"""PyTorch references for gaze's models, written from the models' definitions with gaze's state-dict
keys, so that a gaze model's weights load into them unchanged (strict). record_attention() makes
torch's attention modules keep their per-head weights, for comparing gaze's attention capture."""
import math

import torch
import torch.nn.functional as F

PAD = 0


def sinusoidal(T, d, offset=0):
    pos = torch.arange(offset, offset + T, dtype=torch.float64)[:, None]
    freq = torch.pow(10000.0, -torch.arange(0, d, 2, dtype=torch.float64) / d)
    pe = torch.zeros(T, d, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq[: d // 2])
    return pe.float()


def padding(lengths, T):
    return torch.arange(T)[None, :] >= lengths[:, None]


def record_attention(mha, store):
    """Makes nn.MultiheadAttention `mha` append its per-head weights [B, H, Tq, Tk] to `store`."""
    forward = mha.forward

    def with_weights(*args, **kwargs):
        kwargs.update(need_weights=True, average_attn_weights=False)
        out, weights = forward(*args, **kwargs)
        store.append(weights.detach())
        return out, weights

    mha.forward = with_weights


def record_seq2seq_attention(t):
    """Makes every attention module of a torch encoder-decoder `t` record its per-head weights;
    returns the (encoder, decoder, cross) lists they are appended to, one entry per layer."""
    enc, dec, cross = [], [], []
    for layer in t.encoder.layers:
        record_attention(layer.self_attn, enc)
    for layer in t.decoder.layers:
        record_attention(layer.self_attn, dec)
        record_attention(layer.multihead_attn, cross)
    return enc, dec, cross


class FixedRows(torch.nn.Module):
    """Stands in for an embedding table: returns the given rows whatever the ids (attribution tests
    differentiate with respect to them)."""

    def __init__(self, rows):
        super().__init__()
        self.rows = rows

    def forward(self, tokens):
        return self.rows


def gradient_x_input_rows(outputs, x):
    """Row k: sum over the embedding dimension of x * d outputs(x)[0, k] / dx, for embeddings x
    [1, T, E] and outputs [n, K] of n variants; [K, T]."""
    rows = []
    for k in range(outputs(x).shape[1]):
        xi = x.clone().requires_grad_()
        outputs(xi)[0, k].backward()
        rows.append((xi.grad * xi).sum(-1)[0].detach().numpy())
    return rows


def layer_kwargs(c, d):
    return dict(d_model=d, nhead=c["nhead"], dim_feedforward=c["dim_feedforward"], dropout=0.0,
                activation=c.get("activation", "gelu"), batch_first=True, norm_first=c.get("norm_first", True))


class TorchTextEncoder(torch.nn.Module):
    """Token embedding (* sqrt(d) if scale_embeddings) + positions + encoder (+ final norm if pre-norm)."""

    def __init__(self, c):
        super().__init__()
        d = c["d_model"]
        self.c = c
        self.embedding = torch.nn.Embedding(c["vocab_size"], d, padding_idx=PAD)
        if c.get("positions", "sinusoidal") == "learned":
            self.positions = torch.nn.Embedding(c.get("max_positions", 512), d)
        norm_first = c.get("norm_first", True)
        self.encoder = torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(**layer_kwargs(c, d)),
                                                   c["num_layers"], norm=torch.nn.LayerNorm(d) if norm_first else None)

    def body(self, tokens, lengths):
        d, T = self.c["d_model"], tokens.shape[1]
        x = self.embedding(tokens)
        if self.c.get("scale_embeddings", False):
            x = x * math.sqrt(d)
        kind = self.c.get("positions", "sinusoidal")
        if kind == "learned":
            x = x + self.positions.weight[:T]
        elif kind == "sinusoidal":
            x = x + sinusoidal(T, d)
        return self.encoder(x, src_key_padding_mask=padding(lengths, T))


class TorchAttentionPooling(torch.nn.Module):
    """Hierarchical Attention Networks' word attention (Yang et al. 2016): u_t = tanh(W h_t + b),
    a = softmax_t(u_t . context) over the real tokens, pooled = sum_t a_t h_t."""

    def __init__(self, d):
        super().__init__()
        self.proj = torch.nn.Linear(d, d)
        self.context = torch.nn.Linear(d, 1, bias=False)

    def forward(self, h, pad):
        scores = self.context(torch.tanh(self.proj(h))).squeeze(-1).masked_fill(pad, float("-inf"))
        self.weights = torch.softmax(scores, 1)
        return (h * self.weights[:, :, None]).sum(1)


class TorchClassifier(TorchTextEncoder):
    def __init__(self, c):
        super().__init__(c)
        if c.get("pooling") == "attention":
            self.attention_pool = TorchAttentionPooling(c["d_model"])
        self.head = torch.nn.Linear(c["d_model"], c["num_classes"])

    def forward(self, tokens, lengths):
        h = self.body(tokens, lengths)
        pooling, pad = self.c.get("pooling", "mean"), padding(lengths, tokens.shape[1])
        if pooling == "cls":
            return self.head(h[:, 0])
        if pooling == "max":
            return self.head(h.masked_fill(pad[:, :, None], float("-inf")).max(1).values)
        if pooling == "attention":
            return self.head(self.attention_pool(h, pad))
        keep = (~pad).float()[:, :, None]
        return self.head((h * keep).sum(1) / lengths[:, None].float())


class TorchTagger(TorchTextEncoder):
    def __init__(self, c):
        super().__init__(c)
        self.head = torch.nn.Linear(c["d_model"], c["num_tags"])

    def forward(self, tokens, lengths):
        return self.head(self.body(tokens, lengths))


class TorchTransformerSeq2Seq(torch.nn.Module):
    """Encoder-decoder with scaled embeddings, sinusoidal positions, pre-norm layers with final norms
    and the output projection tied to the target embedding."""

    def __init__(self, c):
        super().__init__()
        d = c["d_model"]
        self.d = d
        self.src_embedding = torch.nn.Embedding(c["src_vocab_size"], d, padding_idx=PAD)
        self.tgt_embedding = torch.nn.Embedding(c["tgt_vocab_size"], d, padding_idx=PAD)
        kw = layer_kwargs(c, d)
        self.encoder = torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(**kw), c["num_encoder_layers"],
                                                   norm=torch.nn.LayerNorm(d))
        self.decoder = torch.nn.TransformerDecoder(torch.nn.TransformerDecoderLayer(**kw), c["num_decoder_layers"],
                                                   norm=torch.nn.LayerNorm(d))

    def embed(self, emb, tokens):
        return emb(tokens) * math.sqrt(self.d) + sinusoidal(tokens.shape[1], self.d)

    def forward(self, src, src_len, tgt_in, tgt_len):
        src_pad, tgt_pad = padding(src_len, src.shape[1]), padding(tgt_len, tgt_in.shape[1])
        causal = torch.triu(torch.ones(tgt_in.shape[1], tgt_in.shape[1], dtype=torch.bool), 1)
        memory = self.encoder(self.embed(self.src_embedding, src), src_key_padding_mask=src_pad)
        h = self.decoder(self.embed(self.tgt_embedding, tgt_in), memory, tgt_mask=causal,
                         tgt_key_padding_mask=tgt_pad, memory_key_padding_mask=src_pad)
        return F.linear(h, self.tgt_embedding.weight)


class TorchAdditive(torch.nn.Module):
    def __init__(self, qd, kd, hd):
        super().__init__()
        self.query_proj = torch.nn.Linear(qd, hd, bias=False)
        self.key_proj = torch.nn.Linear(kd, hd)
        self.v = torch.nn.Linear(hd, 1, bias=False)

    def forward(self, s, memory, pad):  # e_j = v . tanh(W_q s + W_k h_j)
        e = self.v(torch.tanh(self.query_proj(s)[:, None, :] + self.key_proj(memory))).squeeze(-1)
        return e.masked_fill(pad, float("-inf"))


class TorchGeneral(torch.nn.Module):
    def __init__(self, qd, kd):
        super().__init__()
        self.W = torch.nn.Linear(kd, qd, bias=False)

    def forward(self, s, memory, pad):  # e_j = s^T W h_j
        return torch.einsum("bq,bkq->bk", s, self.W(memory)).masked_fill(pad, float("-inf"))


class TorchRnnSeq2Seq(torch.nn.Module):
    """Bahdanau et al.'s design: c_t = attention(s_{t-1}, H); s_t = cell([E y_{t-1}; c_t], s_{t-1});
    logits = generator(tanh(readout([s_t; c_t; E y_{t-1}]))). forward also returns the weights."""

    def __init__(self, c):
        super().__init__()
        E, H, Hd = c["embed_dim"], c["hidden_size"], c["decoder_hidden_size"]
        self.lstm = c["cell"] == "lstm"
        rnn, cell = (torch.nn.LSTM, torch.nn.LSTMCell) if self.lstm else (torch.nn.GRU, torch.nn.GRUCell)
        self.src_embedding = torch.nn.Embedding(c["src_vocab_size"], E, padding_idx=PAD)
        self.tgt_embedding = torch.nn.Embedding(c["tgt_vocab_size"], E, padding_idx=PAD)
        self.encoder = rnn(E, H, num_layers=c["num_encoder_layers"], bidirectional=True, batch_first=True)
        self.bridge = torch.nn.Linear(2 * H, Hd)
        if c["attention"] == "additive":
            self.attention = TorchAdditive(Hd, 2 * H, c["attention_dim"])
        else:
            self.attention = TorchGeneral(Hd, 2 * H)
        self.decoder = cell(E + 2 * H, Hd)
        self.readout = torch.nn.Linear(Hd + 2 * H + E, c["readout_dim"])
        self.generator = torch.nn.Linear(c["readout_dim"], c["tgt_vocab_size"])

    def forward(self, src, src_len, tgt_in):
        packed = torch.nn.utils.rnn.pack_padded_sequence(self.src_embedding(src), src_len, batch_first=True,
                                                         enforce_sorted=False)
        out, state = self.encoder(packed)
        memory, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=src.shape[1])
        h_n = state[0] if self.lstm else state
        s = torch.tanh(self.bridge(torch.cat([h_n[-2], h_n[-1]], 1)))
        c = torch.zeros_like(s)
        pad = padding(src_len, src.shape[1])
        emb = self.tgt_embedding(tgt_in)
        feats, all_weights = [], []
        for t in range(tgt_in.shape[1]):
            weights = torch.softmax(self.attention(s, memory, pad), -1)
            context = torch.einsum("bk,bkd->bd", weights, memory)
            x = torch.cat([emb[:, t], context], 1)
            if self.lstm:
                s, c = self.decoder(x, (s, c))
            else:
                s = self.decoder(x, s)
            feats.append(torch.cat([s, context, emb[:, t]], 1))
            all_weights.append(weights)
        return self.generator(torch.tanh(self.readout(torch.stack(feats, 1)))), torch.stack(all_weights, 1)
