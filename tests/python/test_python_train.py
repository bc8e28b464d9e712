"""Python on par with the command line: gaze.train runs the trainer of `gaze train` (a YAML file or a
dict, overrides by section), pipelines take batch_size and expose their tokenizers."""
import json

import pytest

import gaze
from cli_helpers import run, sentiment_rows, write_config, write_tsv


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("pytrain")
    rows = sentiment_rows()
    return d, write_tsv(d / "train.tsv", rows[:200]), write_tsv(d / "dev.tsv", rows[200:240]), \
        write_tsv(d / "test.tsv", rows[240:280])


def test_train_from_a_file_equals_the_command_line(data):
    d, train, dev, test = data
    cfg = write_config(d / "c.yaml", train, dev, d / "unused", data={"test": str(test)}, train={"epochs": 2})
    r = gaze.train(cfg, output=d / "py", train={"seed": 3}, quiet=True)
    run("train", cfg, "--output", d / "cli", "--seed", "3", check=0)
    assert r["output"] == str(d / "py") and r["steps"] == 26 and not r["interrupted"]
    assert r["metric"] == "accuracy" and 0 <= r["best_metric"] <= 1 and r["best_step"] > 0
    # The same run: the same validations and test report as `gaze train`.
    cli_report = json.loads((d / "cli" / "test_report.json").read_text())
    assert r["test_report"] == cli_report
    lines = lambda p: [{k: v for k, v in json.loads(x).items() if k not in ("seconds", "elapsed", "tokens_per_second")}
                       for x in (p / "metrics.jsonl").read_text().splitlines()]
    assert lines(d / "py") == lines(d / "cli")
    # The folder is what the CLI and gaze.load take.
    assert gaze.load(r["output"])("Great!")["label"] in ("0", "1")


def test_train_from_a_dict_with_overrides_and_errors(data, tmp_path):
    _, train, dev, _ = data
    config = {"task": "classify", "output": str(tmp_path / "run"),
              "data": {"train": str(train), "dev": str(dev), "label_names": {"0": "negative", "1": "positive"}},
              "tokenizer": {"kind": "word"},
              "model": {"d_model": 16, "nhead": 2, "num_layers": 1, "dim_feedforward": 32},
              "train": {"epochs": 1}}
    r = gaze.train(config, set="train.max_steps=5", quiet=True)  # one override as a string too
    assert r["steps"] == 5 and r["test_report"] is None
    assert gaze.load(tmp_path / "run")("Great!")["label"] in ("negative", "positive")
    with pytest.raises(gaze.DataError, match="not empty"):
        gaze.train(config, quiet=True)
    r = gaze.train(config, overwrite=True, train={"max_steps": 3}, quiet=True)
    assert r["steps"] == 3
    r = gaze.train(resume=tmp_path / "run", train={"max_steps": 6}, quiet=True)
    assert r["steps"] == 6
    with pytest.raises(gaze.DataError, match=r"<dict>:1: unknown key 'trian' in data"):
        gaze.train({"task": "classify", "data": {"trian": "x"}})
    with pytest.raises(gaze.DataError, match="unknown key 'epoch' in train"):
        gaze.train(config, overwrite=True, train={"epoch": 3})


def test_pipeline_batch_size_and_tokenizers(data, tmp_path):
    d, train, dev, _ = data
    r = gaze.train(write_config(tmp_path / "c.yaml", train, dev, tmp_path / "run", train={"epochs": 1}), quiet=True)
    pipe = gaze.load(r["output"])
    texts = [row[2] for row in sentiment_rows()[300:317]]
    whole = pipe(texts)
    assert pipe(texts, batch_size=4) == whole and pipe(texts, batch_size=1) == whole
    with pytest.raises(gaze.DataError, match="batch_size"):
        pipe(texts, batch_size=0)
    tok = pipe.tokenizer
    ids = tok.encode("a great phone")
    assert tok.decode(ids) == "a great phone" and [tok.id_to_piece(i) for i in ids] == tok.tokenize("a great phone")
    assert pipe.target_tokenizer is None


def test_save_pipeline_makes_a_folder_the_cli_accepts(data, tmp_path):
    d, train, dev, _ = data
    r = gaze.train(write_config(tmp_path / "c.yaml", train, dev, tmp_path / "run", train={"epochs": 1}), quiet=True)
    trained = gaze.load(r["output"])
    # A model built in Python (here: the trained one's weights, loaded as a plain model) and a
    # tokenizer, saved with names for its classes.
    model = gaze.models.load_model(trained.path)
    folder = gaze.save_pipeline(model, trained.tokenizer, ["negative", "positive"], tmp_path / "mine")
    texts = "Great phone!\nAwful.\n"
    mine = [json.loads(x) for x in run("predict", "--model", folder, stdin=texts, check=0).stdout.splitlines()]
    theirs = [json.loads(x) for x in run("predict", "--model", r["output"], stdin=texts, check=0).stdout.splitlines()]
    names = {"0": "negative", "1": "positive"}
    assert [m["label"] for m in mine] == [names[t["label"]] for t in theirs]
    assert [m["score"] for m in mine] == pytest.approx([t["score"] for t in theirs], abs=1e-6)
    assert gaze.load(folder)("Great phone!")["label"] in names.values()
    with pytest.raises(gaze.DataError, match="already exists"):
        gaze.save_pipeline(model, trained.tokenizer, ["negative", "positive"], folder)
    gaze.save_pipeline(model, trained.tokenizer, ["bad", "good"], folder, overwrite=True)
    assert gaze.load(folder)("Great phone!")["label"] in ("bad", "good")
    with pytest.raises(gaze.DataError, match="labels is a list of names"):
        gaze.save_pipeline(model, trained.tokenizer, "ab", tmp_path / "s")
    with pytest.raises(gaze.DataError, match=r"max_length must be in \[1, "):
        gaze.save_pipeline(model, trained.tokenizer, ["a", "b"], tmp_path / "z", max_length=0)
    with pytest.raises(gaze.DataError, match="the model has 2 outputs but 3 labels were given"):
        gaze.save_pipeline(model, trained.tokenizer, ["a", "b", "c"], tmp_path / "x")
    small = gaze.models.TransformerClassifier(vocab_size=5, num_classes=2, d_model=8, nhead=2, num_layers=1,
                                              dim_feedforward=16)
    with pytest.raises(gaze.DataError, match="but the model's embedding only 5"):
        gaze.save_pipeline(small, trained.tokenizer, ["a", "b"], tmp_path / "y")
