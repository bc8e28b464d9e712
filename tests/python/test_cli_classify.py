"""End-to-end runs of `gaze train / eval / predict` on real sentences (the UCI sentiment data): the
pipeline learns (loss falls, 64 sentences are memorised), its outputs have the documented shapes,
its reports equal scikit-learn's on the same predictions, and Ctrl-C then --resume continues the run
exactly."""
import json
import re
import signal
import subprocess

import numpy as np
import pytest
from sklearn.metrics import classification_report

from cli_helpers import GAZE, run, sentiment_rows, training_log, validations, write_config, write_tsv


def logged_losses(stderr):
    return [float(x) for x in re.findall(r"step \d+/\d+ loss ([0-9.]+)", stderr)]


def test_overfits_64_sentences_and_the_loss_falls(tmp_path):
    rows = sentiment_rows()[:64]
    data = write_tsv(tmp_path / "small.tsv", rows)
    cfg = write_config(tmp_path / "run.yaml", data, data, tmp_path / "run",
                       train={"epochs": 40, "lr": 0.003, "patience": 0})
    res = run("train", cfg, check=0)
    losses = logged_losses(res.stderr)
    assert len(losses) >= 5 and losses[-1] < 0.5 * losses[0], losses
    ev = run("eval", "--model", tmp_path / "run", "--data", data, "--report", "json", check=0)
    assert json.loads(ev.stdout)["accuracy"] >= 0.95
    for name in ("config.yaml", "metrics.jsonl", "best/model.safetensors", "best/tokenizer.json", "best/labels.json",
                 "last/training.safetensors"):
        assert (tmp_path / "run" / name).exists(), name
    lines = validations(tmp_path / "run")
    assert len(lines) == 40 and {"step", "accuracy", "macro_f1", "loss", "elapsed"} <= set(lines[0])
    # Training lines between them, every log_every steps (5 here): means over the steps since the last.
    log = training_log(tmp_path / "run")
    assert log and {"step", "epoch", "train_loss", "lr", "grad_norm", "tokens_per_second", "elapsed"} == set(log[0])
    assert [x["step"] for x in log] == list(range(5, log[-1]["step"] + 1, 5))
    assert log[-1]["train_loss"] < log[0]["train_loss"] and all(x["grad_norm"] > 0 for x in log)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A model trained briefly on 600 sentences with the fixed split and a SentencePiece vocabulary."""
    tmp = tmp_path_factory.mktemp("sentiment")
    data = write_tsv(tmp / "data.tsv", sentiment_rows()[:600])
    cfg = write_config(tmp / "run.yaml", data, "", tmp / "run", data={"split": "modulo10", "dev": ""},
                       tokenizer={"kind": "sentencepiece", "vocab_size": 400},
                       train={"epochs": 4})
    res = run("train", cfg, check=0)
    return tmp, data, res


def test_train_prints_the_test_report(trained):
    tmp, _, res = trained
    assert "test set (60 examples)" in res.stdout and "macro avg" in res.stdout
    report = json.loads((tmp / "run" / "test_report.json").read_text())
    assert report["support"] == 60
    assert (tmp / "run" / "best" / "tokenizer.model").exists()
    # The resolved configuration is written beside the checkpoints, under a line naming the gaze
    # that wrote it, and reads back the same.
    dumped = run("train", tmp / "run" / "config.yaml", "--dump-config", check=0).stdout
    recorded = (tmp / "run" / "config.yaml").read_text()
    assert recorded == f"# {run('--version', check=0).stdout.strip()}\n{dumped}"


def test_predict_output_shapes(trained):
    tmp, _, _ = trained
    texts = "Great phone, works perfectly.\nTerrible food and rude staff.\n"
    one = [json.loads(line) for line in run("predict", "--model", tmp / "run", stdin=texts, check=0).stdout.splitlines()]
    assert len(one) == 2
    for p in one:
        assert set(p) == {"label", "score"} and p["label"] in ("0", "1") and 0.5 <= p["score"] <= 1
    top = [json.loads(line) for line in
           run("predict", "--model", tmp / "run" / "best", "--top-k", 2, stdin=texts, check=0).stdout.splitlines()]
    for ranked, best in zip(top, one):
        assert [r["label"] for r in ranked][0] == best["label"]
        assert abs(sum(r["score"] for r in ranked) - 1) < 1e-5 and ranked[0]["score"] >= ranked[1]["score"]
    # A file input (TSV with a text column) gives one line per row.
    listed = run("predict", "--model", tmp / "run", "--input", tmp / "data.tsv", check=0).stdout.splitlines()
    assert len(listed) == 600


def test_eval_report_equals_sklearn(trained):
    tmp, data, _ = trained
    rows = sentiment_rows()[:600]
    gold = [r[1] for r in rows]
    texts = "\n".join(r[2] for r in rows) + "\n"
    predicted = [json.loads(line)["label"] for line in run("predict", "--model", tmp / "run", stdin=texts,
                                                           check=0).stdout.splitlines()]
    ours = json.loads(run("eval", "--model", tmp / "run", "--data", data, "--report", "json", check=0).stdout)
    ref = classification_report(gold, predicted, output_dict=True, zero_division=0)
    assert abs(ours["accuracy"] - ref["accuracy"]) < 1e-12
    for label in ("0", "1"):
        for k in ("precision", "recall", "f1-score", "support"):
            assert abs(ours["per_class"][label][k] - ref[label][k]) < 1e-12, (label, k)
    for avg in ("macro avg", "weighted avg"):
        for k in ("precision", "recall", "f1-score", "support"):
            assert abs(ours[avg][k] - ref[avg][k]) < 1e-12, (avg, k)
    cm = np.zeros((2, 2), int)
    for g, p in zip(gold, predicted):
        cm[int(g), int(p)] += 1
    assert ours["confusion_matrix"] == cm.tolist()
    # The text report is laid out as sklearn's (digits=4), followed by the confusion matrix.
    text = run("eval", "--model", tmp / "run", "--data", data, check=0).stdout
    assert text.startswith(classification_report(gold, predicted, digits=4, zero_division=0))


@pytest.mark.parametrize("ema", [0.0, 0.9])
def test_ctrl_c_saves_and_resume_continues_exactly(tmp_path, ema):
    """Also with a weight average (train.ema_decay), whose state the checkpoint must carry."""
    data = write_tsv(tmp_path / "data.tsv", sentiment_rows()[:400])
    common = dict(data={"split": "modulo10", "dev": ""},
                  model={"d_model": 32, "nhead": 2, "num_layers": 1, "dim_feedforward": 64, "dropout": 0.2},
                  train={"epochs": 60, "eval_every": 10, "batch_size": 8, "ema_decay": ema})
    straight = write_config(tmp_path / "a.yaml", data, "", tmp_path / "a", **common)
    run("train", straight, check=0)
    stopped = write_config(tmp_path / "b.yaml", data, "", tmp_path / "b", **common)
    proc = subprocess.Popen([str(GAZE), "train", str(stopped)], stderr=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, env={"GAZE_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    for line in proc.stderr:  # interrupt once training is under way
        if "step 30 " in line and "validation" in line:
            proc.send_signal(signal.SIGINT)
            break
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    assert "resumable checkpoint" in err and "--resume" in err
    res = run("train", stopped, "--resume", tmp_path / "b", check=0)
    assert "resuming from" in res.stderr

    def by_step(run_dir):
        out = {}
        for v in validations(run_dir):
            v.pop("seconds"), v.pop("elapsed")
            out[v["step"]] = v
        return out

    a, b = by_step(tmp_path / "a"), by_step(tmp_path / "b")
    assert max(b) == max(a) and len(a) > 30
    for step, v in b.items():  # every validation, before and after the interruption, is identical
        assert v == a[step], step
    # With an average, `last` holds it as the model and the training weights beside the optimizer's state.
    import gaze
    model, _ = gaze.io.load_safetensors(str(tmp_path / "b" / "last" / "model.safetensors"))
    training, _ = gaze.io.load_safetensors(str(tmp_path / "b" / "last" / "training.safetensors"))
    kept = {k[len("average."):]: v for k, v in training.items() if k.startswith("average.")}
    assert len(kept) == (len(model) if ema else 0)
    if ema:
        weight = model["head.weight"].numpy()
        assert any(v.numpy().shape == weight.shape and not np.array_equal(v.numpy(), weight) for v in kept.values())
    # What was validated is what was saved: last/'s model gives the last validation's loss on the dev rows.
    rows = sentiment_rows()[:400]
    dev = [r for i, r in enumerate(rows) if i % 10 == 1]
    scored = gaze.load(str(tmp_path / "b" / "last"))([r[2] for r in dev], top_k=2)
    nll = -np.mean([np.log(next(c["score"] for c in s if c["label"] == r[1])) for s, r in zip(scored, dev)])
    assert abs(nll - b[max(b)]["loss"]) < 1e-5, (nll, b[max(b)]["loss"])


def test_init_from_copies_matching_weights_and_keeps_a_new_head_fresh(tmp_path):
    """train.init_from: a run over other labels starts from a trained model's encoder; with lr 0
    its saved weights are exactly the source's, except the head (another shape), which is fresh."""
    import gaze
    rows = sentiment_rows(120)
    a_data = write_tsv(tmp_path / "a.tsv", rows)
    cfg_a = write_config(tmp_path / "a.yaml", a_data, a_data, tmp_path / "a", train={"epochs": 2})
    run("train", cfg_a, check=0)
    three = [(s, "neutral" if i % 3 == 0 else label, text) for i, (s, label, text) in enumerate(rows)]
    b_data = write_tsv(tmp_path / "b.tsv", three)
    cfg_b = write_config(tmp_path / "b.yaml", b_data, b_data, tmp_path / "b",
                         train={"epochs": 1, "max_steps": 1, "lr": 0.0, "init_from": str(tmp_path / "a")})
    res = run("train", cfg_b, check=0)
    assert re.search(r"init_from .*/a/best: \d+ tensors \(\d+ values\) copied; kept fresh: "
                     r"head.weight \(\[2, 32\] there, \[3, 32\] here\), head.bias", res.stderr), res.stderr
    a = gaze.io.load_safetensors(str(tmp_path / "a" / "best" / "model.safetensors"))[0]
    b = gaze.io.load_safetensors(str(tmp_path / "b" / "best" / "model.safetensors"))[0]
    assert a.keys() == b.keys()
    for name in a:
        if name.startswith("head."):
            assert a[name].shape != b[name].shape
        else:
            np.testing.assert_array_equal(a[name].numpy(), b[name].numpy(), err_msg=name)
    # A model with nothing in common is refused.
    cfg_c = write_config(tmp_path / "c.yaml", b_data, b_data, tmp_path / "c",
                         model={"d_model": 16, "nhead": 2, "num_layers": 1, "dim_feedforward": 8},
                         train={"epochs": 1, "init_from": str(tmp_path / "a")})
    res = run("train", cfg_c)
    assert res.returncode == 2 and "no weight of that model has a name and shape" in res.stderr


