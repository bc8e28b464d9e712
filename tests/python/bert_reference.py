"""A small BERT and DistilBERT in torch with Hugging Face's parameter names and config.json keys,
written from the published architectures (Devlin et al. 2019; Sanh et al. 2019: post-LayerNorm
Transformer encoder layers, GELU, learned absolute positions, token types, the [CLS] tanh pooler),
and a writer of Hugging Face model folders (config.json, model.safetensors by the safetensors
specification, vocab.txt). The reference of test_bert.py: gaze imports what this writes and must
compute the same outputs and gradients."""
import json
import math
import os
import struct

import numpy as np
import torch
from torch import nn


# Scores added at masked key positions.  Transformers < 4.21 (and the original
# Google code) add (1 - mask) * -10000.0; newer versions use
# (1 - mask) * torch.finfo(dtype).min.  Both give identical results (to float32
# rounding) unless an entire row is masked: with -10000 a fully masked row is
# the same as an unmasked one (softmax is shift-invariant); with finfo.min the
# scores are swamped and the row becomes uniform.
MASK_FILL_LEGACY = "legacy_-10000"
MASK_FILL_FINFO_MIN = "finfo_min"


def _mask_fill_value(mode, dtype):
    if mode == MASK_FILL_LEGACY:
        return -10000.0
    if mode == MASK_FILL_FINFO_MIN:
        return torch.finfo(dtype).min
    raise ValueError(mode)


def gelu_erf(x):
    """Exact GELU, x * Phi(x) with the normal CDF written via erf (HF "gelu")."""
    return x * 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))


BERT_DEFAULT_CONFIG = {
    "vocab_size": 30522,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
    "initializer_range": 0.02,
    "layer_norm_eps": 1e-12,
    "pad_token_id": 0,
    "position_embedding_type": "absolute",
}


class BertEmbeddings(nn.Module):
    """word(input_ids) + position(0..T-1) + token_type(token_type_ids),
    then LayerNorm, then dropout."""

    def __init__(self, cfg):
        super().__init__()
        h = cfg["hidden_size"]
        self.word_embeddings = nn.Embedding(cfg["vocab_size"], h, padding_idx=cfg["pad_token_id"])
        self.position_embeddings = nn.Embedding(cfg["max_position_embeddings"], h)
        self.token_type_embeddings = nn.Embedding(cfg["type_vocab_size"], h)
        self.LayerNorm = nn.LayerNorm(h, eps=cfg["layer_norm_eps"])
        self.dropout = nn.Dropout(cfg["hidden_dropout_prob"])

    def forward(self, input_ids, token_type_ids):
        seq_len = input_ids.shape[1]
        positions = torch.arange(seq_len, device=input_ids.device).unsqueeze(0)
        x = (
            self.word_embeddings(input_ids)
            + self.position_embeddings(positions)
            + self.token_type_embeddings(token_type_ids)
        )
        return self.dropout(self.LayerNorm(x))


class BertSelfAttention(nn.Module):
    """Multi-head scaled dot-product attention: softmax(QK^T/sqrt(d_head) + mask) V."""

    def __init__(self, cfg):
        super().__init__()
        h = cfg["hidden_size"]
        self.num_heads = cfg["num_attention_heads"]
        if h % self.num_heads:
            raise ValueError("hidden_size must be divisible by num_attention_heads")
        self.head_dim = h // self.num_heads
        self.query = nn.Linear(h, h)
        self.key = nn.Linear(h, h)
        self.value = nn.Linear(h, h)
        self.dropout = nn.Dropout(cfg["attention_probs_dropout_prob"])

    def _heads(self, x):  # [B,T,H] -> [B,nh,T,dh]
        b, t, _ = x.shape
        return x.view(b, t, self.num_heads, self.head_dim).permute(0, 2, 1, 3)

    def forward(self, hidden, additive_mask):
        q = self._heads(self.query(hidden))
        k = self._heads(self.key(hidden))
        v = self._heads(self.value(hidden))
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim)
        scores = scores + additive_mask  # [B,1,1,T] broadcast over heads and queries
        probs = self.dropout(torch.softmax(scores, dim=-1))
        ctx = (probs @ v).permute(0, 2, 1, 3).contiguous()
        return ctx.view(hidden.shape)


