"""``gaze.train``: the trainer of ``gaze train`` from Python, on the same run configurations."""
import json as _json
import os as _os

from ._C import _tasks


def _value(v):
    """An override's value as text the configuration reader takes (JSON is valid YAML)."""
    return _json.dumps(v.tolist() if hasattr(v, "tolist") else v)


def train(config=None, *, output=None, overwrite=False, resume=None, set=(), quiet=False, **sections):
    """Trains a model as ``gaze train`` does and returns what the run did.

    config: a run configuration file (YAML), or a dict with its sections
        (``{"task": "classify", "data": {...}, "model": {...}, "train": {...}}``); None with ``resume``.
    output: the run folder (``--set output=...``); overwrite: start afresh where an earlier run was.
    resume: a run folder to continue (its recorded configuration; ``train`` settings may change).
    set: ``"section.key=value"`` overrides, as ``--set``; sections: overrides by section, e.g.
        ``train={"epochs": 3, "lr": 5e-4}`` or ``seed=...`` for a top-level key.
    quiet: no progress output.

    Returns a dict: ``output``, ``steps``, ``best_metric`` (of ``metric``), ``best_step``,
    ``interrupted``, ``early_stopped``, ``seconds`` and ``test_report`` (the test set's report as
    ``gaze eval --report json`` gives it, or None). ``gaze.load(result["output"])`` loads the model.
    Errors are ``gaze.DataError`` with the file, line and key, as on the command line.
    """
    overrides = [set] if isinstance(set, str) else list(set)  # one override, or several
    for name, value in sections.items():
        if isinstance(value, dict):
            overrides += [f"{name}.{k}={_value(v)}" for k, v in value.items()]
        else:
            overrides.append(f"{name}={_value(value)}")
    if output is not None:
        overrides.append(f"output={_value(_os.fspath(output))}")
    path, text = "", ""
    if isinstance(config, dict):
        text = _json.dumps(config)
    elif config is not None:
        path = _os.fspath(config)
    result = _tasks.train_run(path, text, overrides, overwrite, _os.fspath(resume) if resume else "", quiet)
    return _json.loads(result)
