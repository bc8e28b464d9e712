"""Regression tests for the inputs that used to crash, hang, exhaust memory or lose data (issue 15):
one test per root cause, each with the reproduction that found it."""
import gzip
import json
import os
import resource
import subprocess

import numpy as np
import pytest

import gaze
from cli_helpers import DATA, GAZE, run, sentiment_rows, write_tsv, write_yaml

CMUDICT = DATA / "cmudict" / "cmudict04_g2p.tsv.gz"


def fails_with(res, *needles, code=2):
    assert res.returncode == code, f"exit {res.returncode}\nstdout: {res.stdout[:400]}\nstderr: {res.stderr}"
    lines = res.stderr.strip().splitlines()
    # The error is one line, the last (progress may come before it), and no stack trace.
    assert [line for line in lines if line.startswith("gaze:")] == lines[-1:], res.stderr
    for n in needles:
        assert n in res.stderr, res.stderr


def train(d, config):
    cfg = write_yaml(d / "run.yaml", config)
    run("train", cfg, check=0)
    return d / "run"


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    d = tmp_path_factory.mktemp("classify")
    data = write_tsv(d / "train.tsv", sentiment_rows(120))
    return train(d, {
        "task": "classify", "output": str(d / "run"),
        "data": {"train": str(data), "dev": str(data), "max_length": 32},
        "tokenizer": {"kind": "word", "lowercase": True},
        "model": {"d_model": 16, "nhead": 2, "num_layers": 1, "dim_feedforward": 32, "dropout": 0.0},
        "train": {"epochs": 1, "batch_size": 32, "lr": 0.003, "warmup_steps": 1, "log_every": 50}})


@pytest.fixture(scope="module", params=["transformer", "rnn"])
def translator(request, tmp_path_factory):
    d = tmp_path_factory.mktemp(request.param)
    with gzip.open(CMUDICT, "rt", encoding="utf-8") as f:
        rows = [line.rstrip("\n").split("\t") for line in f][1:101]
    data = d / "g2p.tsv"
    data.write_text("word\tphones\n" + "".join(f"{r[0]}\t{r[1]}\n" for r in rows), encoding="utf-8")
    model = ({"d_model": 16, "nhead": 2, "num_encoder_layers": 1, "num_decoder_layers": 1,
              "dim_feedforward": 32, "dropout": 0.0, "max_positions": 40}
             if request.param == "transformer" else
             {"embed_dim": 8, "hidden_size": 8, "decoder_hidden_size": 16, "attention_dim": 8,
              "readout_dim": 16, "dropout": 0.0})
    return request.param, train(d, {
        "task": "translate", "output": str(d / "run"),
        "data": {"train": str(data), "dev": str(data), "source_column": "word", "target_column": "phones",
                 "max_target_length": 20},
        "tokenizer": {"kind": "char"}, "target_tokenizer": {"kind": "word"},
        "model": {"architecture": request.param, **model},
        "train": {"max_steps": 2, "epochs": 1, "batch_size": 50, "lr": 0.003, "warmup_steps": 1,
                  "log_every": 50, "metric": "wer"}})


# 1. Size arithmetic: shapes whose element counts overflow are refused before anything is allocated.
def test_huge_shapes_are_refused():
    for make in (lambda: gaze.ones([2**62]), lambda: gaze.zeros([2**32, 2**32]),
                 lambda: gaze.nn.Linear(2**31, 2**31), lambda: gaze.nn.Embedding(2**62, 4),
                 lambda: gaze.zeros([2**20, 2**20, 2**20])):
        with pytest.raises(gaze.ValueError, match="2\\^48 elements"):
            make()
    assert gaze.zeros([0, 2**40]).numel() == 0  # empty is fine however large the other sizes


def test_huge_safetensors_shape_is_refused(tmp_path):
    header = json.dumps({"w": {"dtype": "F32", "shape": [2**62], "data_offsets": [0, 0]}}).encode()
    path = tmp_path / "hostile.safetensors"
    path.write_bytes(len(header).to_bytes(8, "little") + header)
    with pytest.raises(gaze.DataError, match="hostile.safetensors"):
        gaze.io.load_safetensors(str(path))