class BertSelfOutput(nn.Module):
    """dense -> dropout -> LayerNorm(. + residual)  (post-norm)."""

    def __init__(self, cfg):
        super().__init__()
        h = cfg["hidden_size"]
        self.dense = nn.Linear(h, h)
        self.LayerNorm = nn.LayerNorm(h, eps=cfg["layer_norm_eps"])
        self.dropout = nn.Dropout(cfg["hidden_dropout_prob"])

    def forward(self, x, residual):
        return self.LayerNorm(self.dropout(self.dense(x)) + residual)


class BertAttention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.self = BertSelfAttention(cfg)
        self.output = BertSelfOutput(cfg)

    def forward(self, hidden, additive_mask):
        return self.output(self.self(hidden, additive_mask), hidden)


class BertIntermediate(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        if cfg["hidden_act"] != "gelu":
            raise ValueError("only hidden_act='gelu' (erf form) is implemented")
        self.dense = nn.Linear(cfg["hidden_size"], cfg["intermediate_size"])

    def forward(self, x):
        return gelu_erf(self.dense(x))


class BertOutput(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.dense = nn.Linear(cfg["intermediate_size"], cfg["hidden_size"])
        self.LayerNorm = nn.LayerNorm(cfg["hidden_size"], eps=cfg["layer_norm_eps"])
        self.dropout = nn.Dropout(cfg["hidden_dropout_prob"])

    def forward(self, x, residual):
        return self.LayerNorm(self.dropout(self.dense(x)) + residual)


class BertLayer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.attention = BertAttention(cfg)
        self.intermediate = BertIntermediate(cfg)
        self.output = BertOutput(cfg)

    def forward(self, hidden, additive_mask):
        attn = self.attention(hidden, additive_mask)
        return self.output(self.intermediate(attn), attn)


class BertEncoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.layer = nn.ModuleList(BertLayer(cfg) for _ in range(cfg["num_hidden_layers"]))

    def forward(self, hidden, additive_mask):
        for layer in self.layer:
            hidden = layer(hidden, additive_mask)
        return hidden


class BertPooler(nn.Module):
    """tanh(dense(hidden state of the first token, i.e. [CLS]))."""

    def __init__(self, cfg):
        super().__init__()
        self.dense = nn.Linear(cfg["hidden_size"], cfg["hidden_size"])

    def forward(self, hidden):
        return torch.tanh(self.dense(hidden[:, 0]))


class TinyBert(nn.Module):
    """BERT encoder with Hugging Face ``BertModel`` parameter names.

    forward(input_ids [B,T], attention_mask [B,T] of 1/0 (None = all ones),
            token_type_ids [B,T] (None = zeros))
      -> (last_hidden_state [B,T,H], pooler_output [B,H] or None)

    state_dict() keys are exactly the HF ones (no position_ids buffer).
    """

    model_type = "bert"

    def __init__(self, config, add_pooling_layer=True, mask_fill=MASK_FILL_LEGACY):
        super().__init__()
        self.config = dict(BERT_DEFAULT_CONFIG)
        self.config.update(config)
        self.mask_fill = mask_fill
        self.embeddings = BertEmbeddings(self.config)
        self.encoder = BertEncoder(self.config)
        self.pooler = BertPooler(self.config) if add_pooling_layer else None

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        hidden = self.embeddings(input_ids, token_type_ids)
        fill = _mask_fill_value(self.mask_fill, hidden.dtype)
        additive = (1.0 - attention_mask[:, None, None, :].to(hidden.dtype)) * fill
        hidden = self.encoder(hidden, additive)
        pooled = self.pooler(hidden) if self.pooler is not None else None
        return hidden, pooled


DISTILBERT_DEFAULT_CONFIG = {
    "vocab_size": 30522,
    "max_position_embeddings": 512,
    "sinusoidal_pos_embds": False,
    "n_layers": 6,
    "n_heads": 12,
    "dim": 768,
    "hidden_dim": 3072,
    "dropout": 0.1,
    "attention_dropout": 0.1,
    "activation": "gelu",
    "initializer_range": 0.02,
    "qa_dropout": 0.1,
    "seq_classif_dropout": 0.2,
    "pad_token_id": 0,
}
DISTILBERT_LAYER_NORM_EPS = 1e-12  # fixed in DistilBERT, not a config key


class DistilBertEmbeddings(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d = cfg["dim"]
        self.word_embeddings = nn.Embedding(cfg["vocab_size"], d, padding_idx=cfg["pad_token_id"])
        self.position_embeddings = nn.Embedding(cfg["max_position_embeddings"], d)
        self.LayerNorm = nn.LayerNorm(d, eps=DISTILBERT_LAYER_NORM_EPS)
        self.dropout = nn.Dropout(cfg["dropout"])

    def forward(self, input_ids):
        positions = torch.arange(input_ids.shape[1], device=input_ids.device).unsqueeze(0)
        x = self.word_embeddings(input_ids) + self.position_embeddings(positions)
        return self.dropout(self.LayerNorm(x))


class DistilBertSelfAttention(nn.Module):
    """As BERT, but q is scaled by 1/sqrt(d_head) *before* QK^T and masked keys
    are set (masked_fill, not added) to finfo.min (older versions: -inf)."""

    def __init__(self, cfg):
        super().__init__()
        d = cfg["dim"]
        self.n_heads = cfg["n_heads"]
        if d % self.n_heads:
            raise ValueError("dim must be divisible by n_heads")
        self.head_dim = d // self.n_heads
        self.q_lin = nn.Linear(d, d)
        self.k_lin = nn.Linear(d, d)
        self.v_lin = nn.Linear(d, d)
        self.out_lin = nn.Linear(d, d)
        self.dropout = nn.Dropout(cfg["attention_dropout"])

    def _heads(self, x):
        b, t, _ = x.shape
        return x.view(b, t, self.n_heads, self.head_dim).transpose(1, 2)

    def forward(self, x, attention_mask):
        q = self._heads(self.q_lin(x)) / math.sqrt(self.head_dim)
        k = self._heads(self.k_lin(x))
        v = self._heads(self.v_lin(x))
        scores = q @ k.transpose(-1, -2)
        masked = (attention_mask == 0)[:, None, None, :].expand_as(scores)
        scores = scores.masked_fill(masked, torch.finfo(scores.dtype).min)
        probs = self.dropout(torch.softmax(scores, dim=-1))
        ctx = (probs @ v).transpose(1, 2).contiguous().view(x.shape)
        return self.out_lin(ctx)


class DistilBertFFN(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        if cfg["activation"] != "gelu":
            raise ValueError("only activation='gelu' (erf form) is implemented")
        self.lin1 = nn.Linear(cfg["dim"], cfg["hidden_dim"])
        self.lin2 = nn.Linear(cfg["hidden_dim"], cfg["dim"])
        self.dropout = nn.Dropout(cfg["dropout"])

    def forward(self, x):
        return self.dropout(self.lin2(gelu_erf(self.lin1(x))))


class DistilBertBlock(nn.Module):
    """sa = sa_layer_norm(attention(x) + x); out = output_layer_norm(ffn(sa) + sa)."""

    def __init__(self, cfg):
        super().__init__()
        self.attention = DistilBertSelfAttention(cfg)
        self.sa_layer_norm = nn.LayerNorm(cfg["dim"], eps=DISTILBERT_LAYER_NORM_EPS)
        self.ffn = DistilBertFFN(cfg)
        self.output_layer_norm = nn.LayerNorm(cfg["dim"], eps=DISTILBERT_LAYER_NORM_EPS)

    def forward(self, x, attention_mask):
        sa = self.sa_layer_norm(self.attention(x, attention_mask) + x)
        return self.output_layer_norm(self.ffn(sa) + sa)


class DistilBertTransformer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.layer = nn.ModuleList(DistilBertBlock(cfg) for _ in range(cfg["n_layers"]))

    def forward(self, x, attention_mask):
        for layer in self.layer:
            x = layer(x, attention_mask)
        return x


class TinyDistilBert(nn.Module):
    """DistilBERT encoder with Hugging Face ``DistilBertModel`` parameter names.

    forward(input_ids [B,T], attention_mask [B,T] (None = all ones))
      -> last_hidden_state [B,T,dim]     (no token types, no pooler)
    """

    model_type = "distilbert"

    def __init__(self, config):
        super().__init__()
        self.config = dict(DISTILBERT_DEFAULT_CONFIG)
        self.config.update(config)
        if self.config["sinusoidal_pos_embds"]:
            raise ValueError("sinusoidal_pos_embds=True is not implemented")
        self.embeddings = DistilBertEmbeddings(self.config)
        self.transformer = DistilBertTransformer(self.config)

    def forward(self, input_ids, attention_mask=None):
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        return self.transformer(self.embeddings(input_ids), attention_mask)


def randomize_parameters_(model, seed, weight_gain=1.0):
    """Deterministic *test* initialisation (not HF's N(0, 0.02) init, which makes
    attention almost uniform and hides bugs).  Every tensor gets distinct
    non-trivial values so that a loader mixing up weight/bias, transposing a
    matrix or ignoring LayerNorm parameters produces different outputs:
      embeddings   ~ N(0, 1)
      Linear.weight ~ N(0, gain / sqrt(in_features)),  Linear.bias ~ N(0, 0.1)
      LayerNorm.weight ~ 1 + N(0, 0.1),                LayerNorm.bias ~ N(0, 0.1)
    """
    gen = torch.Generator().manual_seed(seed)

    def normal(shape, std, mean=0.0):
        return torch.randn(shape, generator=gen) * std + mean

    with torch.no_grad():
        for name, module in model.named_modules():
            if isinstance(module, nn.Embedding):
                module.weight.copy_(normal(module.weight.shape, 1.0))
            elif isinstance(module, nn.Linear):
                std = weight_gain / math.sqrt(module.in_features)
                module.weight.copy_(normal(module.weight.shape, std))
                module.bias.copy_(normal(module.bias.shape, 0.1))
            elif isinstance(module, nn.LayerNorm):
                module.weight.copy_(normal(module.weight.shape, 0.1, mean=1.0))
                module.bias.copy_(normal(module.bias.shape, 0.1))
    return model



# safetensors dtype name -> numpy little-endian dtype.  BF16 has no numpy
# dtype: it is stored as the upper 16 bits of an IEEE float32.
SAFETENSORS_DTYPES = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2",
    "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1", "U8": "u1", "BOOL": "?",
}
NUMPY_TO_SAFETENSORS = {"float64": "F64", "float32": "F32", "float16": "F16", "int64": "I64",
                        "int32": "I32", "int16": "I16", "int8": "I8", "uint8": "U8", "bool": "BOOL"}


def float32_to_bf16_bits(a):
    """Round float32 to bfloat16 (round to nearest, ties to even); returns uint16 bits."""
    bits = np.ascontiguousarray(a, dtype="<f4").view("<u4").astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    return rounded.astype("<u2")


def bf16_bits_to_float32(bits):
    return (np.asarray(bits, dtype="<u2").astype("<u4") << 16).view("<f4")


def write_safetensors(path, tensors, metadata=None):
    """Write {name: (safetensors_dtype, numpy array)} or {name: numpy array}.

    Layout: u64 little-endian N | N bytes of UTF-8 JSON header (padded with
    spaces so the data starts at an 8-byte boundary) | data.  Header:
    {"__metadata__": {str: str}, name: {"dtype", "shape", "data_offsets":
    [begin, end]}} with offsets relative to the start of the data section; the
    tensors tile the data section with no gaps.  Tensors are laid out by
    decreasing element size, then by name (as the official writer does), so
    every tensor is aligned to its element size.
    """
    entries = []
    for name, value in tensors.items():
        if isinstance(value, tuple):
            dtype, arr = value
        else:
            arr = np.asarray(value)
            dtype = NUMPY_TO_SAFETENSORS[arr.dtype.name]
        raw = np.ascontiguousarray(arr, dtype=SAFETENSORS_DTYPES[dtype])
        entries.append((name, dtype, list(raw.shape), raw.tobytes()))
    entries.sort(key=lambda e: (-np.dtype(SAFETENSORS_DTYPES[e[1]]).itemsize, e[0]))

    header = {"__metadata__": dict(metadata if metadata is not None else {"format": "pt"})}
    offset = 0
    for name, dtype, shape, data in entries:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    header_bytes = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    header_bytes += b" " * (-len(header_bytes) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header_bytes)))
        f.write(header_bytes)
        for _, _, _, data in entries:
            f.write(data)


def read_safetensors(path):
    """Independent strict reader -> ({name: numpy array (BF16 widened to float32)},
    {name: dtype string}, metadata).  Validates the layout."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise ValueError("file too small")
    (n,) = struct.unpack("<Q", blob[:8])
    if 8 + n > len(blob):
        raise ValueError("header length exceeds file size")
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    data = blob[8 + n:]
    metadata = header.pop("__metadata__", None)
    arrays, dtypes, spans = {}, {}, []
    for name, info in header.items():
        dtype, shape, (begin, end) = info["dtype"], info["shape"], info["data_offsets"]
        np_dtype = np.dtype(SAFETENSORS_DTYPES[dtype])
        if (end - begin) != int(np.prod(shape, dtype=np.int64)) * np_dtype.itemsize:
            raise ValueError(f"{name}: byte length does not match shape/dtype")
        arr = np.frombuffer(data[begin:end], dtype=np_dtype).reshape(shape)
        arrays[name] = bf16_bits_to_float32(arr) if dtype == "BF16" else arr.copy()
        dtypes[name] = dtype
        spans.append((begin, end))
    position = 0
    for begin, end in sorted(spans):
        if begin != position:
            raise ValueError("data section has a gap or overlap")
        position = end
    if position != len(data):
        raise ValueError("data section is not fully covered by tensors")
    return arrays, dtypes, metadata


def hf_config_dict(model, architectures=None, prefix=""):
    """config.json contents with the keys HF writes for the model type."""
    cfg = dict(model.config)
    if model.model_type == "bert":
        default_arch = "BertModel" if prefix == "" else "BertForSequenceClassification"
        cfg.update({"model_type": "bert", "use_cache": True, "torch_dtype": "float32"})
    else:
        default_arch = "DistilBertModel" if prefix == "" else "DistilBertForSequenceClassification"
        cfg.update({"model_type": "distilbert", "tie_weights_": True, "torch_dtype": "float32"})
    cfg["architectures"] = list(architectures) if architectures else [default_arch]
    return dict(sorted(cfg.items()))


def save_hf_folder(model, folder, vocab_tokens, prefix="", architectures=None,
                   extra_tensors=None, dtype="F32", include_position_ids=False,
                   legacy_layernorm_names=False, write_tokenizer_config=True):
    """Write a Hugging Face style model folder:

    config.json        HF keys, model_type, architectures
    model.safetensors  state_dict with every key prefixed by `prefix`
                       (e.g. "bert." / "distilbert." as *ForSequenceClassification
                       saves them), plus `extra_tensors` (e.g. classifier.weight)
                       written verbatim (no prefix).
    vocab.txt          one token per line
    tokenizer_config.json (optional) do_lower_case etc.

    Options for loader-robustness tests (all off by default):
      dtype="F16"/"BF16"       store float tensors in half precision
      include_position_ids     add "<prefix>embeddings.position_ids" (I64 [1, max_pos]),
                               a buffer that older HF versions saved
      legacy_layernorm_names   name LayerNorm parameters gamma/beta instead of
                               weight/bias (old TF-converted checkpoints; HF renames
                               them on load)
    """
    os.makedirs(folder, exist_ok=True)
    tensors = {}
    for name, t in model.state_dict().items():
        if legacy_layernorm_names and ("LayerNorm" in name or "layer_norm" in name):
            name = name.replace(".weight", ".gamma").replace(".bias", ".beta")
        arr = t.detach().cpu().numpy().astype(np.float32)
        if dtype == "F32":
            tensors[prefix + name] = ("F32", arr)
        elif dtype == "F16":
            tensors[prefix + name] = ("F16", arr.astype(np.float16))
        elif dtype == "BF16":
            tensors[prefix + name] = ("BF16", float32_to_bf16_bits(arr))
        else:
            raise ValueError(dtype)
    if include_position_ids:
        max_pos = model.config["max_position_embeddings"]
        tensors[prefix + "embeddings.position_ids"] = ("I64", np.arange(max_pos, dtype=np.int64)[None])
    for name, arr in (extra_tensors or {}).items():
        tensors[name] = ("F32", np.asarray(arr, dtype=np.float32))
    write_safetensors(os.path.join(folder, "model.safetensors"), tensors)

    with open(os.path.join(folder, "config.json"), "w", encoding="utf-8") as f:
        json.dump(hf_config_dict(model, architectures, prefix), f, indent=2)
        f.write("\n")
    with open(os.path.join(folder, "vocab.txt"), "w", encoding="utf-8") as f:
        for token in vocab_tokens:
            f.write(token + "\n")
    if write_tokenizer_config:
        tok_cfg = {"do_lower_case": True, "tokenize_chinese_chars": True, "strip_accents": None,
                   "unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]",
                   "cls_token": "[CLS]", "mask_token": "[MASK]",
                   "model_max_length": model.config["max_position_embeddings"],
                   "tokenizer_class": "BertTokenizer" if model.model_type == "bert" else "DistilBertTokenizer"}
        with open(os.path.join(folder, "tokenizer_config.json"), "w", encoding="utf-8") as f:
            json.dump(tok_cfg, f, indent=2)
            f.write("\n")


def load_hf_folder(folder, prefix=None):
    """Inverse of save_hf_folder (F32/F16/BF16, gamma/beta and position_ids
    tolerated).  Returns (model, vocab_tokens, raw_arrays)."""
    with open(os.path.join(folder, "config.json"), encoding="utf-8") as f:
        cfg = json.load(f)
    arrays, _, _ = read_safetensors(os.path.join(folder, "model.safetensors"))
    if cfg["model_type"] == "bert":
        model = TinyBert({k: cfg[k] for k in BERT_DEFAULT_CONFIG if k in cfg})
        default_prefix = "bert."
    else:
        model = TinyDistilBert({k: cfg[k] for k in DISTILBERT_DEFAULT_CONFIG if k in cfg})
        default_prefix = "distilbert."
    wanted = model.state_dict().keys()
    if prefix is None:
        prefix = default_prefix if any(k.startswith(default_prefix) for k in arrays) else ""
    state = {}
    for name, arr in arrays.items():
        if not name.startswith(prefix):
            continue
        key = name[len(prefix):].replace(".gamma", ".weight").replace(".beta", ".bias")
        if key in wanted:
            state[key] = torch.from_numpy(np.asarray(arr, dtype=np.float32))
    model.load_state_dict(state, strict=True)
    with open(os.path.join(folder, "vocab.txt"), encoding="utf-8") as f:
        vocab_tokens = [line.rstrip("\n") for line in f]
    return model.eval(), vocab_tokens, arrays


