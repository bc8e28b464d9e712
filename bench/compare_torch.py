"""`make bench`: gaze beside torch 1.13, same ops, sizes and thread counts, in one run.

For each thread count (1 and 2) it runs bench/gaze_bench (Google Benchmark) and bench/torch_ops.py, and
prints one table: gaze's figure, torch's, the ratio gaze/torch (higher is better for gaze) and the
fraction of the machine's fp32 FMA peak measured in the same run.

torch gets its best settings: threads set explicitly (torch.set_num_threads and OPENBLAS_NUM_THREADS),
OMP_WAIT_POLICY=PASSIVE at 2 threads, and for each op the fastest of OPENBLAS_CORETYPE=Haswell (what
this environment forces) and SkylakeX (OpenBLAS's AVX-512 kernels), each with and without transparent
huge pages for glibc's heap (torch_env); the table says which won.
gaze runs with the environment as it is: its speed must not depend on OPENBLAS_CORETYPE.
"""
import json
import os
import re
import pathlib
import statistics
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
PYTHON = "/usr/bin/python3"  # Debian's, with python3-torch


def run_gaze(build, threads, bench_filter, passes=3):
    """gaze_bench at `threads`: {benchmark name: counters of its best repetition}, plus the SIMD target.
    The repetitions (three unless `passes` says otherwise) are passes over every selected benchmark, not
    back-to-back runs of each: on a shared machine a slow spell then spreads over all of them instead of
    deciding one ratio."""
    # gaze runs one pool (oneDNN shares it), so it keeps OpenMP's default wait policy.
    env = dict(os.environ, GAZE_NUM_THREADS=str(threads))
    runs = []
    for _ in range(passes):
        res = subprocess.run([str(build / "bench" / "gaze_bench"), "--benchmark_format=json",
                              f"--benchmark_filter={bench_filter}"],
                             env=env, check=True, capture_output=True, text=True)
        runs.append(json.loads(res.stdout))
    data = runs[0]
    best = {}
    for b in (b for run in runs for b in run["benchmarks"]):
        if b.get("run_type") != "iteration" or b.get("error_occurred"):  # skipped: no such hardware
            continue
        name = "/".join(p for p in b["run_name"].split("/") if not p.startswith(("min_time", "iterations")))
        name = name.removeprefix("BM_")
        value = {"GFLOP/s": b.get("GFLOP/s", 0) * (1 if name == "FmaPeak" else 1e-9), "GB/s": b.get("GB/s", 0) * 1e-9,
                 "seconds": b["real_time"] * {"ms": 1e-3, "us": 1e-6, "ns": 1e-9, "s": 1}[b["time_unit"]]}
        if "best_s" in b:  # benchmarks that keep their fastest call (as torch_attention.py does)
            value["seconds"] = b["best_s"]
        value.update({k: b[k] for k in ("extra_MiB", "results_MiB", "workspace_MiB") if k in b})
        # The fastest repetition; for the peak, the highest rate (its time covers five trials, of
        # which the rate keeps the best).
        key = (lambda v: -v["GFLOP/s"]) if name == "FmaPeak" else (lambda v: v["seconds"])
        if name not in best or key(value) < key(best[name]):
            best[name] = value
    return best, data["context"].get("gaze_simd", "?")


