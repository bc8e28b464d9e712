"""`gaze train/eval/predict` for sequence tagging, end to end on real sentences: WNUT-17 named
entities (BIO) and Brown part-of-speech tags (no entities). A model overfits 64 sentences, the
report equals an independent computation on the model's own predictions, and predictions carry
Hugging Face-shaped entity groups."""
import gzip
import json

import pytest

from cli_helpers import DATA, conll_sentences, run, validations, write_conll, write_yaml
from test_task_metrics import ref_report

WNUT = DATA / "wnut17"


def tag_config(path, train_file, dev_file, output, **sections):
    base = {
        "task": "tag",
        "output": str(output),
        "data": {"train": str(train_file), "dev": str(dev_file), "max_length": 96},
        "tokenizer": {"kind": "sentencepiece", "vocab_size": 300},
        "model": {"d_model": 64, "nhead": 4, "num_layers": 2, "dim_feedforward": 128, "dropout": 0.0},
        "train": {"epochs": 60, "batch_size": 16, "lr": 0.003, "warmup_steps": 10, "log_every": 20,
                  "weight_decay": 0.0},
    }
    return write_yaml(path, base, **sections)


@pytest.fixture(scope="module")
def overfit(tmp_path_factory):
    """A tagger trained on 64 WNUT-17 sentences that contain entities (validated on the same)."""
    d = tmp_path_factory.mktemp("tag")
    sents = [s for s in conll_sentences(WNUT / "train.conll") if any(t != "O" for t in s[1])][:64]
    train = write_conll(d / "train.conll", sents)
    cfg = tag_config(d / "run.yaml", train, train, d / "run")
    res = run("train", cfg, threads=2, check=0)
    return d, sents, res


def test_overfits_64_sentences(overfit):
    d, sents, res = overfit
    r = json.loads(run("eval", "--model", d / "run", "--data", d / "train.conll", "--report", "json",
                       check=0).stdout)
    assert r["token_accuracy"] >= 0.95, res.stderr[-2000:]
    assert r["micro avg"]["f1-score"] >= 0.8
    log = validations(d / "run")
    assert log[-1]["loss"] < log[0]["loss"]


def test_report_equals_reference_on_the_models_predictions(overfit, tmp_path):
    d, sents, _ = overfit
    known = {t for _, tags in sents for t in tags}
    dev = [s for s in conll_sentences(WNUT / "dev.conll") if set(s[1]) <= known][:40]
    path = write_conll(tmp_path / "dev.conll", dev)
    r = json.loads(run("eval", "--model", d / "run", "--data", path, "--report", "json", check=0).stdout)
    # The same sentences through predict (words joined by spaces), scored here independently.
    out = run("predict", "--model", d / "run", stdin="\n".join(" ".join(w) for w, _ in dev) + "\n", check=0)
    preds = [json.loads(line) for line in out.stdout.splitlines()]
    assert [p["words"] for p in preds] == [w for w, _ in dev]
    ref = ref_report([t for _, t in dev], [p["tags"] for p in preds])
    assert r["micro avg"]["f1-score"] == pytest.approx(ref["micro"][2])
    assert r["micro avg"]["support"] == ref["micro"][3]
    for typ, (p, rec, f, n) in ref.items():
        if typ != "micro":
            assert r["per_type"][typ]["precision"] == pytest.approx(p)
            assert r["per_type"][typ]["recall"] == pytest.approx(rec)
    acc = sum(a == b for (_, t), p in zip(dev, preds) for a, b in zip(t, p["tags"])) / sum(len(t) for _, t in dev)
    assert r["token_accuracy"] == pytest.approx(acc)
    text = run("eval", "--model", d / "run", "--data", path, check=0).stdout
    assert "micro avg" in text and "token accuracy" in text