def test_a_user_file_where_a_checkpoint_goes_is_never_replaced(tmp_path):
    rows = sentiment_rows(120)
    train, dev = write_tsv(tmp_path / "train.tsv", rows[:100]), write_tsv(tmp_path / "dev.tsv", rows[100:])
    out = tmp_path / "run"
    out.mkdir()
    (out / "last").write_text("my notes")  # a file named like the run's checkpoint folder
    cfg = write_config(tmp_path / "run.yaml", train, dev, out, train={"epochs": 1})
    res = run("train", cfg, check=2)
    assert "the output folder is not empty" in res.stderr and "--overwrite" in res.stderr
    res = run("train", cfg, "--overwrite", check=2)
    assert "last: exists and is not a gaze checkpoint; refusing to replace it" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert (out / "last").read_text() == "my notes"


def test_the_weight_average_is_what_is_saved(tmp_path):
    """After one step of train.ema_decay the average is 0.1 w0 + 0.9 w1 (the decay's warm-up gives min(decay,
    1/10) at the first update): last/ holds it as its model, the training weights w1 beside it."""
    import gaze
    data = write_tsv(tmp_path / "data.tsv", sentiment_rows()[:200])

    def train(name, lr):
        cfg = write_config(tmp_path / f"{name}.yaml", data, data, tmp_path / name,
                           train={"epochs": 1, "max_steps": 1, "lr": lr, "warmup_steps": 0, "ema_decay": 0.99})
        run("train", cfg, check=0)
        model, _ = gaze.io.load_safetensors(str(tmp_path / name / "last" / "model.safetensors"))
        training, _ = gaze.io.load_safetensors(str(tmp_path / name / "last" / "training.safetensors"))
        return ({k: v.numpy() for k, v in model.items()},
                [v.numpy() for k, v in training.items() if k.startswith("average.")])

    w0, _ = train("still", 0.0)  # the same initial weights, never moved
    avg, w1s = train("moved", 0.01)
    moved = 0
    for k, a in avg.items():
        candidates = [w1 for w1 in w1s if w1.shape == a.shape and np.allclose(a, 0.1 * w0[k] + 0.9 * w1, atol=1e-6)]
        assert candidates, k
        moved += any(not np.allclose(a, w1, atol=1e-6) for w1 in candidates)
    assert moved >= len(avg) // 2
