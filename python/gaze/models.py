"""gaze.models: TransformerClassifier, TransformerTagger, TransformerSeq2Seq and RnnSeq2Seq.

Build one with keyword arguments (the fields of its configuration), e.g.
``gaze.models.TransformerClassifier(vocab_size=8000, num_classes=2)``, or load a trained one with
``gaze.models.load_model(dir)``. ``model.config`` is the JSON written beside the weights.
"""
import json as _json

from ._C import _models

Model = _models.Model
build_model = _models.build_model
load_model = _models.load_model

_TYPES = {
    "TransformerClassifier": "transformer_classifier",
    "TransformerTagger": "transformer_tagger",
    "TransformerSeq2Seq": "transformer_seq2seq",
    "RnnSeq2Seq": "rnn_seq2seq",
    "SentenceEncoder": "sentence_encoder",
}


def _factory(name, model_type):
    def make(**config):
        return _models.build_model(_json.dumps({"model_type": model_type, **config}))
    make.__name__ = name
    make.__doc__ = f"Builds a {name} from its configuration fields (see its config)."
    return make


for _name, _type in _TYPES.items():
    globals()[_name] = _factory(_name, _type)

__all__ = ["Model", "build_model", "load_model"] + list(_TYPES)
