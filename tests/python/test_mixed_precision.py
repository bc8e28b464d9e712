"""Mixed-precision training (train.precision: bf16, gaze.autocast): linear layers multiply bfloat16-rounded
operands with float32 accumulation, forward and backward, checked against float64 products of the same
values rounded by torch; everything else stays float32. A bf16 run learns real sentences as well as an
fp32 one, and a CPU without the instructions trains in fp32 and says so."""
import json
import os
import subprocess

import numpy as np
import pytest
import torch

import gaze
from cli_helpers import GAZE, run, sentiment_rows, write_config, write_tsv


def bf16(a):
    """float64 values of a rounded to bfloat16 (nearest, ties to even), as torch rounds."""
    return torch.tensor(np.asarray(a, np.float32)).bfloat16().double().numpy()


def linear_case(seed=0):
    r = np.random.default_rng(seed)
    x = r.standard_normal((5, 7, 33)).astype(np.float32)
    w = r.standard_normal((20, 33)).astype(np.float32)
    b = r.standard_normal(20).astype(np.float32)
    up = r.standard_normal((5, 7, 20)).astype(np.float32)
    return x, w, b, up


def gaze_linear(x, w, b, up, autocast):
    gx, gw, gb = (gaze.tensor(a, requires_grad=True) for a in (x, w, b))
    with gaze.autocast(enabled=autocast):
        y = gaze.nn.functional.linear(gx, gw, gb)
    y.backward(gaze.tensor(up))  # outside the region: the backward keeps the forward's precision
    return y.detach().numpy(), gx.grad.numpy(), gw.grad.numpy(), gb.grad.numpy()


@pytest.fixture(scope="module")
def bf16_cpu():
    if not gaze.precision_supported("bf16"):
        pytest.skip("this CPU has no bf16 matrix instructions: autocast is fp32 here")


def test_linear_multiplies_bf16_operands_with_fp32_accumulation(bf16_cpu):
    x, w, b, up = linear_case()
    y, dx, dw, db = gaze_linear(x, w, b, up, True)
    xr, wr, ur = bf16(x), bf16(w), bf16(up)
    ref_y = xr @ wr.T + b
    ref_dx = ur @ wr
    ref_dw = ur.reshape(-1, 20).T @ xr.reshape(-1, 33)
    for got, ref in ((y, ref_y), (dx, ref_dx), (dw, ref_dw)):
        assert np.abs(got - ref).max() <= 2e-6 * np.abs(ref).max() * 33
    assert np.array_equal(db, up.sum((0, 1), dtype=np.float32)) or np.allclose(db, up.sum((0, 1)), rtol=1e-6)
    # Really bf16: the fp32 product differs by the rounding of the operands.
    assert np.abs(y - (x @ w.T + b)).max() > 1e-3
    # Outside the region (and after it) linear is fp32 again.
    y32, dx32, _, _ = gaze_linear(x, w, b, up, False)
    assert np.abs(y32 - (x.astype(np.float64) @ w.T + b)).max() < 1e-4
    with pytest.raises(ValueError, match="bf16"):
        gaze.autocast(dtype="int8")
    # Entered twice, one object restores what was before each entry; torch's spelling works.
    ac = gaze.autocast(dtype="bfloat16")
    with ac:
        with ac:
            pass
        assert gaze._C._autocast_precision() == "bf16"
    assert gaze._C._autocast_precision() == "fp32"
    with gaze.autocast(device_type="cpu", dtype=torch.bfloat16):
        assert gaze._C._autocast_precision() == "bf16"


def test_a_transformer_layer_under_autocast_stays_close_to_fp32(bf16_cpu):
    gaze.manual_seed(0)
    layer = gaze.nn.TransformerEncoderLayer(64, 4, 128, dropout=0.0, batch_first=True)
    r = np.random.default_rng(1)
    x = r.standard_normal((2, 10, 64)).astype(np.float32)
    up = gaze.tensor(r.standard_normal((2, 10, 64)).astype(np.float32))

    def step(autocast):
        for p in layer.parameters():
            p.grad = None
        gx = gaze.tensor(x, requires_grad=True)
        with gaze.autocast(enabled=autocast):
            y = layer(gx)
        y.backward(up)
        return y.detach().numpy(), gx.grad.numpy(), [p.grad.numpy().copy() for p in layer.parameters()]

    y16, dx16, g16 = step(True)
    y32, dx32, g32 = step(False)
    rel = lambda a, b: np.abs(a - b).max() / np.abs(b).max()  # noqa: E731
    assert 1e-4 < rel(y16, y32) < 3e-2 and rel(dx16, dx32) < 3e-2
    assert all(rel(a, b) < 5e-2 for a, b in zip(g16, g32))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mixed")
    return tmp, write_tsv(tmp / "data.tsv", sentiment_rows()[:1500])


def train(tmp, data, name, precision, env=None):
    cfg = write_config(tmp / f"{name}.yaml", data, "", tmp / name,
                       data={"split": "modulo10", "dev": "", "max_length": 48},
                       model={"d_model": 64, "nhead": 2, "num_layers": 2, "dim_feedforward": 128},
                       train={"epochs": 4, "precision": precision})
    res = subprocess.run([str(GAZE), "train", str(cfg)], capture_output=True, text=True, timeout=600,
                         env=dict(os.environ, GAZE_NUM_THREADS="2", **(env or {})))
    assert res.returncode == 0, res.stderr
    lines = [x for x in (json.loads(s) for s in (tmp / name / "metrics.jsonl").read_text().splitlines())
             if "train_loss" not in x]  # the validations
    return res, lines


def test_bf16_training_learns_as_well_as_fp32(bf16_cpu, data):
    tmp, path = data
    _, fp32 = train(tmp, path, "fp32", "fp32")
    _, bf16_run = train(tmp, path, "bf16", "bf16")
    # The same batches and initial weights; the rounding changes the path a little.
    assert max(v["accuracy"] for v in bf16_run) >= max(v["accuracy"] for v in fp32) - 0.04 >= 0.65
    assert bf16_run[0]["loss"] != fp32[0]["loss"]


def test_a_cpu_without_bf16_trains_in_fp32_and_says_so(data):
    tmp, path = data
    res, lines = train(tmp, path, "nobf16", "bf16", env={"ONEDNN_MAX_CPU_ISA": "AVX512_CORE"})
    assert "train.precision bf16:" in res.stderr and "training in fp32" in res.stderr
    assert len(lines) == 4
