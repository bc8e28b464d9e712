"""torch 1.13's side of the attention benchmarks, printed as JSON (run by compare_torch.py in a fresh
process per thread count and ATEN_CPU_CAPABILITY setting).

    torch_attention.py speed THREADS   composed attention (matmul -> softmax -> matmul) and the private
                                       F._scaled_dot_product_attention, forward and forward+backward,
                                       and nn.MultiheadAttention inference, B=8 H=8 D=64
    torch_attention.py memory T        peak resident memory of the composed forward+backward at B=1,
                                       H=8, D=64 beyond the inputs (torch keeps no allocator counters)
"""
import json
import math
import resource
import sys
import time

import torch
import torch.nn.functional as F


def best_time(fn, min_time, max_reps=1000):
    fn()  # warm-up
    best, spent, reps = float("inf"), 0.0, 0
    while reps < max_reps and (spent < min_time or reps == 0):
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        best, spent, reps = min(best, dt), spent + dt, reps + 1
    return best


def composed(q, k, v):
    s = (q @ k.transpose(-1, -2)) * (1 / math.sqrt(q.shape[-1]))
    return torch.softmax(s, -1) @ v


def private_sdpa(q, k, v):
    return F._scaled_dot_product_attention(q, k, v, None, 0.0, False, False)[0]


def speed(threads):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    out = {}
    for T in (128, 512, 2048):
        q, k, v, up = (torch.randn(8, 8, T, 64) for _ in range(4))
        min_time = 1.0 if T < 2048 else 0.0  # T=2048: one timed run after the warm-up
        res = {}
        for name, fn in (("composed", composed), ("private_sdpa", private_sdpa)):
            with torch.no_grad():
                res[f"{name}_fwd"] = best_time(lambda: fn(q, k, v), min_time)
            qg, kg, vg = (x.clone().requires_grad_() for x in (q, k, v))

            def fwd_bwd():
                fn(qg, kg, vg).backward(up)
                qg.grad = kg.grad = vg.grad = None

            res[f"{name}_fwdbwd"] = best_time(fwd_bwd, min_time)
        mha = torch.nn.MultiheadAttention(512, 8, batch_first=True).eval()
        x = torch.randn(8, T, 512)
        with torch.no_grad():
            res["mha_fwd"] = best_time(lambda: mha(x, x, x, need_weights=False), min_time)
        out[str(T)] = res
    return out


def memory(T):
    torch.set_num_threads(1)
    q, k, v, up = (torch.randn(1, 8, T, 64) for _ in range(4))
    q.requires_grad_(), k.requires_grad_(), v.requires_grad_()
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    composed(q, k, v).backward(up)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"extra_MiB": (peak - base) / 1024}


if __name__ == "__main__":
    mode, arg = sys.argv[1], int(sys.argv[2])
    print(json.dumps(speed(arg) if mode == "speed" else memory(arg)))
