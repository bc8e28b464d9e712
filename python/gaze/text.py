"""gaze.text: the tokenizer of a model folder, as predict and train use it."""
from ._C import _text

load_tokenizer = _text.load_tokenizer  # load_tokenizer(dir) -> Tokenizer (encode, tokenize, decode)

__all__ = ["load_tokenizer"]
