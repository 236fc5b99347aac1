"""Benchmark one SCA2LSTM training step: eager reference loop, fused recurrence with its Python loops,
fused recurrence with its C++ loops (the default), and a plain fused nn.LSTM.

Run from the repository root: ``PYTHONPATH=. python bench/bench_recurrence.py [--threads 1] [--compile] [--cuda]``.
``--cuda`` adds the fused recurrence on the GPU (its Python loops there; float32, and bfloat16 autocast as
``--mixed_precision`` trains), timed with ``torch.cuda.synchronize()``.
``--compile`` adds ``torch.compile`` of the eager reference loop (Inductor, the default mode) for
training and inference, and prints its compile time and its throughput against the C++ path; the
compile unrolls the loop over the window's steps, so its time grows with ``--seq_len``.
All variants run interleaved in the same process (the machine may be shared: only side-by-side
numbers are comparable). A training step is forward + masked MSE + backward; inference is the forward
under ``torch.no_grad()``. Medians over ``--reps`` repetitions after one warm-up.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import statistics
import time

import torch
from torch import nn

import sca2lstm
from sca2lstm.models import native
from sca2lstm.models.sca2lstm import SCA2LSTM


def make_batch(model: SCA2LSTM, B: int, T: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    N, S = model.n_features, model.n_static
    x = torch.randn(B, T, N, generator=g)
    miss = torch.rand(B, T, N, generator=g) < 0.05
    miss[:, 10:12] = True                                     # a couple of all-missing steps
    x = x.masked_fill(miss, 0.0)
    st = torch.randn(B, S, generator=g)
    stm = torch.rand(B, S, generator=g) < 0.1
    q = torch.randn(B, T, generator=g)
    q[torch.rand(B, T, generator=g) < 0.1] = float("nan")
    return x, miss, st.masked_fill(stm, 0.0), stm, q


class PlainLSTM(nn.Module):
    """The floor: one fused nn.LSTM with LSTM2's hidden size on the same inputs, and a linear head."""

    def __init__(self, n_in: int, hidden: int):
        super().__init__()
        self.lstm = nn.LSTM(n_in, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x, miss, *_, q_obs=None):
        out, _ = self.lstm(torch.cat([x, miss.to(x.dtype)], dim=-1))
        return self.head(out).squeeze(-1)


def masked_loss(pred, q, spinup):
    y = q[:, spinup:]
    ok = torch.isfinite(y)
    return ((pred[:, spinup:] - torch.where(ok, y, 0.0)) ** 2 * ok).sum() / ok.sum().clamp(min=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq_len", type=int, default=270)
    ap.add_argument("--spinup", type=int, default=90)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (0: torch's default). 1 by default: the per-step tensors are too "
                         "small to gain from threads, and on a shared machine OpenMP waits swamp the timings")
    ap.add_argument("--compile", action="store_true",
                    help="also time torch.compile of the reference loop (its compile time is printed apart)")
    ap.add_argument("--cuda", action="store_true", help="also time the fused recurrence on the GPU")
    a = ap.parse_args()
    if a.cuda and not torch.cuda.is_available():
        ap.error("--cuda: no CUDA device is available")
    if a.threads:
        torch.set_num_threads(a.threads)
    cfg = sca2lstm.load_config()
    torch.manual_seed(0)
    model = SCA2LSTM(cfg)
    model.train()
    batch = make_batch(model, a.batch, a.seq_len)
    plain = PlainLSTM(2 * model.n_features, model.h2_size)

    def use(net, fused, loops):
        # loops: "native" (the C++ loops, default when they build) or "python" (SCA2LSTM_NATIVE=0)
        if fused is not None:
            net.use_fused_recurrence = fused
        return native.disabled() if loops == "python" else contextlib.nullcontext()

    gpu_batch = [t.to("cuda") for t in batch] if a.cuda else None

    def sync(b):
        if b[0].is_cuda:
            torch.cuda.synchronize()

    def step(net, fused=None, loops="native", b=batch, bf16=False):
        with use(net, fused, loops):
            net.zero_grad(set_to_none=True)
            sync(b)
            t0 = time.perf_counter()
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
                pred = net(*b[:4], q_obs=b[4])
            loss = masked_loss(pred.float(), b[4], a.spinup)
            loss.backward()
            sync(b)
            return time.perf_counter() - t0

    def infer(net, fused=None, loops="native", b=batch):
        with use(net, fused, loops):
            sync(b)
            t0 = time.perf_counter()
            with torch.no_grad():
                net(*b[:4], q_obs=b[4])
            sync(b)
            return time.perf_counter() - t0

    variants = {
        "train: reference loop": lambda: step(model, False),
        "train: fused, Python loops": lambda: step(model, True, "python"),
        "train: fused recurrence": lambda: step(model, True),
        "train: nn.LSTM (floor)": lambda: step(plain),
        "infer: reference loop": lambda: infer(model, False),
        "infer: fused, Python loops": lambda: infer(model, True, "python"),
        "infer: fused recurrence": lambda: infer(model, True),
        "infer: nn.LSTM (floor)": lambda: infer(plain),
    }
    if a.cuda:
        gpu = copy.deepcopy(model).to("cuda")
        variants["train: fused on CUDA"] = lambda: step(gpu, True, b=gpu_batch)
        variants["train: CUDA, bf16 autocast"] = lambda: step(gpu, True, b=gpu_batch, bf16=True)
        variants["infer: fused on CUDA"] = lambda: infer(gpu, True, b=gpu_batch)
    compile_seconds = {}
    if a.compile:
        model.use_fused_recurrence = False  # what gets compiled: the readable eager loop
        compiled = torch.compile(model, dynamic=False)
        for kind, run in (("infer", infer), ("train", step)):
            t0 = time.perf_counter()
            run(compiled)  # the first call compiles
            compile_seconds[kind] = time.perf_counter() - t0

        def eager_flag(run):  # the flag the graph was compiled with: a changed one would recompile
            model.use_fused_recurrence = False
            return run(compiled)
        variants["train: torch.compile loop"] = lambda: eager_flag(step)
        variants["infer: torch.compile loop"] = lambda: eager_flag(infer)
    times = {k: [] for k in variants}
    for f in variants.values():  # warm-up
        f()
    for _ in range(a.reps):
        for k, f in variants.items():
            times[k].append(f())
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"C++ loops: {'built' if native.get() is not None else 'NOT available (Python loops only)'}")
    print(f"B={a.batch} T={a.seq_len} N={model.n_features} H1={model.h1_size} H2={model.h2_size} "
          f"threads={torch.get_num_threads()} reps={a.reps} (median seconds)")
    print(f"{'variant':28s} {'median s':>9s} {'min s':>8s} {'ref/this':>9s} {'this/floor':>11s}")
    for k in variants:
        kind = k.split(":")[0]
        ref, floor = med[kind + ": reference loop"], med[kind + ": nn.LSTM (floor)"]
        print(f"{k:28s} {med[k]:9.4f} {min(times[k]):8.4f} {ref / med[k]:9.2f} {med[k] / floor:11.2f}")
    if a.compile:
        for kind in ("train", "infer"):
            ratio = med[f"{kind}: fused recurrence"] / med[f"{kind}: torch.compile loop"]
            print(f"{kind}: torch.compile throughput / C++ path throughput = {ratio:.2f} "
                  f"(compile time {compile_seconds[kind]:.0f} s; 0.8 or more would keep one implementation)")


if __name__ == "__main__":
    main()
