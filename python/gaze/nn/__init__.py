"""gaze.nn: layers and modules with torch.nn's names, arguments and state-dict keys.

Modules are called like torch's (``mha(q, k, v)`` runs ``forward``); ``state_dict()`` returns gaze
tensors and ``load_state_dict`` accepts gaze tensors, numpy arrays or torch tensors.
"""
from .._C import _nn
from . import functional, utils

Module = _nn.Module
Linear = _nn.Linear
MultiheadAttention = _nn.MultiheadAttention
AdditiveAttention = _nn.AdditiveAttention
LuongAttention = _nn.LuongAttention
SinusoidalPositionalEncoding = _nn.SinusoidalPositionalEncoding
LearnedPositionalEmbedding = _nn.LearnedPositionalEmbedding
RotaryEmbedding = _nn.RotaryEmbedding
KVCache = _nn.KVCache
Embedding = _nn.Embedding
LayerNorm = _nn.LayerNorm
Dropout = _nn.Dropout
TransformerEncoderLayer = _nn.TransformerEncoderLayer
TransformerDecoderLayer = _nn.TransformerDecoderLayer
TransformerEncoder = _nn.TransformerEncoder
TransformerDecoder = _nn.TransformerDecoder
Transformer = _nn.Transformer
LSTM = _nn.LSTM
GRU = _nn.GRU
LSTMCell = _nn.LSTMCell
GRUCell = _nn.GRUCell
CRF = _nn.CRF


def _call(self, *args, **kwargs):
    return self.forward(*args, **kwargs)


def _repr(self):
    params = sum(p.numel() for p in self.parameters())
    return f"gaze.nn.{self.type_name}({params} parameters, {'train' if self.training else 'eval'})"


Module.__call__ = _call
Module.__repr__ = _repr
Module.double = lambda self: self.to(_nn_dtype().float64)
Module.float = lambda self: self.to(_nn_dtype().float32)


def _nn_dtype():
    from .._C import dtype
    return dtype


__all__ = ["Module", "Linear", "MultiheadAttention", "AdditiveAttention", "LuongAttention",
           "SinusoidalPositionalEncoding", "LearnedPositionalEmbedding", "RotaryEmbedding", "KVCache",
           "Embedding", "LayerNorm", "Dropout", "TransformerEncoderLayer", "TransformerDecoderLayer",
           "TransformerEncoder", "TransformerDecoder", "Transformer", "LSTM", "GRU", "LSTMCell", "GRUCell",
           "CRF", "functional"]
