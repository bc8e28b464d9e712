"""gaze.nn.functional: the functional ops under torch.nn.functional's names and arguments."""
from .._C import (relu, gelu, tanh, sigmoid, softmax, log_softmax, layer_norm, dropout, embedding,
                  cross_entropy, mse_loss, linear, scaled_dot_product_attention, masked_softmax,
                  rotary_embedding)

__all__ = ["relu", "gelu", "tanh", "sigmoid", "softmax", "log_softmax", "layer_norm", "dropout",
           "embedding", "cross_entropy", "mse_loss", "linear", "scaled_dot_product_attention",
           "masked_softmax", "rotary_embedding"]
