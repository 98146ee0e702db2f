#!/usr/bin/env python3
"""PyTorch cuDNN LSTM/GRU timings on the shapes of native/tools/gpu_check_recurrent.cu, printed as JSON.

Usage: python3 bench/gpu/torch_rnn.py [--quick] [--reps N] [--fp32-only] [--cases JSON] [--shapes FILE]
Without --cases the shapes come from bench/shapes.json (--shapes names another file).
--cases takes the cases of `npm run bench` (bench/shapes.js) as a JSON list of
{"name", "mode": "lstm" | "gru" | "rnn_tanh" | "rnn_relu", "T", "B", "I", "H", "L", "bidirectional"}
and times exactly those (results keyed by "name"), with min and max next to each median.
Shapes: S1-S5 (LSTM, input size = H), the DeepBench LSTM training shapes (H 512/1024/2048,
B 16/32/64/128, T 25) and GRU H 1024, B 32, T 500 (DeepBench's T 1500, shortened). Each shape runs
in fp32 (cuDNN and matmul TF32 off) and in TF32 (both on). Times are medians of CUDA-event
measurements in ms: `infer` (forward under no_grad), `fwd_train` (forward with autograd),
`backward` (backward of sum(y * dy) alone, the forward excluded), `train` (fwd_train + backward).
Without torch or a CUDA device it prints {"skipped": "<reason>"} and exits 0.
"""
import json
import os
import statistics
import sys


SHAPES_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "shapes.json")


def shapes(path=SHAPES_FILE):
    """S1-S5 (as LSTM) then the gpuBench entries PyTorch runs, from bench/shapes.json (the one shape
    table; bench/shapes.js gpuBenchShapes() builds the same list and names)."""
    with open(path) as f:
        table = json.load(f)
    out = []
    for name, s in table["recurrent"].items():
        label = f"{name} lstm T{s['T']} B{s['B']} H{s['H']}" + (f" L{s['L']}" if s["L"] > 1 else "") + ("bi" if s["D"] > 1 else "")
        out.append((label, "lstm", s["T"], s["B"], s["H"], s["L"], s["D"] == 2, s["I"]))
    for s in table["gpuBench"]:
        if s.get("torch", True):
            out.append((s["name"], s["mode"], s["T"], s["B"], s["H"], s["L"], s["D"] == 2, s["I"]))
    return out


def samples_ms(torch, fn, reps):
    fn()  # warm-up: cuDNN plans, allocator
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start = torch.cuda.Event(enable_timing=True)
        stop = torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop))
    return times


def median_ms(torch, fn, reps):
    return statistics.median(samples_ms(torch, fn, reps))


def bench(torch, shape, tf32, reps):
    name, mode, T, B, H, L, bi = shape[:7]
    I = shape[7] if len(shape) > 7 else H
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cuda.matmul.allow_tf32 = tf32
    if mode == "lstm":
        net = torch.nn.LSTM(I, H, num_layers=L, bidirectional=bi).cuda()
    elif mode == "gru":
        net = torch.nn.GRU(I, H, num_layers=L, bidirectional=bi).cuda()
    else:
        net = torch.nn.RNN(I, H, num_layers=L, bidirectional=bi, nonlinearity=mode[4:]).cuda()
    x = torch.randn(T, B, I, device="cuda", requires_grad=True)
    D = 2 if bi else 1
    dy = torch.randn(T, B, D * H, device="cuda")

    def infer():
        with torch.no_grad():
            net(x)

    def fwd_train():
        return net(x)[0]

    def backward_only():
        y = net(x)[0]
        torch.cuda.synchronize()
        start = torch.cuda.Event(enable_timing=True)
        stop = torch.cuda.Event(enable_timing=True)
        start.record()
        y.backward(dy)
        stop.record()
        stop.synchronize()
        return start.elapsed_time(stop)

    s_inf = samples_ms(torch, infer, reps)
    s_fwd = samples_ms(torch, fwd_train, reps)
    backward_only()
    s_bwd = [backward_only() for _ in range(reps)]
    t_inf, t_fwd, t_bwd = (statistics.median(v) for v in (s_inf, s_fwd, s_bwd))
    gates = {"lstm": 4, "gru": 3}.get(mode, 1)
    flops = sum(2.0 * D * T * B * gates * H * ((I if l == 0 else D * H) + H) for l in range(L))
    return {
        "shape": name, "mode": mode, "T": T, "B": B, "H": H, "layers": L, "bidirectional": bi,
        "precision": "tf32" if tf32 else "fp32", "infer_ms": t_inf, "fwd_train_ms": t_fwd,
        "backward_ms": t_bwd, "train_ms": t_fwd + t_bwd,
        "infer_min_ms": min(s_inf), "infer_max_ms": max(s_inf),
        "fwd_train_min_ms": min(s_fwd), "fwd_train_max_ms": max(s_fwd),
        "backward_min_ms": min(s_bwd), "backward_max_ms": max(s_bwd),
        "infer_gflops": flops / t_inf * 1e-6, "train_gflops": 3 * flops / (t_fwd + t_bwd) * 1e-6,
    }


def main():
    quick = "--quick" in sys.argv
    reps = 3 if quick else 7
    if "--reps" in sys.argv:
        reps = int(sys.argv[sys.argv.index("--reps") + 1])
    try:
        import torch
    except ImportError as e:
        print(json.dumps({"skipped": f"torch is not installed ({e})"}))
        return 0
    if not torch.cuda.is_available():
        print(json.dumps({"skipped": "torch sees no CUDA device"}))
        return 0
    if "--cases" in sys.argv:
        cases = json.loads(sys.argv[sys.argv.index("--cases") + 1])
        todo = [(c["name"], c["mode"], c["T"], c["B"], c["H"], c["L"], c["bidirectional"], c["I"]) for c in cases]
    else:
        path = sys.argv[sys.argv.index("--shapes") + 1] if "--shapes" in sys.argv else SHAPES_FILE
        todo = [s for k, s in enumerate(shapes(path)) if not quick or k % 3 == 0]
    precisions = (False,) if "--fp32-only" in sys.argv else (False, True)
    results = []
    for shape in todo:
        for tf32 in precisions:
            try:
                results.append(bench(torch, shape, tf32, reps))
            except RuntimeError as e:  # out of memory on a small card: report, go on
                results.append({"shape": shape[0], "precision": "tf32" if tf32 else "fp32", "error": str(e)[:200]})
            torch.cuda.empty_cache()
    print(json.dumps({
        "device": torch.cuda.get_device_name(0), "torch": torch.__version__,
        "cudnn": torch.backends.cudnn.version(), "results": results,
    }, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
