"""`make bench`: gaze beside torch 1.13, same ops, sizes and thread counts, in one run.

For each thread count (1 and 2) it runs bench/gaze_bench (Google Benchmark) and bench/torch_ops.py, and
prints one table: gaze's figure, torch's, the ratio gaze/torch (higher is better for gaze) and the
fraction of the machine's fp32 FMA peak measured in the same run.

torch gets its best settings: threads set explicitly (torch.set_num_threads and OPENBLAS_NUM_THREADS),
OMP_WAIT_POLICY=PASSIVE at 2 threads, and for each op the faster of OPENBLAS_CORETYPE=Haswell (what
this environment forces) and SkylakeX (OpenBLAS's AVX-512 kernels); the table says which won.
gaze runs with the environment as it is: its speed must not depend on OPENBLAS_CORETYPE.
"""
import json
import os
import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent
PYTHON = "/usr/bin/python3"  # Debian's, with python3-torch


def run_gaze(build, threads):
    env = dict(os.environ, GAZE_NUM_THREADS=str(threads))
    if threads > 1:
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    res = subprocess.run([str(build / "bench" / "gaze_bench"), "--benchmark_format=json",
                          "--benchmark_repetitions=3", "--benchmark_report_aggregates_only=false"],
                         env=env, check=True, capture_output=True, text=True)
    data = json.loads(res.stdout)
    best = {}
    for b in data["benchmarks"]:
        if b.get("run_type") != "iteration":
            continue
        name = b["run_name"].split("/")[0].removeprefix("BM_")
        key = {"Matmul": "matmul", "Softmax": "softmax", "LayerNorm": "layer_norm", "FmaPeak": "peak"}[name]
        metric = "GFLOP/s" if "GFLOP/s" in b else "GB/s"
        value = b[metric] if key == "peak" else b[metric] * 1e-9  # rate counters are per second
        best[key] = max(best.get(key, 0.0), value)
    return best, data["context"].get("gaze_simd", "?")


def run_torch(threads, coretype):
    env = dict(os.environ, OPENBLAS_CORETYPE=coretype, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    if threads > 1:
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    res = subprocess.run([PYTHON, str(HERE / "torch_ops.py"), str(threads)], env=env, check=True,
                         capture_output=True, text=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main():
    build = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "build").resolve()
    rows = []
    for threads in (1, 2):
        gaze, simd = run_gaze(build, threads)
        torch_runs = {ct: run_torch(threads, ct) for ct in ("Haswell", "SkylakeX")}
        peak = gaze["peak"]
        for op, unit in (("matmul", "GFLOP/s"), ("softmax", "GB/s"), ("layer_norm", "GB/s")):
            ct, tr = max(torch_runs.items(), key=lambda kv: kv[1][op][unit])
            g, t = gaze[op], tr[op][unit]
            frac = f"{100 * g / peak:5.1f}%" if unit == "GFLOP/s" else "  -  "
            rows.append((threads, op, unit, g, t, g / t, frac, ct))
        rows.append((threads, "fma peak", "GFLOP/s", peak, float("nan"), float("nan"), "100.0%", f"gaze simd {simd}"))
    print()
    print("gaze vs torch 1.13 (best of repeated runs; higher is better; ratio = gaze / torch)")
    print(f"{'thr':>3}  {'op':<11} {'unit':<8} {'gaze':>9} {'torch':>9} {'ratio':>7}  {'of peak':>7}  torch best with")
    for thr, op, unit, g, t, r, frac, note in rows:
        ts = f"{t:9.1f}" if t == t else f"{'':>9}"
        rs = f"{r:6.2f}x" if r == r else f"{'':>7}"
        note = f"OPENBLAS_CORETYPE={note}" if note in ("Haswell", "SkylakeX") else note
        print(f"{thr:>3}  {op:<11} {unit:<8} {g:9.1f} {ts} {rs}  {frac:>7}  {note}")
    print("\nsoftmax and layer_norm: [4096, 1024] float32, 8 bytes of traffic per element; matmul: 1024^3.")
    print("torch: torch.set_num_threads(thr), OPENBLAS_NUM_THREADS=thr, OMP_WAIT_POLICY=PASSIVE at 2 threads, and the")
    print("faster of OPENBLAS_CORETYPE=Haswell/SkylakeX per op. gaze: GAZE_NUM_THREADS=thr, environment otherwise as is.")


if __name__ == "__main__":
    main()
