"""Bad input to the `gaze` command line: every case gives one clear line naming the file and line (or
the setting), exit code 2, and never a crash; over-long texts are cut with a counted warning."""
import json
import pathlib
import re

import pytest

from cli_helpers import ROOT, run, sentiment_rows, write_config, write_tsv


def fails_with(res, *patterns):
    """Exit code 2 and one error line (after any progress notes) holding every pattern."""
    assert res.returncode == 2, f"exit {res.returncode}\n{res.stderr}"
    errors = [line for line in res.stderr.splitlines() if line.startswith("gaze: ")]
    assert len(errors) == 1, f"expected one error line, got:\n{res.stderr}"
    for p in patterns:
        assert p in errors[0], f"{p!r} not in {errors[0]!r}"


@pytest.fixture()
def good(tmp_path):
    data = write_tsv(tmp_path / "good.tsv", sentiment_rows()[:40])
    return tmp_path, data


def train_on(tmp_path, train_file, dev_file=None, **sections):
    cfg = write_config(tmp_path / "run.yaml", train_file, dev_file or train_file, tmp_path / "run", **sections)
    return run("train", cfg)


@pytest.mark.parametrize("content,patterns", [
    ("source\tlabel\ttext\namazon\t1\tGood.\namazon\t0\n", ["bad.tsv:3:", "expected 3 tab-separated fields (as in the header), found 2"]),
    ("", ["bad.tsv: the file is empty"]),
    ("\n\n  \n", ["bad.tsv: the file is empty"]),
    ("source\tlabel\ttext\n", ["bad.tsv: no examples after the header row"]),
    ("source\tlabel\ttext\namazon\t1\tGood.\nyelp\t0\t   \n", ["bad.tsv:3:", "text ('text' column) is empty"]),
    ("source\tlabel\ttext\namazon\t\tGood.\n", ["bad.tsv:2:", "label ('label' column) is empty"]),
    ("src\tlab\tsentence\namazon\t1\tGood.\n", ["bad.tsv:1:", "no column 'text'", "src, lab, sentence"]),
])
def test_malformed_training_files(tmp_path, content, patterns):
    bad = tmp_path / "bad.tsv"
    bad.write_text(content)
    fails_with(train_on(tmp_path, bad), *patterns)


