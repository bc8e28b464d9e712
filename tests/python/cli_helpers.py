"""Helpers for the end-to-end tests of the `gaze` command line: where the binary and the test data
(tests/data) are, running it, and writing small run configurations."""
import json
import os
import pathlib
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("GAZE_BUILD_DIR", ROOT / "build"))
GAZE = BUILD / "gaze"
DATA = ROOT / "tests" / "data"  # small licensed slices of real data sets (see its README.md)
SENTIMENT = DATA / "sentiment" / "uci_sentiment_sentences.tsv"


def run(*args, stdin=None, threads=1, check=None, timeout=600):
    """Runs gaze with args; returns the CompletedProcess (stdout/stderr as text)."""
    env = dict(os.environ, GAZE_NUM_THREADS=str(threads))
    if isinstance(stdin, str):
        stdin = stdin.encode()
    res = subprocess.run([str(GAZE), *map(str, args)], input=stdin, capture_output=True, env=env, timeout=timeout)
    res.stdout, res.stderr = res.stdout.decode(errors="replace"), res.stderr.decode(errors="replace")
    if check is not None:
        assert res.returncode == check, f"exit {res.returncode}, stderr:\n{res.stderr}"
    return res


def validations(run_dir):
    """The validation lines of a run's metrics.jsonl (the training lines have "train_loss")."""
    lines = [json.loads(line) for line in (pathlib.Path(run_dir) / "metrics.jsonl").read_text().splitlines()]
    return [x for x in lines if "train_loss" not in x]


def training_log(run_dir):
    """The training lines of a run's metrics.jsonl (every train.log_every steps)."""
    lines = [json.loads(line) for line in (pathlib.Path(run_dir) / "metrics.jsonl").read_text().splitlines()]
    return [x for x in lines if "train_loss" in x]


def sentiment_rows(n=None):
    """(source, label, text) rows of the UCI sentiment data, in file order."""
    lines = SENTIMENT.read_text(encoding="utf-8").splitlines()[1:]
    rows = [tuple(line.split("\t")) for line in lines]
    return rows[:n] if n else rows


def write_tsv(path, rows, header=("source", "label", "text")):
    path.write_text("\n".join(["\t".join(header)] + ["\t".join(r) for r in rows]) + "\n", encoding="utf-8")
    return path


def write_config(path, train_file, dev_file, output, **sections):
    """A small, fast classification config; sections override/extend keys, e.g. train={"epochs": 3}."""
    base = {
        "task": "classify",
        "output": str(output),
        "data": {"train": str(train_file), "dev": str(dev_file), "max_length": 48},
        "tokenizer": {"kind": "word", "lowercase": True},
        "model": {"d_model": 32, "nhead": 2, "num_layers": 1, "dim_feedforward": 64, "dropout": 0.0},
        "train": {"epochs": 5, "batch_size": 16, "lr": 0.003, "warmup_steps": 5, "log_every": 5},
    }
    return write_yaml(path, base, **sections)


def write_yaml(path, base, **sections):
    """Writes `base` (two levels of keys) as YAML, with sections overriding/extending its keys."""
    base = {k: dict(v) if isinstance(v, dict) else v for k, v in base.items()}
    for key, value in sections.items():
        if isinstance(value, dict):
            base.setdefault(key, {}).update(value)
        else:
            base[key] = value
    lines = []
    for key, value in base.items():
        if isinstance(value, dict):
            lines.append(f"{key}:")
            lines += [f"  {k}: {json.dumps(v)}" for k, v in value.items()]
        else:
            lines.append(f"{key}: {json.dumps(value)}")
    path.write_text("\n".join(lines) + "\n")
    return path


def conll_sentences(path, n=None):
    """(words, tags) of the first n sentences of a CoNLL file (token and tag: first and last column)."""
    sents, words, tags = [], [], []
    for line in pathlib.Path(path).read_text(encoding="utf-8").splitlines():
        if line.startswith("# "):
            continue
        if line.strip():
            cols = line.split("\t")
            words.append(cols[0])
            tags.append(cols[-1])
        elif words:
            sents.append((words, tags))
            words, tags = [], []
    if words:
        sents.append((words, tags))
    return sents[:n] if n else sents


def write_conll(path, sentences):
    path.write_text("\n\n".join("\n".join(f"{w}\t{t}" for w, t in zip(ws, ts)) for ws, ts in sentences) + "\n",
                    encoding="utf-8")
    return path