def test_huge_config_values_are_refused(classifier, tmp_path):
    cfg = write_yaml(tmp_path / "run.yaml", {"task": "classify", "output": str(tmp_path / "out"),
                                            "data": {"train": str(tmp_path / "x.tsv")}})
    fails_with(run("train", cfg, "--set", "model.dim_feedforward=4611686018427387904"),
               "dim_feedforward", "16777216")
    model = tmp_path / "model"
    model.mkdir()
    for f in (classifier / "best").iterdir():
        (model / f.name).write_bytes(f.read_bytes())
    config = json.loads((model / "config.json").read_text())
    config["max_positions"] = 2**62
    (model / "config.json").write_text(json.dumps(config))
    fails_with(run("predict", "--model", model, stdin="hello\n"), "max_positions")
    config["max_positions"] = 64
    config["num_layers"] = 100000  # refused at once, not after building 100,000 layers
    (model / "config.json").write_text(json.dumps(config))
    res = run("predict", "--model", model, stdin="hello\n", timeout=60)
    fails_with(res, "num_layers", "1024")


# 4. Thread counts are bounded.
def test_thread_counts_are_bounded(tmp_path):
    with pytest.raises(gaze.ValueError, match="1024"):
        gaze.set_num_threads(100000)
    cfg = write_yaml(tmp_path / "run.yaml", {"task": "classify", "output": str(tmp_path / "out"),
                                            "data": {"train": str(tmp_path / "x.tsv")}})
    fails_with(run("train", cfg, "--set", "train.threads=100000"), "threads")


# 5. Freeing a very deep graph does not recurse (100k chained attention calls used to overflow the stack).
def test_deep_graph_is_freed_without_recursion():
    code = ("import gaze\nq = gaze.ones([1, 1, 2, 4]); q.requires_grad_(True)\nx = q\n"
            "for _ in range(100000):\n    x = gaze.nn.functional.scaled_dot_product_attention(x, x, x)\n"
            "del x\nprint('freed')\n")
    res = subprocess.run(["/usr/bin/python3", "-c", code], capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, GAZE_NUM_THREADS="1"))
    assert res.returncode == 0 and res.stdout.strip() == "freed", res.stderr[-2000:]


