"""The run report: gaze train writes RUN/report.html (learning curves from metrics.jsonl, the test
set's confusion matrix and per-class scores, its most confused and slowest examples), `gaze report
RUN` rebuilds it, and the page works offline in a real browser."""
import json
import re

import numpy as np
import pytest

from cli_helpers import DATA, conll_sentences, run, sentiment_rows, write_config, write_conll, write_tsv, write_yaml
from test_explain import check_clean, open_in_chromium


@pytest.fixture(scope="module")
def classifier_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("report")
    rows = sentiment_rows()
    train, dev, test = (write_tsv(d / f"{n}.tsv", r) for n, r in
                        (("train", rows[:400]), ("dev", rows[400:460]), ("test", rows[460:560])))
    cfg = write_config(d / "c.yaml", train, dev, d / "run", data={"test": str(test)},
                       train={"epochs": 3, "eval_every": 10})
    text = cfg.read_text().replace("data:\n", "data:\n  label_names: {0: negative, 1: positive}\n")
    cfg.write_text(text)
    res = run("train", cfg, check=0)
    return d / "run", res


def test_training_writes_the_report_and_the_test_predictions(classifier_run):
    run_dir, res = classifier_run
    assert f"run report: {run_dir / 'report.html'}" in res.stderr
    preds = [json.loads(x) for x in (run_dir / "test_predictions.jsonl").read_text().splitlines()]
    test = json.loads((run_dir / "test_report.json").read_text())
    assert len(preds) == 100 and sum(p["gold"] == p["predicted"] for p in preds) / 100 == pytest.approx(test["accuracy"])
    assert sum("ms" in p for p in preds) == 50 and all(p["ms"] > 0 for p in preds if "ms" in p)
    assert all(p["confidence"] >= 0.5 and p["gold"] in ("negative", "positive") for p in preds)


def test_the_report_in_chromium(classifier_run, tmp_path):
    run_dir, _ = classifier_run
    r = open_in_chromium(run_dir / "report.html", tmp_path / "shot.png")
    check_clean(r)
    assert r["report_charts"] == ["Loss", "Validation metrics", "Learning rate", "Gradient norm (before clipping)",
                                  "Per class"]
    assert r["report_series"] == ["train loss", "dev loss", "dev accuracy", "dev macro_f1", "learning rate",
                                  "gradient norm"]
    assert r["report_bars"] == 6  # 2 classes x precision, recall, F1
    log = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    train_lines = [x for x in log if "train_loss" in x]
    validations = [x for x in log if "train_loss" not in x]
    # A point per training line on three curves (loss, lr, gradient norm), per validation on three.
    assert r["report_points"] == 3 * len(train_lines) + 3 * len(validations)
    wrong = sum(1 for x in (run_dir / "test_predictions.jsonl").read_text().splitlines()
                if json.loads(x)["gold"] != json.loads(x)["predicted"])
    assert r["report_confused_rows"] == min(10, wrong) and r["report_slowest_rows"] == 10
    best = [x for x in validations if x["best"]][-1]
    assert r["report_summary"]["best"] == f"{best['accuracy']:.4f} at step {best['step']}"
    assert r["report_summary"]["test accuracy"] == f"{json.loads((run_dir / 'test_report.json').read_text())['accuracy']:.4f}"


def test_the_report_shows_the_test_numbers(classifier_run):
    run_dir, _ = classifier_run
    page = (run_dir / "report.html").read_text()
    test = json.loads((run_dir / "test_report.json").read_text())
    # The counts of the confusion matrix as the test report has them.
    cells = re.search(r'<table class="counts">(.*?)</table>', page).group(1)
    counts = [int(x) for x in re.findall(r"<td>(\d+)</td>", cells)]
    assert counts == [x for row in test["confusion_matrix"] for x in row]
    # The bars' values are the per-class scores.
    bars = [float(x) for x in re.findall(r'class="bar"[^>]*><title>[^<]*: ([0-9.]+)</title>', page)]
    want = [test["per_class"][label][k] for label in ("negative", "positive") for k in ("precision", "recall", "f1-score")]
    assert bars == pytest.approx(want, abs=1e-4)
    # The most confused rows: the most confident errors, in that order.
    preds = [json.loads(x) for x in (run_dir / "test_predictions.jsonl").read_text().splitlines()]
    wrong = sorted((p for p in preds if p["gold"] != p["predicted"]), key=lambda p: -p["confidence"])[:10]
    table = re.search(r'<table id="confused">(.*?)</table>', page).group(1)
    shown = [float(x) for x in re.findall(r"<td>(0\.\d{4})</td><td>0\.\d{4}</td></tr>", table)]
    assert shown == pytest.approx([p["confidence"] for p in wrong], abs=1e-4)


def test_gaze_report_rebuilds_it_and_tag_and_translate_runs_have_theirs(tmp_path):
    sents = conll_sentences(DATA / "wnut17" / "train.conll")[:60]
    tr, te = write_conll(tmp_path / "t.conll", sents[:40]), write_conll(tmp_path / "te.conll", sents[40:])
    run("train", write_yaml(tmp_path / "t.yaml", {
        "task": "tag", "output": str(tmp_path / "tag"), "data": {"train": str(tr), "dev": str(tr), "test": str(te)},
        "tokenizer": {"kind": "word"}, "model": {"d_model": 16, "nhead": 2, "num_layers": 1, "dim_feedforward": 32},
        "train": {"epochs": 2, "batch_size": 20, "metric": "accuracy"}}), check=0)
    page = (tmp_path / "tag" / "report.html").read_text()
    assert "Per entity type (seqeval)" in page and "the sentences with the most wrong tags" in page
    types = json.loads((tmp_path / "tag" / "test_report.json").read_text())["per_type"]
    assert len(re.findall(r'class="bar"', page)) == 3 * len(types)
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("src\ttgt\n" + "".join(f"{' '.join(w)}\t{' '.join(w).lower()}\n" for w, _ in sents))
    run("train", write_yaml(tmp_path / "s.yaml", {
        "task": "translate", "output": str(tmp_path / "mt"),
        "data": {"train": str(pairs), "dev": str(pairs), "test": str(pairs), "source_column": "src",
                 "target_column": "tgt"},
        "tokenizer": {"kind": "word"},
        "model": {"d_model": 16, "nhead": 2, "num_encoder_layers": 1, "num_decoder_layers": 1, "dim_feedforward": 32},
        "decode": {"beam_size": 2, "max_length": 12}, "train": {"epochs": 1, "batch_size": 20, "metric": "bleu"}}),
        check=0)
    page = (tmp_path / "mt" / "report.html").read_text()
    assert "the lowest sentence chrF" in page and "dev bleu" in page
    # gaze report rebuilds a page (here elsewhere), and refuses a folder that is no run.
    out = run("report", tmp_path / "mt", "--out", tmp_path / "again.html", check=0)
    assert out.stdout.strip() == str(tmp_path / "again.html") and "Learning curves" in (tmp_path / "again.html").read_text()
    res = run("report", tmp_path, check=2)
    assert "not a run folder (no config.yaml)" in res.stderr
