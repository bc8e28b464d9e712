"""Reduced-precision inference end to end on a classifier trained on real sentences (UCI sentiment):
bf16 and int8 predictions agree with fp32, `gaze quantize` writes a smaller folder that predicts
exactly as the in-memory conversion does (bit for bit), every command and gaze.load take
--precision, a CPU without the instructions falls back to fp32 with one line on stderr, and damaged
quantized folders are refused with a message."""
import json
import os
import shutil
import struct
import subprocess

import pytest

import gaze
from cli_helpers import GAZE, run, sentiment_rows, write_config, write_tsv
from serve_helpers import Server

LOWP = ("bf16", "int8")
# What oneDNN reports when told to pretend the CPU has AVX-512 without BF16 or VNNI.
NO_LOWP_ENV = {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE"}


def cpu_has(path, precision):
    """Whether this CPU runs `precision` in hardware (gaze falls back to fp32 when not)."""
    return gaze.load(path, precision=precision).precision == precision


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A classifier trained on 1,500 sentences; the other 1,500 are the held-out texts."""
    tmp = tmp_path_factory.mktemp("precision")
    rows = sentiment_rows()
    train = write_tsv(tmp / "train.tsv", rows[:1500])
    held = write_tsv(tmp / "held.tsv", rows[1500:])
    cfg = write_config(tmp / "run.yaml", train, "", tmp / "run",
                       data={"split": "modulo10", "dev": "", "max_length": 48},
                       model={"d_model": 64, "nhead": 2, "num_layers": 2, "dim_feedforward": 128},
                       train={"epochs": 4})
    run("train", cfg, threads=2, check=0)
    return tmp, [r[2] for r in rows[1500:]], held


def predictions(path, texts, precision=None):
    return gaze.load(path, precision=precision)(texts)


@pytest.mark.parametrize("precision", LOWP)
def test_reduced_precision_agrees_with_fp32_on_held_out_sentences(model, precision):
    tmp, texts, _ = model
    if not cpu_has(tmp / "run", precision):
        pytest.skip(f"this CPU has no {precision} instructions")
    ref = predictions(tmp / "run", texts)
    got = predictions(tmp / "run", texts, precision)
    same = sum(a["label"] == b["label"] for a, b in zip(ref, got))
    assert same >= 0.99 * len(texts), f"{precision}: {same}/{len(texts)} labels agree with fp32"
    # The scores move by the rounding only (bf16: 8 significant bits; int8: per-row scales).
    worst = max(abs(a["score"] - b["score"]) for a, b in zip(ref, got))
    assert 0 < worst < (0.05 if precision == "bf16" else 0.1), worst


def safetensors_header(path):
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    return json.loads(raw[8:8 + n])


@pytest.mark.parametrize("precision", LOWP)
def test_quantize_writes_a_smaller_folder_that_predicts_as_the_conversion_in_memory(model, precision):
    tmp, texts, _ = model
    out = tmp / f"q-{precision}"
    res = run("quantize", tmp / "run", "--out", out, "--precision", precision, check=0)
    assert f"in {precision}" in res.stdout
    for name in ("config.json", "task.json", "tokenizer.json", "labels.json", "model.safetensors"):
        assert (out / name).exists(), name
    header = safetensors_header(out / "model.safetensors")
    meta = header["__metadata__"]
    assert meta["precision"] == precision
    names = json.loads(meta["quantized"])
    # Smaller by 2 (bf16) or 3 (int8, less 4 bytes of scale per row) bytes per matrix element.
    elements = sum(header[n]["shape"][0] * header[n]["shape"][1] for n in names)
    rows = sum(header[n]["shape"][0] for n in names)
    saved = 2 * elements if precision == "bf16" else 3 * elements - 4 * rows
    src = (tmp / "run" / "best" / "model.safetensors").stat().st_size
    assert src - (out / "model.safetensors").stat().st_size >= 0.95 * saved > 0
    # Every matrix of the encoder and the head; embeddings and norms stay float32.
    assert "encoder.layers.0.self_attn.in_proj_weight" in names and "head.weight" in names
    assert not any("norm" in n or "embedding" in n for n in names)
    for n in names:
        assert header[n]["dtype"] == ("I8" if precision == "int8" else "BF16")
        if precision == "int8":
            assert header[n + "_scale"]["dtype"] == "F32"
    assert header["embedding.weight"]["dtype"] == "F32"

    loaded = gaze.load(out)
    assert loaded.precision == (precision if cpu_has(tmp / "run", precision) else "fp32")
    if cpu_has(tmp / "run", precision):
        # Bit for bit: the folder holds exactly the values the in-memory conversion multiplies by.
        assert loaded(texts[:200]) == predictions(tmp / "run", texts[:200], precision)
    # Quantizing again gives the same bytes; the folder itself cannot be quantized onto itself.
    run("quantize", tmp / "run", "--out", tmp / f"again-{precision}", "--precision", precision, check=0)
    assert (tmp / f"again-{precision}" / "model.safetensors").read_bytes() == \
        (out / "model.safetensors").read_bytes()
    res = run("quantize", tmp / "run", "--out", out, "--precision", precision, check=2)
    assert "already exists" in res.stderr
    res = run("quantize", out, "--out", out, "--overwrite", check=2)
    assert "the model folder itself" in res.stderr
    res = run("quantize", out, "--out", out / "inside", check=2)
    assert "inside the model folder" in res.stderr and not (out / "inside").exists()
    # The Python function writes the same folder.
    info = gaze.quantize(tmp / "run", tmp / f"py-{precision}", precision)
    assert info["matrices"] == len(names) and info["bytes_after"] < info["bytes_before"]
    assert (tmp / f"py-{precision}" / "model.safetensors").read_bytes() == \
        (out / "model.safetensors").read_bytes()


@pytest.mark.parametrize("precision", LOWP)
def test_a_quantized_folder_makes_the_float_values_of_its_matrices_only_when_read(model, precision):
    """Loading a quantized folder keeps its matrices as int8 values and scales (or bf16 bits) only:
    their float32 values (four bytes a weight) are made if something reads them, and are then
    q * scale (or the bf16 numbers) exactly."""
    import gc

    import numpy as np
    tmp, texts, _ = model
    out = tmp / f"q-{precision}"
    if not out.exists():
        run("quantize", tmp / "run", "--out", out, "--precision", precision, check=0)
    header = safetensors_header(out / "model.safetensors")
    names = json.loads(header["__metadata__"]["quantized"])
    floats = 4 * sum(header[n]["shape"][0] * header[n]["shape"][1] for n in names)

    def used():
        gc.collect()
        return gaze.allocator_stats()["bytes_in_use"]

    quantized = gaze.models.load_model(str(out))
    # Predicting (reduced-precision products; with no such instructions, their fp32 fallback)
    # reads only the stored values: it keeps no more memory than the same model converted in memory.
    kept = {}
    for label, pipeline in (("in memory", gaze.load(tmp / "run", precision=precision)),
                            ("folder", gaze.load(out))):
        start = used()
        pipeline(texts[:50])
        kept[label] = used() - start
    if pipeline.precision == precision:
        assert kept["folder"] - kept["in memory"] < 0.5 * floats, kept
    # Reading a weight makes its float values, which loading had not, from the file's values.
    raw = (out / "model.safetensors").read_bytes()
    base = 8 + struct.unpack("<Q", raw[:8])[0]

    def stored(name, dtype):
        b, e = header[name]["data_offsets"]
        return np.frombuffer(raw[base + b:base + e], dtype=dtype).reshape(header[name]["shape"])

    state = quantized.state_dict()
    start = used()
    for n in names:
        if precision == "int8":
            want = stored(n, np.int8).astype(np.float32) * stored(n + "_scale", np.float32)[:, None]
        else:
            want = (stored(n, np.uint16).astype(np.uint32) << 16).view(np.float32)
        assert np.array_equal(state[n].numpy(), want), n
    assert used() - start >= 0.95 * floats


def test_every_command_takes_precision(model):
    tmp, texts, held = model
    if not cpu_has(tmp / "run", "int8"):
        pytest.skip("this CPU has no int8 instructions")
    lines = "\n".join(texts[:20]) + "\n"
    fp32 = [json.loads(x) for x in run("predict", "--model", tmp / "run", stdin=lines, check=0).stdout.splitlines()]
    int8 = [json.loads(x) for x in
            run("predict", "--model", tmp / "run", "--precision", "int8", stdin=lines, check=0).stdout.splitlines()]
    assert len(int8) == 20 and int8 == predictions(tmp / "run", texts[:20], "int8")
    assert sum(a["label"] == b["label"] for a, b in zip(fp32, int8)) >= 19
    emb = run("embed", "--model", tmp / "run", "--precision", "bf16", stdin="good\n", check=0)
    assert len(json.loads(emb.stdout)["embedding"]) == 64
    reports = {p: json.loads(run("eval", "--model", tmp / "run", "--data", held, "--report", "json",
                                 "--precision", p, check=0).stdout) for p in ("fp32", "int8")}
    assert abs(reports["int8"]["accuracy"] - reports["fp32"]["accuracy"]) <= 0.01, reports
    ex = run("explain", "--model", tmp / "run", "--input", "not bad at all", "--out", tmp / "ex",
             "--format", "json", "--precision", "int8", check=0)
    assert (tmp / "ex" / "attention.json").exists(), ex.stderr
    res = run("predict", "--model", tmp / "run", "--precision", "fp16", stdin="x\n", check=2)
    assert "fp16" in res.stderr
    with pytest.raises(ValueError, match="precision"):
        gaze.load(tmp / "run", precision="int4")


def test_without_the_instructions_it_runs_fp32_and_says_so_once(model):
    tmp, texts, _ = model
    env = dict(os.environ, **NO_LOWP_ENV)
    for precision in LOWP:
        res = subprocess.run([str(GAZE), "predict", "--model", str(tmp / "run"), "--precision", precision],
                             input="\n".join(texts[:5]).encode(), capture_output=True, env=env)
        assert res.returncode == 0, res.stderr
        notes = res.stderr.decode().splitlines()
        assert len(notes) == 1 and f"precision {precision} needs hardware support" in notes[0], notes
        assert "running fp32" in notes[0]
        got = [json.loads(x) for x in res.stdout.decode().splitlines()]
        assert got == predictions(tmp / "run", texts[:5])
    # A quantized folder too: its dequantized values in float32.
    out = tmp / "fallback-int8"
    run("quantize", tmp / "run", "--out", out, check=0)
    res = subprocess.run([str(GAZE), "predict", "--model", str(out)], input=texts[0].encode(),
                         capture_output=True, env=env)
    assert res.returncode == 0 and b"running fp32" in res.stderr
    assert json.loads(res.stdout) == predictions(out, texts[:1], "fp32")[0]


def test_damaged_quantized_folders_are_refused_with_a_message(model, tmp_path):
    tmp, _, _ = model
    out = tmp_path / "q"
    run("quantize", tmp / "run", "--out", out, check=0)
    path = out / "model.safetensors"
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]

    def write(h, d=data):
        text = json.dumps(h).encode()
        text += b" " * ((8 - len(text) % 8) % 8)
        path.write_bytes(struct.pack("<Q", len(text)) + text + d)

    name = "head.weight"
    # A scale so large that the weights it stands for overflow float32.
    h = dict(header)
    s_lo, _ = header[name + "_scale"]["data_offsets"]
    write(h, data[:s_lo] + struct.pack("<f", 3e37) + data[s_lo + 4:])
    res = run("predict", "--model", out, stdin="x\n", check=2)
    assert name + "_scale" in res.stderr and "finite" in res.stderr
    # A weight value of -128 (outside the symmetric range).
    lo, _ = header[name]["data_offsets"]
    bad = bytearray(data)
    bad[lo] = 0x80
    write(header, bytes(bad))
    res = run("predict", "--model", out, stdin="x\n", check=2)
    assert name in res.stderr and "[-127, 127]" in res.stderr
    # Its scales missing from the list of tensors.
    h = dict(header)
    del h[name + "_scale"]
    write(h)
    res = run("predict", "--model", out, stdin="x\n", check=2)
    assert name + "_scale" in res.stderr
    # A metadata list that is not JSON, a precision that does not exist, a name that is no matrix.
    for meta, expect in (({"quantized": "[oops"}, "JSON list"), ({"precision": "int4"}, "int4"),
                         ({"quantized": json.dumps(["embedding.weightx"])}, "embedding.weightx"),
                         ({"quantized": json.dumps([name, name])}, "listed twice")):
        h = dict(header)
        h["__metadata__"] = {**header["__metadata__"], **meta}
        write(h)
        res = run("predict", "--model", out, stdin="x\n", check=2)
        assert expect in res.stderr, res.stderr
    shutil.rmtree(out)


def test_the_server_runs_the_precision_it_is_given(model):
    tmp, texts, _ = model
    if not cpu_has(tmp / "run", "int8"):
        pytest.skip("this CPU has no int8 instructions")
    server = Server({"m": tmp / "run"}, "--precision", "int8")
    try:
        status, body = server.get("/v1/models")
        assert status == 200 and body["models"][0]["precision"] == "int8", body
        status, _, out = server.post("/v1/models/m/predict", {"inputs": texts[:8]})
        assert status == 200 and out == predictions(tmp / "run", texts[:8], "int8")
    finally:
        assert server.stop() == 0
