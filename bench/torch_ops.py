"""torch 1.13's side of the op benchmarks: the same ops and sizes as gaze_bench, printed as JSON.

Run by compare_torch.py in a fresh process per setting (thread count, OPENBLAS_CORETYPE), because those
settings only take effect at start-up.
"""
import json
import os
import sys
import time

import torch
import torch.nn.functional as F


def best_time(fn, min_time=0.5, repeats=5):
    """Best mean time per call over `repeats` runs of at least min_time / repeats seconds each."""
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        n, t0 = 0, time.perf_counter()
        while True:
            fn()
            n += 1
            el = time.perf_counter() - t0
            if el >= min_time / repeats:
                break
        best = min(best, el / n)
    return best


def main():
    threads = int(sys.argv[1])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    out = {}
    with torch.no_grad():
        n = 1024
        a, b = torch.randn(n, n), torch.randn(n, n)
        t = best_time(lambda: torch.matmul(a, b), min_time=1.0)
        out["matmul"] = {"seconds": t, "GFLOP/s": 2 * n**3 / t * 1e-9}
        rows, cols = 4096, 1024
        x = torch.randn(rows, cols)
        t = best_time(lambda: F.softmax(x, -1))
        out["softmax"] = {"seconds": t, "GB/s": 8 * rows * cols / t * 1e-9}
        w, bias = torch.randn(cols), torch.randn(cols)
        t = best_time(lambda: F.layer_norm(x, (cols,), w, bias))
        out["layer_norm"] = {"seconds": t, "GB/s": 8 * rows * cols / t * 1e-9}
    out["blas"] = blas_libraries()
    print(json.dumps(out))


def blas_libraries():
    """The BLAS shared objects this process has mapped (torch's GEMM goes through libblas.so.3, which
    Debian's alternatives point at OpenBLAS, BLIS or the slow reference BLAS)."""
    libs = set()
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split()[-1]
            if "blas" in path.lower() or "blis" in path.lower() or "mkl" in path.lower():
                libs.add(path)
    return sorted({os.path.realpath(p) for p in libs})


if __name__ == "__main__":
    main()