# 6. Memory does not grow with the length of a line beyond what the model reads.
def test_long_lines_are_cut_before_tokenizing(classifier, tmp_path):
    big = tmp_path / "big.txt"
    big.write_text("great " * 4_000_000 + "\n" + "x" * (30 << 20) + "\n")  # 24 MB of words, 30 MB without a space
    res = subprocess.run(
        ["bash", "-c", f'ulimit -v {3 << 20}; GAZE_NUM_THREADS=1 "{GAZE}" predict --model "{classifier}" < "{big}"'],
        capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    out = [json.loads(line) for line in res.stdout.splitlines()]
    assert len(out) == 2 and all("label" in o for o in out)
    # The same from a file, and through Python.
    res = run("predict", "--model", classifier, "--input", big, check=0)
    assert len(res.stdout.splitlines()) == 2
    pipe = gaze.load(str(classifier))
    assert len(pipe(["great " * 2_000_000])) == 1


# 7. Output that cannot be written, or input that cannot be read, is an error, not a silent success.
def test_write_errors_are_reported(classifier):
    with open("/dev/full", "w") as full:
        res = subprocess.run([str(GAZE), "predict", "--model", str(classifier)], input="fine\n" * 50,
                             stdout=full, stderr=subprocess.PIPE, text=True, env=dict(os.environ, GAZE_NUM_THREADS="1"))
    assert res.returncode == 1 and "write error" in res.stderr, res.stderr
    # A read that fails (stdin is a directory: EISDIR) is not the end of the input.
    root = os.open("/", os.O_RDONLY)
    try:
        res = subprocess.run([str(GAZE), "predict", "--model", str(classifier)], stdin=root,
                             capture_output=True, text=True, env=dict(os.environ, GAZE_NUM_THREADS="1"))
    finally:
        os.close(root)
    assert res.returncode == 1 and "read error: stdin" in res.stderr, res.stderr


# 8. One output line per input line: blank lines are answered, not dropped.
def test_blank_lines_keep_outputs_aligned(classifier, translator, tmp_path):
    res = run("predict", "--model", classifier, stdin="good\n\n   \nbad\n \r\n\v\f\n\u00a0\u3000\n", check=0)
    out = [json.loads(line) for line in res.stdout.splitlines()]
    assert len(out) == 7 and out[1] == out[2] == out[4] == out[5] == out[6] == {"error": "empty input"}
    assert "label" in out[0] and "label" in out[3]
    # Invalid UTF-8 stops the run, but the lines before it are answered first.
    res = run("predict", "--model", classifier, stdin=b"good\n" * 300 + b"\xff\n" + b"bad\n")
    fails_with(res, "stdin:301: invalid UTF-8")
    assert len(res.stdout.splitlines()) == 300
    (tmp_path / "in.txt").write_text("good\n\nbad\n")
    assert len(run("predict", "--model", classifier, "--input", tmp_path / "in.txt", check=0).stdout.splitlines()) == 3
    pipe = gaze.load(str(classifier))
    assert pipe(["", "good"])[0] == {"error": "empty input"}
    assert all(o == {"error": "empty input"} for o in pipe(["\n", "\r", " \n", "\u3000", "\t"]))
    _, model = translator
    res = run("translate", "--model", model, stdin="abc\n\nde\n", check=0)
    assert res.stdout.split("\n")[1] == "" and len(res.stdout.splitlines()) == 3


# 9. Arrays in the other byte order are converted, not reinterpreted.
def test_big_endian_arrays():
    np.testing.assert_array_equal(gaze.from_numpy(np.arange(3, dtype=">f4")).numpy(), [0, 1, 2])
    np.testing.assert_array_equal(gaze.tensor(np.arange(3, dtype=">i8")).numpy(), [0, 1, 2])
    np.testing.assert_array_equal(gaze.from_numpy(np.arange(4, dtype=">f8").reshape(2, 2)[:, ::-1]).numpy(),
                                  [[1, 0], [3, 2]])


# 10. Decoding has a hard cap, whatever the length options say.
def test_decoding_is_capped(translator):
    arch, model = translator
    res = run("translate", "--model", model, "--max-length-ratio", "1e9", stdin="abc\n")
    fails_with(res, "max_length_ratio")
    out = run("predict", "--model", model, "--max-length-ratio", "100", "--max-length-offset", "100000",
              "--method", "greedy", stdin="abcdefgh\n", check=0, timeout=120)
    assert len(out.stdout.splitlines()) == 1
    nbest = run("predict", "--model", model, "--max-length-ratio", "100", "--max-length-offset", "100000",
                "--beam-size", "3", "--nbest", "3", stdin="abcdefgh\n", check=0, timeout=120)
    cap = 40 if arch == "transformer" else 40  # max_positions; RNN: twice max_target_length
    for h in json.loads(nbest.stdout)["nbest"]:
        assert len(h["translation_text"].split()) < cap


# 11. A model folder reads only regular files of its own.
def test_model_folders_cannot_point_elsewhere(classifier, tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    for f in (classifier / "best").iterdir():
        (model / f.name).write_bytes(f.read_bytes())
    tok = json.loads((model / "tokenizer.json").read_text())
    for bad in ("/etc/passwd", "../x/vocab.txt"):
        (model / "tokenizer.json").write_text(json.dumps(dict(tok, vocab=bad)))
        fails_with(run("predict", "--model", model, stdin="x\n"), "tokenizer.json", "plain name")
    (model / "tokenizer.json").write_text(json.dumps(tok))
    outside = tmp_path / "outside.txt"
    (model / "vocab.txt").rename(outside)
    (model / "vocab.txt").symlink_to(outside)  # a symlink out of the folder
    fails_with(run("predict", "--model", model, stdin="x\n"), "vocab", "leads out of the folder")
    (model / "vocab.txt").unlink()
    (model / "vocab.real.txt").write_bytes(outside.read_bytes())
    (model / "vocab.txt").symlink_to("vocab.real.txt")  # one inside it is fine
    assert run("predict", "--model", model, stdin="x\n", check=0).stdout.startswith("{")
    (model / "vocab.txt").unlink()
    os.mkfifo(model / "vocab.txt")  # would block forever when opened for reading
    fails_with(run("predict", "--model", model, stdin="x\n", timeout=60), "vocab.txt", "FIFO")
    (model / "vocab.txt").unlink()
    (model / "vocab.txt").symlink_to("/dev/zero")  # would be read until memory runs out
    fails_with(run("predict", "--model", model, stdin="x\n", timeout=60), "vocab.txt", "/dev/zero")
    (model / "vocab.txt").unlink()
    (model / "vocab.txt").write_bytes(outside.read_bytes())
    config = (model / "config.json").read_bytes()
    (model / "config.json").unlink()
    (model / "config.json").symlink_to("/dev/zero")  # read directly: the file check refuses the device
    fails_with(run("predict", "--model", model, stdin="x\n", timeout=60), "config.json", "character device")
    (model / "config.json").unlink()
    (model / "config.json").write_bytes(config)
    cfg = write_yaml(tmp_path / "run.yaml", {"task": "classify", "output": str(tmp_path / "out"),
                                            "data": {"train": "/dev/zero", "dev": "/dev/zero"}})
    fails_with(run("train", cfg, timeout=60), "/dev/zero", "regular file")
    res = run("train", tmp_path, timeout=60)
    assert res.returncode == 2 and "directory" in res.stderr


# 12. A damaged training state is refused with a message.
def test_training_state_is_validated(classifier, tmp_path):
    last = tmp_path / "run" / "last"
    last.mkdir(parents=True)
    for f in (classifier / "last").iterdir():
        (last / f.name).write_bytes(f.read_bytes())
    tensors, meta = gaze.io.load_safetensors(str(last / "training.safetensors"))
    cfg = (classifier / "config.yaml").read_text().replace(str(classifier), str(tmp_path / "run"))
    (tmp_path / "run" / "config.yaml").write_text(cfg)
    for field, value in (("batch", -5), ("step", -1), ("epoch", "1")):
        training = json.loads(meta["training"])
        training["progress"][field] = value
        gaze.io.save_safetensors(str(last / "training.safetensors"), dict(tensors),
                                 dict(meta, training=json.dumps(training)))
        fails_with(run("train", "--resume", tmp_path / "run"), field)


# 13. Wrong types or ranges in a model folder's files are bad input (exit 2, naming the file), never an
# internal error.
@pytest.mark.parametrize("which", ["classifier", "translator"])
def test_model_folder_values_of_the_wrong_type(which, classifier, translator, tmp_path):
    source = classifier if which == "classifier" else translator[1]
    model = tmp_path / "model"
    for f in (source / "best").rglob("*"):
        if f.is_file():
            (model / f.relative_to(source / "best")).parent.mkdir(parents=True, exist_ok=True)
            (model / f.relative_to(source / "best")).write_bytes(f.read_bytes())
    failures = []
    for name in ("task.json", "config.json", "tokenizer.json", "labels.json", "target_tokenizer/tokenizer.json"):
        path = model / name
        if not path.exists():
            continue
        original = path.read_text()
        value = json.loads(original)
        keys = list(value) if isinstance(value, dict) else [None]
        for key in keys:
            for bad in ("x", -1, 0, 2**62, 1e300, None, [], {"a": 1}, True):
                if key is None:
                    mutated = [bad, bad]
                else:
                    mutated = dict(value, **{key: bad})
                    if mutated == value:
                        continue
                path.write_text(json.dumps(mutated))
                res = run("predict", "--model", model, stdin="abc\n", timeout=60)
                named = name.split("/")[-1] in res.stderr or str(model) in res.stderr
                ok = res.returncode == 0 or (res.returncode == 2 and named and len(res.stderr.strip().splitlines()) == 1)
                if not ok:
                    failures.append(f"{name} {key}={bad!r}: exit {res.returncode}: {res.stderr.strip()[:200]}")
        path.write_text(original)
        path.unlink()
        path.mkdir()  # a directory where the file should be
        res = run("predict", "--model", model, stdin="abc\n", timeout=60)
        if not (res.returncode == 2 and "directory" in res.stderr):
            failures.append(f"{name} as a directory: exit {res.returncode}: {res.stderr.strip()[:200]}")
        path.rmdir()
        path.write_text(original)
    assert not failures, "\n".join(failures)


# Run folders: one run per folder, no mixing with an earlier run, resume continues the same record.
@pytest.fixture
def small_run(tmp_path):
    data = write_tsv(tmp_path / "data.tsv", sentiment_rows(160))
    cfg = write_yaml(tmp_path / "run.yaml", {
        "task": "classify", "output": str(tmp_path / "run"),
        "data": {"train": str(data), "split": "modulo10", "max_length": 32},
        "tokenizer": {"kind": "word", "lowercase": True},
        "model": {"d_model": 16, "nhead": 2, "num_layers": 1, "dim_feedforward": 32, "dropout": 0.0},
        "train": {"epochs": 2, "batch_size": 32, "lr": 0.003, "warmup_steps": 1, "eval_every": 2}})
    run("train", cfg, check=0)
    return cfg, tmp_path / "run"


def steps(run_dir):
    """The steps of the run's validations (metrics.jsonl's training lines carry train_loss)."""
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [x["step"] for x in lines if "train_loss" not in x]


def test_a_new_run_refuses_an_earlier_runs_folder(small_run, tmp_path):
    cfg, out = small_run
    before = steps(out)
    fails_with(run("train", cfg), "not empty", "--resume", "--overwrite")
    assert steps(out) == before
    # A bad start with --overwrite leaves the earlier run alone; a good one replaces it.
    fails_with(run("train", cfg, "--overwrite", "--set", "data.train=" + str(tmp_path / "missing.tsv")),
               "missing.tsv")
    assert steps(out) == before and (out / "best").is_dir()
    run("train", cfg, "--overwrite", "--set", "train.epochs=1", check=0)
    (out / "test_report.json").unlink(missing_ok=True)  # an earlier run that never got that far
    (out / "metrics.jsonl").unlink()
    run("train", cfg, "--overwrite", "--set", "train.epochs=1", check=0)
    assert steps(out) == [s for s in before if s <= max(steps(out))] and len(steps(out)) < len(before)
    # A failed start into a new folder leaves nothing behind.
    fails_with(run("train", cfg, "--set", f"output={tmp_path / 'new'}", "--set", "data.train=/nonexistent.tsv"),
               "nonexistent")
    assert not (tmp_path / "new").exists()


def test_resume_reads_the_run_folder_and_refuses_changed_settings(small_run, tmp_path):
    cfg, out = small_run
    fails_with(run("train", "--resume", out, "--set", "model.d_model=32"), "model.d_model: 16 -> 32", "init_from")
    # Editing the record does not get past the checkpoint's own.
    recorded = (out / "config.yaml").read_text()
    for old, new, key in (("d_model: 16", "d_model: 32", "model.d_model"), ("max_length: 32", "max_length: 8", "data.max_length"),
                          ("lowercase: true", "lowercase: false", "tokenizer.lowercase")):
        assert old in recorded
        (out / "config.yaml").write_text(recorded.replace(old, new))
        fails_with(run("train", "--resume", out, "--set", "train.epochs=3"), key, "was config.yaml edited")
    (out / "config.yaml").write_text(recorded)
    # Another config's output is not where a resumed run writes: RUN is.
    other = tmp_path / "elsewhere.yaml"
    other.write_text(cfg.read_text().replace(str(out), str(tmp_path / "other")))
    before = steps(out)
    (out / "metrics.jsonl").write_text((out / "metrics.jsonl").read_text() + '{"step": 999999}\n{"step": 99')
    res = run("train", other, "--resume", out, "--set", "train.epochs=3", check=0)
    assert "resuming from" in res.stderr and not (tmp_path / "other").exists()
    after = steps(out)
    assert after[:len(before)] == before and len(after) > len(before) and len(set(after)) == len(after)
    assert 999999 not in after and "epochs: 3" in (out / "config.yaml").read_text()


def test_resume_turns_the_weight_average_on_and_off_and_refuses_a_damaged_one(small_run):
    cfg, out = small_run
    # A finished run resumed with an average trains no step: last/ keeps an average of 0 updates,
    # which every reader accepts.
    res = run("train", "--resume", out, "--set", "train.ema_decay=0.9", check=0)
    assert "has no weight average: it starts from these weights" in res.stderr
    run("predict", "--model", out / "last", stdin="Great phone.\n", check=0)
    res = run("train", "--resume", out, "--set", "train.epochs=3", "--set", "train.ema_decay=0.9", check=0)
    assert "resuming from" in res.stderr
    path = out / "last" / "training.safetensors"
    tensors, meta = gaze.io.load_safetensors(str(path))
    assert any(k.startswith("average.") for k in tensors)
    # A damaged average (a tensor of the wrong shape) is refused, naming it.
    bad = dict(tensors)
    bad["average.0"] = gaze.tensor(np.zeros(3, np.float32))
    gaze.io.save_safetensors(str(path), bad, meta)
    fails_with(run("train", "--resume", out, "--set", "train.epochs=4", "--set", "train.ema_decay=0.9"),
               "weight average", "'0'", "freeze")
    # gaze.io.restore_training cannot resume it: its model is the average.
    opt = gaze.optim.SGD([gaze.tensor(np.zeros(2, np.float32), requires_grad=True)])
    with pytest.raises(gaze.DataError, match="weight average"):
        gaze.io.restore_training(str(out / "last"), opt)
    gaze.io.save_safetensors(str(path), tensors, meta)
    res = run("train", "--resume", out, "--set", "train.epochs=4", "--set", "train.ema_decay=0", check=0)
    assert "weight average is dropped" in res.stderr
    tensors, _ = gaze.io.load_safetensors(str(path))
    assert not any(k.startswith("average.") for k in tensors)


def test_one_run_at_a_time_owns_a_folder(small_run):
    import fcntl
    cfg, out = small_run
    with open(out / ".lock", "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fails_with(run("train", "--resume", out, "--set", "train.epochs=3"), "another gaze train")
    assert "resuming from" in run("train", "--resume", out, "--set", "train.epochs=3", check=0).stderr
    # A symlink planted as the lock is refused, and its target is left alone.
    precious = out.parent / "precious.txt"
    precious.write_text("precious data")
    (out / ".lock").unlink()
    (out / ".lock").symlink_to(precious)
    fails_with(run("train", "--resume", out, "--set", "train.epochs=4"), ".lock")
    assert precious.read_text() == "precious data"


def test_a_checkpoint_saved_before_any_validation_resumes(small_run):
    cfg, out = small_run
    path = out / "last" / "training.safetensors"
    tensors, meta = gaze.io.load_safetensors(str(path))
    training = json.loads(meta["training"])
    training["progress"].update(best=None, best_step=-1, bad_evals=0)
    gaze.io.save_safetensors(str(path), dict(tensors), dict(meta, training=json.dumps(training)))
    assert "resuming from" in run("train", "--resume", out / "last", "--set", "train.epochs=3", check=0).stderr
