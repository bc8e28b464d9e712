"""Data-parallel training under mpirun (`mpirun -np 2 gaze train`): two ranks with global batch B
learn what one process learns with batch B, reproducibly; checkpoints move between 1 and 2 ranks;
a failing or dying rank ends the whole run with a message; Ctrl-C saves a resumable checkpoint."""
import gzip
import json
import os
import shutil
import signal
import struct
import subprocess
import time

import numpy as np
import pytest

from cli_helpers import DATA, GAZE, SENTIMENT, conll_sentences, run, validations, write_conll, write_yaml

MPIRUN = shutil.which("mpirun")
pytestmark = pytest.mark.skipif(MPIRUN is None, reason="mpirun (openmpi-bin) is not installed")
# Root in CI containers; two ranks on however few cores the machine has.
MPI_FLAGS = ["--allow-run-as-root", "--oversubscribe"]


def mpirun(np_, *args, timeout=300, check=None, env=None):
    e = dict(os.environ, **(env or {}))
    e.pop("GAZE_NUM_THREADS", None)  # each rank takes its share of the cores
    res = subprocess.run([MPIRUN, *MPI_FLAGS, "-np", str(np_), str(GAZE), *map(str, args)],
                         capture_output=True, text=True, timeout=timeout, env=e)
    if check is not None:
        assert res.returncode == check, f"exit {res.returncode}, stderr:\n{res.stderr[-3000:]}"
    return res


def tensors(path):
    """The tensors of a safetensors file, as numpy arrays."""
    b = path.read_bytes()
    n = struct.unpack("<Q", b[:8])[0]
    header = json.loads(b[8:8 + n])
    types = {"F32": np.float32, "F64": np.float64, "I64": np.int64}
    out = {}
    for k, v in header.items():
        if k != "__metadata__":
            s, e = v["data_offsets"]
            out[k] = np.frombuffer(b[8 + n + s:8 + n + e], dtype=types[v["dtype"]]).reshape(v["shape"])
    return out


def key_bias_rows(name, shape):
    """The key part of an attention layer's in_proj_bias: softmax ignores it, so its true gradient
    is zero and Adam turns the rounding noise of a zero into full steps (in torch as in gaze);
    the reduction order then decides its values. Excluded from the comparison under Adam."""
    if name.endswith("in_proj_bias"):
        d = shape[0] // 3
        return slice(d, 2 * d)
    return None


def assert_same_parameters(a_dir, b_dir, rel=1e-5, adam=True):
    a, b = tensors(a_dir / "model.safetensors"), tensors(b_dir / "model.safetensors")
    assert a.keys() == b.keys()
    for name in a:
        x, y = a[name].astype(np.float64), b[name].astype(np.float64)
        if adam and (rows := key_bias_rows(name, x.shape)) is not None:
            x, y = np.delete(x, np.arange(x.shape[0])[rows], 0), np.delete(y, np.arange(y.shape[0])[rows], 0)
        scale = max(np.abs(x).max(), 1e-12)
        assert np.abs(x - y).max() <= rel * scale, f"{name}: {np.abs(x - y).max() / scale:.2e} relative"


def metrics(run_dir):
    return validations(run_dir)


# --- the three tasks, small -----------------------------------------------------------------------

def classify_config(d, optimizer="adamw", **sections):
    rows = SENTIMENT.read_text(encoding="utf-8").splitlines()
    (d / "train.tsv").write_text("\n".join(rows[:401]) + "\n", encoding="utf-8")
    (d / "dev.tsv").write_text("\n".join(rows[:1] + rows[401:501]) + "\n", encoding="utf-8")
    base = {
        "task": "classify",
        "output": str(d / "run"),
        "data": {"train": str(d / "train.tsv"), "dev": str(d / "dev.tsv"), "max_length": 48},
        "tokenizer": {"kind": "word", "lowercase": True},
        "model": {"d_model": 32, "nhead": 2, "num_layers": 2, "dim_feedforward": 64, "dropout": 0.0},
        "train": {"epochs": 1, "max_steps": 10, "batch_size": 16, "lr": 0.003, "warmup_steps": 3,
                  "optimizer": optimizer, "eval_every": 5, "log_every": 1},
    }
    return write_yaml(d / "run.yaml", base, **sections)


