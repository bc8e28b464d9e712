"""gaze.metrics: the task metrics gaze reports, computed by the same C++ code as the command line.

Entities follow seqeval's default mode; BLEU and chrF follow sacreBLEU (13a tokenization).
"""
import json as _json

from ._C import _metrics

get_entities = _metrics.get_entities
is_entity_tagset = _metrics.is_entity_tagset
tokenize_13a = _metrics.tokenize_13a
corpus_bleu = _metrics.corpus_bleu
corpus_chrf = _metrics.corpus_chrf
error_rates = _metrics.error_rates


def tagging_report(gold, predicted, entities=True):
    """Per-type precision/recall/F1 and averages (entities), and token accuracy, as a dict."""
    return _json.loads(_metrics.tagging_report_json(gold, predicted, entities))


def tagging_report_text(gold, predicted, entities=True, digits=4):
    return _metrics.tagging_report_text(gold, predicted, entities, digits)


__all__ = ["get_entities", "is_entity_tagset", "tokenize_13a", "corpus_bleu", "corpus_chrf",
           "error_rates", "tagging_report", "tagging_report_text"]