@pytest.mark.parametrize("aggregation", ["simple", "first", "average", "max"])
def test_predict_entities_in_hugging_face_shape(overfit, aggregation):
    d, sents, _ = overfit
    lines = ["  ".join(w) for w, _ in sents[:8]] + ["Ünïcödé   words\tand tabs"]
    out = run("predict", "--model", d / "run", "--aggregation", aggregation,
              stdin="\n".join(lines) + "\n", check=0)
    preds = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(preds) == len(lines)
    found = 0
    for line, p in zip(lines, preds):
        assert len(p["words"]) == len(p["tags"]) == len(p["scores"]) == len(line.split())
        for e in p["entities"]:
            assert set(e) == {"entity_group", "score", "word", "start", "end"}
            assert line[e["start"]:e["end"]] == e["word"]  # code-point offsets, as Python counts
            assert 0 < e["score"] <= 1 and "-" not in e["entity_group"][:2]
            found += 1
    if aggregation in ("simple", "first"):
        # The first piece decides, as in training: the overfit model's tags on its training
        # sentences (with their entities).
        assert found > 0
        pairs = [(a, b) for p, (_, t) in zip(preds, sents[:8]) for a, b in zip(p["tags"], t)]
        assert sum(a == b for a, b in pairs) >= 0.95 * len(pairs)


def test_pos_tagging_reports_token_accuracy(tmp_path):
    with gzip.open(DATA / "brown/brown_tagged.conll.gz", "rt", encoding="utf-8") as f:
        lines = [next(f) for _ in range(3000)]
    (tmp_path / "brown.conll").write_text("".join(lines), encoding="utf-8")  # with "# doc" comments
    sents = conll_sentences(tmp_path / "brown.conll")
    train = write_conll(tmp_path / "train.conll", sents[:64])
    cfg = tag_config(tmp_path / "run.yaml", tmp_path / "brown.conll", train, tmp_path / "run",
                     train={"epochs": 3, "metric": "accuracy"}, tokenizer={"kind": "word"})
    res = run("train", cfg, check=0)
    assert "scheme none" in res.stderr
    r = json.loads(run("eval", "--model", tmp_path / "run", "--data", train, "--report", "json", check=0).stdout)
    assert set(r) == {"token_accuracy", "tokens", "sentences"} and r["sentences"] == 64
    # entity F1 cannot pick the checkpoint of a tagset without entities
    bad = run("train", cfg, "--set", "train.metric=f1", "--overwrite", check=2)
    assert "no entities" in bad.stderr and "train.metric: accuracy" in bad.stderr


def test_tagging_bad_input(overfit, tmp_path):
    d, sents, _ = overfit
    ragged = tmp_path / "ragged.conll"
    ragged.write_text("EU\tB-ORG\nrejects\tO\textra\n\n", encoding="utf-8")
    r = run("eval", "--model", d / "run", "--data", ragged, check=2)
    assert f"{ragged}:2: 3 columns, expected 2 (as on line 1)" in r.stderr
    unknown = tmp_path / "unknown.conll"
    unknown.write_text("Paris\tB-location\nrocks\tB-CITY\n", encoding="utf-8")
    r = run("eval", "--model", d / "run", "--data", unknown, check=2)
    assert f"{unknown}:2: tag 'B-CITY' is not one the model was trained on" in r.stderr
    scored = run("eval", "--model", d / "run", "--data", unknown, "--unknown-tags", "wrong", "--report", "json",
                 check=0)
    assert json.loads(scored.stdout)["token_accuracy"] <= 0.5  # B-CITY cannot be predicted
    assert "1 tokens have tags the model was not trained on" in scored.stderr
    empty_tag = tmp_path / "empty_tag.conll"
    empty_tag.write_text("Paris\t \n", encoding="utf-8")
    assert ":1: the tag (column 1) is empty" in run("eval", "--model", d / "run", "--data", empty_tag, check=2).stderr
    only_comments = tmp_path / "comments.conll"
    only_comments.write_text("# a comment\n\n", encoding="utf-8")
    assert "no sentences" in run("eval", "--model", d / "run", "--data", only_comments, check=2).stderr
    bad_utf8 = tmp_path / "bad.conll"
    bad_utf8.write_bytes(b"ok\tO\n\xff\tO\n")
    assert ":2: invalid UTF-8" in run("eval", "--model", d / "run", "--data", bad_utf8, check=2).stderr
    pos = tmp_path / "pos.conll"
    pos.write_text("The\tat\ndog\tnn\n", encoding="utf-8")
    cfg = tag_config(tmp_path / "run.yaml", pos, pos, tmp_path / "run", data={"scheme": "iob2"})
    assert "data.scheme is iob2 but the tags are not" in run("train", cfg, check=2).stderr