def tag_config(d, **sections):
    sents = conll_sentences(DATA / "wnut17" / "train.conll")[:160]
    write_conll(d / "train.conll", sents[:120])
    write_conll(d / "dev.conll", sents[120:])
    base = {
        "task": "tag",
        "output": str(d / "run"),
        "data": {"train": str(d / "train.conll"), "dev": str(d / "dev.conll"), "max_length": 64},
        "tokenizer": {"kind": "sentencepiece", "vocab_size": 300},
        "model": {"d_model": 32, "nhead": 2, "num_layers": 1, "dim_feedforward": 64, "dropout": 0.0},
        "train": {"epochs": 1, "max_steps": 10, "batch_size": 12, "lr": 0.003, "warmup_steps": 3,
                  "eval_every": 10, "metric": "accuracy", "log_every": 1},
    }
    return write_yaml(d / "run.yaml", base, **sections)


def translate_config(d, architecture, **sections):
    with gzip.open(DATA / "bible" / "bible_en-kjv_es-rv1909.tsv.gz", "rt", encoding="utf-8") as f:
        rows = [line.rstrip("\n").split("\t") for line in f][1:]
    rows = [r for r in rows if len(r[1].split()) <= 16][:120]
    (d / "pairs.tsv").write_text("en\tes\n" + "".join(f"{r[1]}\t{r[2]}\n" for r in rows), encoding="utf-8")
    (d / "dev.tsv").write_text("en\tes\n" + "".join(f"{r[1]}\t{r[2]}\n" for r in rows[:24]),
                               encoding="utf-8")
    model = ({"d_model": 32, "nhead": 2, "num_encoder_layers": 1, "num_decoder_layers": 1,
              "dim_feedforward": 64, "dropout": 0.0}
             if architecture == "transformer" else
             {"embed_dim": 32, "hidden_size": 32, "decoder_hidden_size": 32, "attention_dim": 32,
              "readout_dim": 32, "dropout": 0.0})
    base = {
        "task": "translate",
        "output": str(d / "run"),
        "data": {"train": str(d / "pairs.tsv"), "dev": str(d / "dev.tsv"), "source_column": "en",
                 "target_column": "es", "max_length": 40, "max_target_length": 40},
        "tokenizer": {"kind": "word"},
        "model": {"architecture": architecture, **model},
        "decode": {"beam_size": 2, "max_length": 20},
        "train": {"epochs": 1, "max_steps": 10, "batch_size": 12, "lr": 0.003, "warmup_steps": 3,
                  "eval_every": 10, "metric": "bleu", "log_every": 1},
    }
    return write_yaml(d / "run.yaml", base, **sections)


def bert_config(d):
    """A tiny BERT checkpoint (built by torch, imported) fine-tuned with its embeddings and lower
    layer frozen: frozen parameters are nobody's gradients, the others reduce as usual."""
    import bert_reference as ref
    from test_bert import CONFIG, FIX
    with gzip.open(FIX / "vocab.txt.gz", "rt", encoding="utf-8") as f:
        vocab = f.read().splitlines()
    import torch
    torch.manual_seed(7)
    model = ref.TinyBert(dict(CONFIG, vocab_size=len(vocab)))
    ref.randomize_parameters_(model, 7)
    ref.save_hf_folder(model.eval(), d / "hf", vocab)
    run("import", "bert", d / "hf", "--out", d / "bert", check=0)
    return classify_config(d, model={"pretrained": str(d / "bert")},
                           train={"freeze_layers": 1, "backbone_lr": 0.001, "layer_lr_decay": 0.8})