def torch_env(threads, coretype, thp):
    """torch's environment at `threads`. With thp, glibc.malloc.hugetlb=1 has glibc ask for transparent huge
    pages for what torch allocates: torch hands large tensors back to the kernel on free, so each call
    faults their pages in again, and on this project's VMs a 4 KiB fault costs ~11 us. Without it torch's
    composed attention at T=512 ran at 6 GFLOP/s instead of 53 and its classifier training step took 1.52
    s instead of 0.82 (gaze maps its own large blocks on huge pages, see core/allocator.cpp); its
    inference was a little faster without."""
    env = dict(os.environ, OPENBLAS_CORETYPE=coretype, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    if thp:
        env["GLIBC_TUNABLES"] = ":".join(t for t in (env.get("GLIBC_TUNABLES"), "glibc.malloc.hugetlb=1") if t)
    if threads > 1:
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    return env


# The settings torch is tried in (torch_env): the fastest of them is its figure.
TORCH_SETTINGS = [(ct, thp) for ct in ("Haswell", "SkylakeX") for thp in (False, True)]


def run_torch(threads, coretype, script="torch_ops.py", thp=False, args=()):
    """Runs one of the torch scripts at `threads` in one of its settings; returns its JSON."""
    env = torch_env(threads, coretype, thp)
    res = subprocess.run([PYTHON, str(HERE / script), str(threads), *args], env=env, check=True,
                         capture_output=True, text=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


# torch's matmul below this fraction of the measured fp32 peak means torch is not running on an optimized
# BLAS (or not using the machine well): its figures are then no reference, and the tables say so.
VALID_FRACTION = 0.5
INVALID = []  # (threads, torch's matmul fraction of peak) where torch fell below VALID_FRACTION


def reference_note():
    if not INVALID:
        return ""
    worst = min(f for _, f in INVALID)
    return (f"  [NOT A VALID REFERENCE: torch's matmul ran at {100 * worst:.0f}% of peak (< {100 * VALID_FRACTION:.0f}%); "
            "install libopenblas0-pthread (scripts/install-deps bench)]")


def blas_name(path):
    p = path.lower()
    for key, name in (("openblas", "OpenBLAS"), ("blis", "BLIS"), ("mkl", "MKL"), ("atlas", "ATLAS")):
        if key in p:
            return name
    return "the reference BLAS (netlib, unoptimized)" if "/blas/libblas" in p else "unknown BLAS"


def op_table(build):
    rows = []
    peaks = {}
    blas = set()
    for threads in (1, 2):
        g, simd = run_gaze(build, threads, "FmaPeak|Matmul|Softmax|LayerNorm")
        torch_runs = {(ct, thp): run_torch(threads, ct, thp=thp) for ct in ("Haswell", "SkylakeX")
                      for thp in (False, True)}
        peak = peaks[threads] = g["FmaPeak"]["GFLOP/s"]
        for r in torch_runs.values():
            blas.update(r.get("blas", []))
        torch_matmul = max(r["matmul"]["GFLOP/s"] for r in torch_runs.values())
        if torch_matmul < VALID_FRACTION * peak:
            INVALID.append((threads, torch_matmul / peak))
        for op, key, unit in (("matmul", "Matmul/1024", "GFLOP/s"), ("softmax", "Softmax/4096/1024", "GB/s"),
                              ("layer_norm", "LayerNorm/4096/1024", "GB/s")):
            (ct, thp), tr = max(torch_runs.items(), key=lambda kv: kv[1][op][unit])
            gv, tv = g[key][unit], tr[op][unit]
            frac = f"{100 * gv / peak:5.1f}%" if unit == "GFLOP/s" else "  -  "
            note = f"OPENBLAS_CORETYPE={ct}" + (", huge pages" if thp else "")
            if unit == "GFLOP/s":
                note += f"; torch at {100 * tv / peak:.1f}% of peak"
            rows.append((threads, op, unit, gv, tv, gv / tv, frac, note))
        rows.append((threads, "fma peak", "GFLOP/s", peak, float("nan"), float("nan"), "100.0%", f"gaze simd {simd}"))
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    print(f"CPU: {cpu}, {os.cpu_count()} cores")
    print("torch's BLAS: " + ("; ".join(f"{blas_name(b)} ({b})" for b in sorted(blas)) or "none mapped"))
    print()
    print("Ops: gaze vs torch 1.13 (best of repeated runs; higher is better; ratio = gaze / torch)" + reference_note())
    print(f"{'thr':>3}  {'op':<11} {'unit':<8} {'gaze':>9} {'torch':>9} {'ratio':>7}  {'of peak':>7}  torch best with")
    for thr, op, unit, gv, tv, r, frac, note in rows:
        ts = f"{tv:9.1f}" if tv == tv else f"{'':>9}"
        rs = f"{r:6.2f}x" if r == r else f"{'':>7}"
        print(f"{thr:>3}  {op:<11} {unit:<8} {gv:9.1f} {ts} {rs}  {frac:>7}  {note}")
    print("softmax and layer_norm: [4096, 1024] float32, 8 bytes of traffic per element; matmul: 1024^3.")
    print("torch: torch.set_num_threads(thr), OPENBLAS_NUM_THREADS=thr, OMP_WAIT_POLICY=PASSIVE at 2 threads, and the")
    print("fastest of OPENBLAS_CORETYPE=Haswell/SkylakeX, each with and without GLIBC_TUNABLES=glibc.malloc.hugetlb=1")
    print("(huge pages for its large tensors), per op. gaze: GAZE_NUM_THREADS=thr, environment otherwise as is.")
    return peaks


def run_torch_attention(mode, arg, capability, threads=1):
    env = torch_env(threads, "SkylakeX", thp=True)
    env.pop("ATEN_CPU_CAPABILITY", None)
    if capability:
        env["ATEN_CPU_CAPABILITY"] = capability
    res = subprocess.run([PYTHON, str(HERE / "torch_attention.py"), mode, str(arg)], env=env, check=True,
                         capture_output=True, text=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def attention_table(build, peaks):
    print()
    print("Attention, B=8 H=8 D=64 (GFLOP/s; forward 4*B*H*T^2*D flops, fwd+bwd 3.5x that; ratio = gaze / best torch)"
          + reference_note())
    print(f"{'thr':>3} {'T':>5}  {'pass':<8} {'gaze':>7} {'of peak':>7} {'composed':>9} {'priv.sdpa':>9} {'ratio':>7}")
    mha_rows = []
    same_pass_peaks = {}
    for threads in (1, 2):
        # The peak is measured again in the same passes as the attention rows: this machine's speed
        # drifts by ~20 % over minutes, and a slow spell slows both (of peak then compares like with
        # like). The op table's peak, minutes earlier, is printed below for comparison.
        g, _ = run_gaze(build, threads, "FmaPeak|Attention(Forward|ForwardBackward)/|MhaForward")
        peak = same_pass_peaks[threads] = g["FmaPeak"]["GFLOP/s"]
        runs = {cap or "default": run_torch_attention("speed", threads, cap, threads) for cap in (None, "avx512")}
        for T in (128, 512, 2048):
            fwd_flops = 4 * 8 * 8 * T * T * 64
            for label, gkey, tkey, flops in (("fwd", f"AttentionForward/{T}/0", "fwd", fwd_flops),
                                             ("fwd+bwd", f"AttentionForwardBackward/{T}", "fwdbwd", 3.5 * fwd_flops)):
                gg = flops / g[gkey]["seconds"] * 1e-9
                best = {impl: min(r[str(T)][f"{impl}_{tkey}"] for r in runs.values()) for impl in ("composed", "private_sdpa")}
                tc, ts = (flops / best[i] * 1e-9 for i in ("composed", "private_sdpa"))
                print(f"{threads:>3} {T:>5}  {label:<8} {gg:7.1f} {100 * gg / peak:6.1f}% {tc:9.1f} {ts:9.1f} "
                      f"{gg / max(tc, ts):6.2f}x")
            tm = min(r[str(T)]["mha_fwd"] for r in runs.values())
            mha_rows.append((threads, T, g[f"MhaForward/{T}"]["seconds"], tm))
    print("torch: the faster of ATEN_CPU_CAPABILITY=avx512 and its default per entry, OPENBLAS_CORETYPE=SkylakeX,")
    print("explicit threads, OMP_WAIT_POLICY=PASSIVE at 2 threads, GLIBC_TUNABLES=glibc.malloc.hugetlb=1 (huge pages")
    print("for its large tensors, as gaze's allocator takes). Both sides: one warm-up call, then the fastest call")
    print("within about a second (T=2048: one timed call for torch; gaze's fastest of its three passes).")
    print("of peak: against the fp32 FMA peak measured in the same three passes (the best of them), "
          + ", ".join(f"{same_pass_peaks[t]:.1f} GFLOP/s at {t} thread(s) (op table: {peaks[t]:.1f})"
                      for t in (1, 2)) + ".")
    print()
    print("nn.MultiheadAttention inference, E=512 8 heads batch 8 batch_first need_weights=False (milliseconds)")
    print(f"{'thr':>3} {'T':>5} {'gaze':>9} {'torch':>9} {'speed-up':>9}")
    for threads, T, gs, ts in mha_rows:
        print(f"{threads:>3} {T:>5} {gs * 1e3:9.2f} {ts * 1e3:9.2f} {ts / gs:8.2f}x")
    for threads in (1, 2):
        g, _ = run_gaze(build, threads, "AttentionMemory")
        m = g["AttentionMemory/8192"]
        print(f"\nPeak extra memory, causal fwd+bwd B=1 H=8 D=64 T=8192, {threads} thread(s): gaze {m['extra_MiB']:.1f} MiB "
              f"= results (O, lse, dQ, dK, dV) {m['results_MiB']:.1f} + workspace {m['workspace_MiB']:.1f}")
    tm = run_torch_attention("memory", 8192, None)
    print(f"torch composed attention, same case (1 thread, peak RSS growth): {tm['extra_MiB']:.0f} MiB "
          f"(one T x T score matrix alone: {8 * 8192 * 8192 * 4 / 2**20:.0f} MiB)")


def models_table(build):
    """TransformerClassifier training and inference: tokens/s (latency in ms), gaze vs torch."""
    print()
    print("TransformerClassifier (vocab 8000, d_model 256, 4 heads, ffn 1024, 4 layers, GELU, pre-norm, dropout 0.1)"
          + reference_note())
    print("training = forward + cross-entropy + backward + AdamW step; inference = eval, no autograd")
    print(f"{'thr':>3}  {'measure':<26} {'gaze':>10} {'torch':>10} {'ratio':>7} {'torch Haswell':>14} {'ratio':>7}")
    for threads in (1, 2):
        g, _ = run_gaze(build, threads, "Classifier")
        t = {(ct, thp): run_torch(threads, ct, "torch_models.py", thp) for ct, thp in TORCH_SETTINGS}
        for label, gkey, tkey, tokens in (("train tokens/s, 32x128", "ClassifierTrain/32/128/0", "train_s", 4096),
                                          ("train bf16 mixed, vs fp32", "ClassifierTrain/32/128/1", "train_s", 4096),
                                          ("train bf16 mixed, vs bf16", "ClassifierTrain/32/128/1", "train_bf16_s",
                                           4096),
                                          ("infer tokens/s, 32x128", "ClassifierInfer/32/128", "infer_32x128_s", 4096),
                                          ("latency ms, 1x128", "ClassifierInfer/1/128", "infer_1x128_s", 0)):
            if gkey not in g:
                print(f"{threads:>3}  {label:<26} {'(no bf16 instructions: skipped)':>30}")
                continue
            gs = g[gkey]["seconds"]
            best = min(r[tkey] for r in t.values())
            hs = t[("Haswell", False)][tkey]
            if tokens:
                print(f"{threads:>3}  {label:<26} {tokens / gs:10.0f} {tokens / best:10.0f} {best / gs:6.2f}x "
                      f"{tokens / hs:14.0f} {hs / gs:6.2f}x")
            else:
                print(f"{threads:>3}  {label:<26} {gs * 1e3:10.2f} {best * 1e3:10.2f} {best / gs:6.2f}x "
                      f"{hs * 1e3:14.2f} {hs / gs:6.2f}x")
    print("ratio = how many times faster gaze is. torch: the same model (nn.TransformerEncoder, norm_first, final norm),")
    print("torch.set_num_threads(thr), OMP_WAIT_POLICY=PASSIVE at 2 threads, the fastest of OPENBLAS_CORETYPE=Haswell/SkylakeX")
    print("each with and without GLIBC_TUNABLES=glibc.malloc.hugetlb=1 (huge pages for its large tensors); 'torch Haswell'")
    print("is torch in the environment as this project's machines set it (OPENBLAS_CORETYPE=Haswell, no huge pages).")
    print("bf16 mixed = train.precision bf16 (gaze.autocast): the linear layers' products in bfloat16 with fp32")
    print("accumulation, gradients and master weights; 'vs fp32' compares it with torch's fp32 step, 'vs bf16' with")
    print("torch.autocast(device_type='cpu', dtype=torch.bfloat16) around torch's forward and loss.")
    paired_training(build)


PAIRED_ROUNDS = 3


def paired_training(build):
    """fp32 training, gaze and torch measured in turns: the ratio of each round's pair, so that the machine's
    drift (its speed wanders by a fifth over minutes, and torch's step moved by 29 % between two full runs an
    hour apart) falls on both sides of a ratio instead of deciding it. torch takes the fastest of its settings
    in every round: which one wins changes from run to run."""
    print()
    print(f"Paired fp32 training, 32x128: gaze and torch measured in turns, {PAIRED_ROUNDS} rounds "
          "(tokens/s; ratio = torch's step / gaze's in the same round)")
    print(f"{'thr':>3}  {'gaze median':>11} {'torch median':>12} {'ratio median':>12} {'ratio min':>9} {'ratio max':>9}")
    for threads in (1, 2):
        def gaze_step():
            return run_gaze(build, threads, "ClassifierTrain/32/128/0", passes=1)[0]["ClassifierTrain/32/128/0"]["seconds"]

        def torch_step():  # the fastest of its settings
            return min(run_torch(threads, ct, "torch_models.py", thp, args=("train",))["train_s"]
                       for ct, thp in TORCH_SETTINGS)

        gs, ts = [], []
        for r in range(PAIRED_ROUNDS):  # who goes first alternates
            if r % 2 == 0:
                gs.append(gaze_step())
                ts.append(torch_step())
            else:
                ts.append(torch_step())
                gs.append(gaze_step())
        ratios = sorted(t / g for g, t in zip(gs, ts))
        print(f"{threads:>3}  {4096 / statistics.median(gs):11.0f} {4096 / statistics.median(ts):12.0f} "
              f"{statistics.median(ratios):11.2f}x {ratios[0]:8.2f}x {ratios[-1]:8.2f}x")
    print("A round: one pass of gaze's training benchmark and torch in each of the settings of the table above (the")
    print("fastest kept), the side that goes first alternating. Each side's figure is its best mean step over windows")
    print("of >= 1 s within 3 s (torch_ops.best_time's rule, which models_bench.cpp follows).")


def window_table(build):
    """Sliding-window causal attention (window 128) against full causal attention as T grows."""
    g, _ = run_gaze(build, 1, "AttentionWindow")
    print()
    print("Sliding-window causal attention, B=1 H=8 D=64, window 128, forward, 1 thread (milliseconds)")
    print(f"{'T':>6} {'full causal':>12} {'window 128':>11} {'speed-up':>9} {'window ms per 1k tokens':>24}")
    for t in (1024, 2048, 4096, 8192, 16384):
        full, win = g[f"AttentionWindow/{t}/0"]["seconds"], g[f"AttentionWindow/{t}/128"]["seconds"]
        print(f"{t:>6} {full * 1e3:12.1f} {win * 1e3:11.1f} {full / win:8.1f}x {win * 1e3 / (t / 1024):24.2f}")
    print("The window's cost per token stays flat (T * window); full attention's grows with T.")


def precision_table(build):
    """The benchmark classifier's inference at fp32, bf16 and int8: gaze against its own fp32 (the
    speed-up) and against torch's reduced precision on the same model."""
    print()
    print("TransformerClassifier inference by precision (tokens/s at 32x128; latency ms at 1x128)" + reference_note())
    print(f"{'thr':>3}  {'measure':<22} {'prec':<5} {'gaze':>9} {'x gaze fp32':>11} {'torch':>9} {'ratio':>7}")
    for threads in (1, 2):
        g, _ = run_gaze(build, threads, "ClassifierInfer")
        runs = [run_torch(threads, "SkylakeX", "torch_models.py", thp) for thp in (False, True)]
        t = {key: min(r[key] for r in runs) for key in runs[0]}
        for label, shape, tokens in (("infer tokens/s, 32x128", "32/128", 4096), ("latency ms, 1x128", "1/128", 0)):
            base = g[f"ClassifierInfer/{shape}"]["seconds"]
            for code, prec in ((0, "fp32"), (1, "bf16"), (2, "int8")):
                key = f"ClassifierInfer/{shape}" if code == 0 else f"ClassifierInferLowp/{shape}/{code}"
                if key not in g:
                    print(f"{threads:>3}  {label:<22} {prec:<5} {'(no hardware support: skipped)':>30}")
                    continue
                gs = g[key]["seconds"]
                ts = t[("" if code == 0 else prec + "_") + f"infer_{shape.replace('/', 'x')}_s"]
                shown = (tokens / gs, tokens / ts) if tokens else (gs * 1e3, ts * 1e3)
                fmt_ = "{:9.0f}" if tokens else "{:9.2f}"
                print(f"{threads:>3}  {label:<22} {prec:<5} {fmt_.format(shown[0])} {base / gs:10.2f}x "
                      f"{fmt_.format(shown[1])} {ts / gs:6.2f}x")
    print("x gaze fp32 = gaze's speed-up over its own fp32 run; ratio = gaze / torch at the same precision.")
    print("torch: OPENBLAS_CORETYPE=SkylakeX, the faster of with and without glibc.malloc.hugetlb=1 per entry; bf16 =")
    print("the model converted to bfloat16 (its CPU autocast fails in the fused encoder layer in 1.13);")
    print("int8 = torch.ao.quantization.quantize_dynamic on its nn.Linear layers (the attention in-projection stays fp32")
    print("in torch), run on the composed path. gaze: bf16 products with fp32 accumulation; int8 with weights per output")
    print("channel and activations per row (nn/precision.h); for both, attention's two products in bf16 with fp32")
    print("accumulation on AVX512-BF16 (kernels/attention_bf16.h) or, on CPUs with AMX, on its tiles")
    print("(kernels/attention_amx.h); softmax and norms in fp32.")


def translation_table(build):
    """Beam search (beam 4, KV cache) of the bench-serve translator over 200 training verses at each
    precision: output tokens/s, the speed-up over fp32 and how many translations equal fp32's."""
    import importlib.machinery
    root = HERE.parent
    bench_serve = importlib.machinery.SourceFileLoader("bench_serve", str(root / "scripts" / "bench-serve")).load_module()
    models = bench_serve.train_models(build / "gaze", build / "bench-serve")
    mt, verses = models["translator"]
    src = build / "bench-serve" / "decode-200.txt"
    src.write_text("\n".join(verses[:200]) + "\n")
    print()
    print("Translation decoding by precision: 3+3-layer Transformer (d 256), beam 4, 200 verses (gaze translate)")
    print(f"{'thr':>3}  {'prec':<5} {'words/s':>9} {'x fp32':>7} {'end to end':>11} {'x fp32':>7} {'same as fp32':>13}")
    for threads in (1, 2):
        env = dict(os.environ, GAZE_NUM_THREADS=str(threads))
        outs, best, best_total, notes = {}, {}, {}, {}
        # The fastest of three runs of each, the precisions taking turns so that a slow spell of a
        # shared machine does not fall on one of them only. Decoding is the time gaze translate
        # reports for translating (--log-throughput); end to end is the process's wall time, its
        # start and the model's loading (and conversion to the precision) included.
        for _ in range(3):
            for prec in ("fp32", "bf16", "int8"):
                t0 = time.time()
                res = subprocess.run([str(build / "gaze"), "translate", "--model", str(mt), "--precision", prec,
                                      "--log-throughput"],
                                     stdin=src.open("rb"), env=env, capture_output=True, check=True)
                dt = time.time() - t0
                m = re.search(r"translated \d+ lines? into \d+ words in ([0-9.]+) s", res.stderr.decode())
                best[prec] = min(best.get(prec, float(m[1])), float(m[1]))
                best_total[prec] = min(best_total.get(prec, dt), dt)
                outs[prec] = res.stdout.decode().splitlines()
                notes[prec] = " (no hardware support: ran fp32)" if b"running fp32" in res.stderr else ""
        rates, totals = {}, {}
        for prec in ("fp32", "bf16", "int8"):
            words = sum(len(x.split()) for x in outs[prec])
            rates[prec], totals[prec] = words / best[prec], words / best_total[prec]
            same = sum(a == b for a, b in zip(outs["fp32"], outs[prec]))
            print(f"{threads:>3}  {prec:<5} {rates[prec]:9.0f} {rates[prec] / rates['fp32']:6.2f}x "
                  f"{totals[prec]:11.0f} {totals[prec] / totals['fp32']:6.2f}x {same:>8}/{len(outs[prec])}"
                  + notes[prec])
    print("words/s = output words per second of decoding (gaze translate --log-throughput); end to end = per second")
    print("of the whole process, loading the model included. Each the fastest of three runs, taken in turns.")


def main():
    build = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "build").resolve()
    only = sys.argv[2] if len(sys.argv) > 2 else "all"
    peaks = op_table(build)
    if only in ("all", "attention"):
        attention_table(build, peaks)
        window_table(build)
    if only in ("all", "models"):
        models_table(build)
    if only in ("all", "precision"):
        precision_table(build)
        translation_table(build)


if __name__ == "__main__":
    main()