def test_invalid_utf8(tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_bytes(b"source\tlabel\ttext\namazon\t1\tGood.\nyelp\t0\tcaf\xe9 au lait\n")
    fails_with(train_on(tmp_path, bad), "bad.tsv:3: invalid UTF-8")


def test_jsonl_errors(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "Good.", "label": 1}\n{"text": "Bad." "label": 0}\n')
    fails_with(train_on(tmp_path, bad), "bad.jsonl:2: not valid JSON")
    bad.write_text('{"text": "Good.", "label": 1}\n[1, 2]\n')
    fails_with(train_on(tmp_path, bad), "bad.jsonl:2: expected a JSON object")
    bad.write_text('{"text": "Good.", "label": 1}\n{"sentence": "Bad.", "label": 0}\n')
    fails_with(train_on(tmp_path, bad), "bad.jsonl:2: no field 'text'")


def test_one_label_only(tmp_path):
    data = write_tsv(tmp_path / "one.tsv", [r for r in sentiment_rows()[:40] if r[1] == "1"])
    fails_with(train_on(tmp_path, data), "only one label")


def test_unknown_label_in_dev_and_at_eval(good):
    tmp_path, data = good
    dev = write_tsv(tmp_path / "dev.tsv", [("amazon", "1", "Good."), ("amazon", "neutral", "Fine I guess.")])
    fails_with(train_on(tmp_path, data, dev), "dev.tsv:3: label 'neutral' is not one the model was trained on (0, 1)")
    run("train", write_config(tmp_path / "ok.yaml", data, data, tmp_path / "ok", train={"epochs": 1}), check=0)
    fails_with(run("eval", "--model", tmp_path / "ok", "--data", dev), "dev.tsv:3: label 'neutral'")


def test_over_long_texts_are_cut_with_a_counted_warning(good):
    tmp_path, data = good
    res = train_on(tmp_path, data, data={"max_length": 5}, train={"epochs": 1})
    assert res.returncode == 0, res.stderr
    # The word tokenizer's units: runs of letters and digits, and every other visible character alone.
    n = sum(len(re.findall(r"[^\W_]+|[^\w\s]|_", r[2])) > 5 for r in sentiment_rows()[:40])
    assert f"warning: {2 * n} texts longer than data.max_length (5 tokens) were cut" in res.stderr


@pytest.mark.parametrize("yaml,patterns", [
    ("task: classify\ndata:\n  train: x.tsv\n  dev: x.tsv\ntrain:\n  lr_rate: 0.1\n",
     ["run.yaml:6: unknown key 'lr_rate' in train; valid keys: seed, epochs", "lr, weight_decay"]),
    ("task: classify\ndata:\n  train: x.tsv\n  dev: x.tsv\ntrain:\n  epochs: many\n",
     ["run.yaml:6: 'epochs' must be an integer, got \"many\""]),
    ("task: classify\ndata:\n  train: x.tsv\n  dev: x.tsv\nmodel:\n  nhead: 2.5\n", ["run.yaml:6: 'nhead' must be an integer"]),
    ("task: classify\ndata:\n  train: x.tsv\n  dev: x.tsv\nmodel:\n  pooling: median\n",
     ["run.yaml:6: 'pooling' must be one of mean, cls, max, attention, got 'median'"]),
    ("task: classify\ndata:\n  train: x.tsv\n  dev: x.tsv\nmodel:\n  vocab_size: 10\n",
     ["run.yaml:6: unknown key 'vocab_size' in model"]),
    ("task: classify\ndata:\n  train: x.tsv\n  dev: x.tsv\ntrain:\n  epochs: 0\n", ["run.yaml:6: 'epochs' must be in [1,"]),
    ("task: classify\ndata:\n  dev: x.tsv\n", ["run.yaml: data.train is required"]),
    ("task: classify\ndata:\n  train: x.tsv\n", ["data.dev is required", "modulo10"]),
    ("task: summarize\n", ["task 'summarize' is not available"]),
    ("data:\n  train: x.tsv\n  dev: x.tsv\n  max_length: 64\nmodel:\n  positions: learned\n  max_positions: 32\n",
     ["data.max_length (64) exceeds model.max_positions (32)"]),
    ("task: classify\ndata: [1, 2\n", ["run.yaml:", "not valid YAML"]),
    ("task: classify\ntask: classify\ndata:\n  train: x.tsv\n  dev: x.tsv\n", ["run.yaml:2: 'task' appears twice"]),
    ("task: classify\ndata:\n  train: [a, b]\n  dev: x.tsv\n", ["run.yaml:3: 'data.train' must be a single value"]),
])
def test_config_errors(tmp_path, yaml, patterns):
    cfg = tmp_path / "run.yaml"
    cfg.write_text(yaml)
    fails_with(run("train", cfg, "--dump-config"), *patterns)


def test_override_errors_and_missing_files(good):
    tmp_path, data = good
    cfg = write_config(tmp_path / "run.yaml", data, data, tmp_path / "run")
    fails_with(run("train", cfg, "--set", "train.lr"), "--set train.lr: expected key=value")
    fails_with(run("train", cfg, "--set", "optim.lr=1"), "unknown section 'optim'")
    fails_with(run("train", cfg, "--set", "train.lr=fast"), "'lr' must be a number")
    assert "lr: 0.5" in run("train", cfg, "--set", "train.lr=0.5", "--dump-config", check=0).stdout
    fails_with(train_on(tmp_path, tmp_path / "missing.tsv"), "missing.tsv: cannot open")
    fails_with(run("train", tmp_path / "nope.yaml"), "nope.yaml")


def test_model_folder_and_input_errors(good):
    tmp_path, data = good
    fails_with(run("eval", "--model", tmp_path, "--data", data), "not a model folder")
    run("train", write_config(tmp_path / "ok.yaml", data, data, tmp_path / "ok", train={"epochs": 1}), check=0)
    fails_with(run("predict", "--model", tmp_path / "ok", stdin=b"fine\n\xff\n"),
               "stdin:2: invalid UTF-8")
    fails_with(run("predict", "--model", tmp_path / "ok", "--top-k", "0"), "--top-k")
    fails_with(run("eval", "--model", tmp_path / "ok", "--data", data, "--report", "xml"), "--report")
    (tmp_path / "ok" / "best" / "model.safetensors").write_bytes(b"\x00" * 20)
    fails_with(run("eval", "--model", tmp_path / "ok", "--data", data), "model.safetensors")
    assert run("predict", "--model", tmp_path / "ok" / "last", stdin="fine\n", check=0).stdout.startswith("{")
    res = run("frobnicate")
    assert res.returncode == 2
    assert run("--help", check=0).stdout.count("Examples") == 1
    # One output line per input line: blank ones say so instead of guessing (or shifting the rest).
    out = run("predict", "--model", tmp_path / "ok" / "last", stdin="\n  \nfine\n", check=0)
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert lines[:2] == [{"error": "empty input"}] * 2 and "label" in lines[2]


@pytest.mark.parametrize("task,architecture", [("classify", ""), ("tag", ""), ("translate", "transformer"),
                                               ("translate", "rnn")])
def test_every_configuration_key_is_documented(tmp_path, task, architecture):
    cfg = tmp_path / "run.yaml"
    cfg.write_text(f"task: {task}\ndata:\n  train: x.tsv\n  dev: x.tsv\n"
                   + (f"model:\n  architecture: {architecture}\n" if architecture else ""))
    dumped = run("train", cfg, "--dump-config", check=0).stdout
    assert f'task: "{task}"' in dumped
    reference = (pathlib.Path(__file__).resolve().parents[2] / "docs" / "config.md").read_text()
    section, keys = "", []
    for line in dumped.splitlines():
        if not line.startswith(" ") and line.endswith(":"):
            section = line[:-1]
        else:
            key = line.strip().split(":")[0]
            keys.append(f"{section}.{key}" if line.startswith(" ") else key)
    missing = [k for k in keys if f"`{k}`" not in reference]
    assert not missing, f"docs/config.md lacks {missing}"


def test_every_example_config_is_valid():
    """The shipped configurations (examples/) parse with every key known and typed."""
    configs = sorted((ROOT / "examples").glob("*/*.yaml"))
    assert len(configs) >= 7
    for cfg in configs:
        res = run("train", cfg, "--dump-config")
        assert res.returncode == 0, f"{cfg}: {res.stderr}"