CONFIGS = {
    "classify-adamw": lambda d: classify_config(d),
    "classify-sgd": lambda d: classify_config(d, "sgd", train={"lr": 0.1}),
    "tag": tag_config,
    "tag-crf": lambda d: tag_config(d, model={"crf": True}),
    "translate-transformer": lambda d: translate_config(d, "transformer"),
    "translate-rnn": lambda d: translate_config(d, "rnn"),
    "classify-bert-frozen-layer": bert_config,
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_two_ranks_learn_what_one_process_learns(name, tmp_path):
    cfg = CONFIGS[name](tmp_path)
    one = run("train", cfg, "--set", f"output={tmp_path / 'one'}", threads=1, check=0)
    two = mpirun(2, "train", cfg, "--set", f"output={tmp_path / 'two'}", check=0)
    assert "data-parallel: 2 ranks" in two.stderr
    if "bert" in name:
        assert "pretrained: " in two.stderr and "tensors frozen" in two.stderr, two.stderr
    assert two.stderr.count("trained 10 steps") == 1  # rank 0 alone reports
    assert_same_parameters(tmp_path / "one" / "last", tmp_path / "two" / "last", adam="sgd" not in name)
    # Validation is split over the ranks and merged: the same metrics.
    m1, m2 = metrics(tmp_path / "one"), metrics(tmp_path / "two")
    assert [m["step"] for m in m1] == [m["step"] for m in m2]
    for a, b in zip(m1, m2):
        for k in a:
            if k not in ("seconds", "elapsed", "best", "lr", "step", "epoch"):
                assert b[k] == pytest.approx(a[k], rel=1e-4, abs=1e-4), (k, a, b)
    summary = json.loads((tmp_path / "two" / "data_parallel.json").read_text())
    assert summary["ranks"] == 2 and len(summary["per_rank"]) == 2
    assert all(r["steps"] == 10 for r in summary["per_rank"])
    assert not (tmp_path / "one" / "data_parallel.json").exists()


def train_losses(stderr):
    """The running losses of the progress lines."""
    return [float(line.split(" loss ")[1].split()[0]) for line in stderr.splitlines()
            if line.startswith("epoch ") and " step " in line]


def test_with_dropout_reruns_are_identical_and_the_loss_follows_one_process(tmp_path):
    cfg = classify_config(tmp_path, model={"dropout": 0.2},
                          train={"max_steps": 30, "epochs": 3, "eval_every": 10})
    runs = [mpirun(2, "train", cfg, "--set", f"output={tmp_path / f'two{i}'}", check=0) for i in range(2)]
    a, b = (tensors(tmp_path / f"two{i}" / "last" / "model.safetensors") for i in range(2))
    assert all(np.array_equal(a[k], b[k]) for k in a), "a rerun of the same 2-rank run differs"
    assert train_losses(runs[0].stderr) == train_losses(runs[1].stderr)
    one = run("train", cfg, "--set", f"output={tmp_path / 'one'}", threads=1, check=0)
    # Other dropout masks, the same learning: the validation losses agree to within the noise.
    v1 = [m["loss"] for m in metrics(tmp_path / "one")]
    v2 = [m["loss"] for m in metrics(tmp_path / "two0")]
    assert len(v1) == len(v2) == 3
    assert np.abs(np.array(v1) - np.array(v2)).max() < 0.05, (v1, v2)
    # ...and the masks do differ from one process's (dropout is on).
    c = tensors(tmp_path / "one" / "last" / "model.safetensors")
    assert any(not np.allclose(a[k], c[k], rtol=1e-4, atol=1e-6) for k in a)


@pytest.mark.parametrize("first,then", [(2, 1), (1, 2)])
def test_a_checkpoint_resumes_with_another_number_of_ranks(first, then, tmp_path):
    # A schedule that does not depend on the run's length: the first part stops at max_steps 10.
    cfg = classify_config(tmp_path, train={"max_steps": 20, "epochs": 2, "schedule": "inverse_sqrt"})
    run("train", cfg, "--set", f"output={tmp_path / 'whole'}", threads=1, check=0)

    def train(ranks, *args):
        if ranks == 1:
            return run("train", *args, threads=1, check=0)
        return mpirun(ranks, "train", *args, check=0)

    # Stopped after 10 steps (max_steps), continued to 20 with the other number of ranks.
    train(first, cfg, "--set", f"output={tmp_path / 'split'}", "--set", "train.max_steps=10")
    res = train(then, "--resume", tmp_path / "split", "--set", "train.max_steps=20")
    assert "resuming from" in res.stderr and "at step 10" in res.stderr
    assert_same_parameters(tmp_path / "whole" / "last", tmp_path / "split" / "last")
    assert [m["step"] for m in metrics(tmp_path / "split")] == [m["step"] for m in metrics(tmp_path / "whole")]


def test_a_rank_that_fails_ends_every_rank_with_its_reason(tmp_path):
    cfg = classify_config(tmp_path)
    # Rank 1 is started with a configuration whose training file is missing (MPMD syntax).
    t0 = time.monotonic()
    res = subprocess.run([MPIRUN, *MPI_FLAGS, "-np", "1", str(GAZE), "train", str(cfg), ":",
                          "-np", "1", str(GAZE), "train", str(cfg), "--set", "data.train=/nonexistent.tsv"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode != 0
    assert time.monotonic() - t0 < 60
    lines = [line for line in res.stderr.splitlines() if line.startswith("gaze: rank")]
    assert lines and lines[0].startswith("gaze: rank 1 of 2: error:") and "/nonexistent.tsv" in lines[0], res.stderr


def test_ranks_that_see_different_data_refuse_to_train(tmp_path):
    cfg = classify_config(tmp_path)
    other = tmp_path / "other.tsv"
    other.write_text("\n".join((tmp_path / "train.tsv").read_text().splitlines()[:300]) + "\n")
    res = subprocess.run([MPIRUN, *MPI_FLAGS, "-np", "1", str(GAZE), "train", str(cfg), ":",
                          "-np", "1", str(GAZE), "train", str(cfg), "--set", f"data.train={other}"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode != 0
    assert "sees other training data or another model than rank 0" in res.stderr, res.stderr


def checkpoint_step(folder):
    b = (folder / "training.safetensors").read_bytes()
    header = json.loads(b[8:8 + struct.unpack("<Q", b[:8])[0]])
    return json.loads(header["__metadata__"]["training"])["progress"]["step"]


def rank_pids(mpirun_pid):
    """The pids of mpirun's ranks, by rank."""
    out = {}
    for pid in subprocess.run(["ps", "-o", "pid=", "--ppid", str(mpirun_pid)], capture_output=True,
                              text=True).stdout.split():
        try:
            env = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
        except OSError:
            continue
        for kv in env:
            if kv.startswith(b"OMPI_COMM_WORLD_RANK="):
                out[int(kv.split(b"=")[1])] = int(pid)
    return out


def start_long_run(tmp_path, eval_every=10, steps=0):
    """A 2-rank run of 10,000 steps, once it has passed `steps` steps (or has a checkpoint). Its
    output goes to files (tmp_path/err), which never fill up as a pipe nobody reads does."""
    cfg = classify_config(tmp_path, train={"max_steps": 0, "epochs": 400, "eval_every": eval_every})
    env = dict(os.environ)
    env.pop("GAZE_NUM_THREADS", None)
    with open(tmp_path / "out", "w") as out, open(tmp_path / "err", "w") as err:
        proc = subprocess.Popen([MPIRUN, *MPI_FLAGS, "-np", "2", str(GAZE), "train", str(cfg)],
                                stdout=out, stderr=err, env=env)

    def started():
        if steps:  # progress lines: "epoch 1/400 step 12/10000 loss ..."
            done = [int(line.split(" step ")[1].split("/")[0])
                    for line in (tmp_path / "err").read_text().splitlines() if " step " in line]
            return done and done[-1] >= steps
        return (tmp_path / "run" / "last" / "training.safetensors").exists()

    deadline = time.monotonic() + 120
    while not started():
        assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "err").read_text()
        time.sleep(0.1)
    return proc


def finished(proc, tmp_path):
    proc.wait(timeout=60)  # no rank may hang
    return (tmp_path / "err").read_text()


def test_a_rank_that_dies_ends_the_run_and_the_last_checkpoint_survives(tmp_path):
    proc = start_long_run(tmp_path)
    pids = rank_pids(proc.pid)
    assert sorted(pids) == [0, 1]
    os.kill(pids[1], signal.SIGKILL)
    err = finished(proc, tmp_path)
    assert proc.returncode != 0
    assert "rank 1" in err and "signal 9" in err, err[-2000:]
    # The last checkpoint is whole: evaluation reads it, training resumes from it.
    run("eval", "--model", tmp_path / "run" / "last", "--data", tmp_path / "dev.tsv", threads=1, check=0)
    res = run("train", "--resume", tmp_path / "run", "--set", "train.epochs=1", threads=1)
    assert "resuming from" in res.stderr, res.stderr


def test_ctrl_c_on_mpirun_saves_a_resumable_checkpoint(tmp_path):
    # No validation (and so no checkpoint) before step 100,000: a checkpoint can only come from the
    # interruption.
    proc = start_long_run(tmp_path, eval_every=100000, steps=50)
    assert not (tmp_path / "run" / "last").exists()
    proc.send_signal(signal.SIGINT)  # what Ctrl-C sends mpirun (its ranks get SIGTERM from it)
    err = finished(proc, tmp_path)
    assert proc.returncode != 0
    # mpirun may stop forwarding the ranks' output once it is shutting down; the checkpoint tells.
    assert (tmp_path / "run" / "last").exists(), err[-1500:]
    step = checkpoint_step(tmp_path / "run" / "last")
    assert step >= 50
    res = mpirun(2, "train", "--resume", tmp_path / "run", "--set", f"train.max_steps={step + 5}", check=0)
    assert f"at step {step}" in res.stderr, res.stderr
    assert metrics(tmp_path / "run")[-1]["step"] == step + 5


def test_a_hostfile_places_the_ranks(tmp_path):
    """The several-machine launch (a hostfile, the TCP interface named), with this machine as the
    only host: the ranks talk over TCP on the loopback interface instead of shared memory."""
    cfg = classify_config(tmp_path)
    (tmp_path / "hosts").write_text("localhost slots=2\n")
    res = subprocess.run([MPIRUN, "--allow-run-as-root", "--hostfile", str(tmp_path / "hosts"), "-np", "2",
                          "--mca", "btl", "self,tcp", "--mca", "btl_tcp_if_include", "lo",
                          str(GAZE), "train", str(cfg)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    one = run("train", cfg, "--set", f"output={tmp_path / 'one'}", threads=1, check=0)
    assert_same_parameters(tmp_path / "one" / "last", tmp_path / "run" / "last")
