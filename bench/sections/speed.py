"""Section 4, speed: training-step and inference samples/s of every model variant, interleaved."""

from __future__ import annotations

import contextlib
import math
import statistics
import time

import pandas as pd
from harness import Settings, show

def _random_batch(n_features: int, n_static: int, batch: int, seq_len: int, seed: int = 0):
    import torch

    g = torch.Generator().manual_seed(seed)
    miss = torch.rand(batch, seq_len, n_features, generator=g) < 0.02
    x = torch.randn(batch, seq_len, n_features, generator=g).masked_fill(miss, 0.0)
    static = torch.randn(batch, n_static, generator=g)
    static_missing = torch.zeros(batch, n_static, dtype=torch.bool)
    q = torch.randn(batch, seq_len, generator=g)
    q[torch.rand(batch, seq_len, generator=g) < 0.05] = float("nan")
    return x, miss, static, static_missing, q


def bench_speed(cfg, reps: int = 5, warmup: int = 1, batch: int | None = None, seq_len: int | None = None,
                bf16: bool = True) -> pd.DataFrame:
    """Training-step and inference samples/s of SCA2LSTM (fused with its C++ loops, fused with its
    Python loops, eager reference loop) and LSTMBaseline.

    A training step is what the trainer does per batch: forward, masked MSE after the spin-up,
    backward, gradient clipping, AdamW step. Inference is the forward under ``torch.no_grad()``.
    All variants run interleaved, rep by rep, so they see the same machine load; medians after warm-up.
    ``bf16`` adds each model under ``torch.autocast("cpu", dtype=torch.bfloat16)``.
    """
    import torch

    from sca2lstm.models.baseline import LSTMBaseline
    from sca2lstm.models.sca2lstm import SCA2LSTM
    from sca2lstm.training.loss import masked_mse

    t = cfg.training
    B, T = batch or t.batch_size, seq_len or t.seq_len
    spinup = min(t.spinup, T - 1)
    torch.manual_seed(0)
    variants = []  # (name, precision, model, autocast)
    variants.append(("SCA2LSTM", "fp32", SCA2LSTM(cfg), False))
    from sca2lstm.models import native
    python_loops = set()  # variants run with SCA2LSTM_NATIVE=0
    if native.get() is not None:
        python_loops.add(len(variants))
        variants.append(("SCA2LSTM, Python loops", "fp32", SCA2LSTM(cfg), False))
    if hasattr(SCA2LSTM, "use_fused_recurrence"):  # the eager loop as the readable reference
        ref = SCA2LSTM(cfg)
        ref.use_fused_recurrence = False
        variants.append(("SCA2LSTM reference loop", "fp32", ref, False))
    variants.append(("LSTMBaseline", "fp32", LSTMBaseline(cfg), False))
    if bf16:
        variants.append(("SCA2LSTM", "bf16 autocast", SCA2LSTM(cfg), True))
        variants.append(("LSTMBaseline", "bf16 autocast", LSTMBaseline(cfg), True))
    m0 = variants[0][2]
    x, miss, st, stm, q = _random_batch(m0.n_features, m0.n_static, B, T)
    mask = torch.ones(B, T, dtype=torch.bool)
    mask[:, :spinup] = False
    opts = [torch.optim.AdamW(m.parameters(), lr=t.learning_rate) for _, _, m, _ in variants]

    def train_step(model, opt, amp):
        model.train()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            pred = model(x, miss, st, stm, q_obs=q)
        loss = masked_mse(pred.float(), q, mask)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
        opt.step()

    @torch.no_grad()
    def infer_step(model, amp):
        model.eval()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            model(x, miss, st, stm, q_obs=q)

    times = {i: {"train": [], "infer": []} for i in range(len(variants))}
    unsupported = {}  # variant -> why bf16 could not run (oneDNN has no bf16 LSTM without AVX-512 bf16)
    for rep in range(warmup + reps):
        for i, (_, _, model, amp) in enumerate(variants):
            if i in unsupported:
                continue
            try:
                with native.disabled() if i in python_loops else contextlib.nullcontext():
                    t0 = time.perf_counter()
                    train_step(model, opts[i], amp)
                    t1 = time.perf_counter()
                    infer_step(model, amp)
                    t2 = time.perf_counter()
            except RuntimeError as e:
                if not amp:
                    raise
                unsupported[i] = f"not supported here: {str(e).splitlines()[0][:70]}"
                continue
            if rep >= warmup:
                times[i]["train"].append(t1 - t0)
                times[i]["infer"].append(t2 - t1)
    rows = []
    for i, (name, prec, model, _) in enumerate(variants):
        ok = i not in unsupported
        rows.append({"model": name, "precision": prec, "parameters": sum(p.numel() for p in model.parameters()),
                     "train_samples_s": B / statistics.median(times[i]["train"]) if ok else float("nan"),
                     "infer_samples_s": B / statistics.median(times[i]["infer"]) if ok else float("nan"),
                     "note": unsupported.get(i, "")})
    df = pd.DataFrame(rows)
    base = df.iloc[0]
    df["train_vs_SCA2LSTM"] = df["train_samples_s"] / base["train_samples_s"]
    df["infer_vs_SCA2LSTM"] = df["infer_samples_s"] / base["infer_samples_s"]
    df.attrs.update(batch=B, seq_len=T, reps=reps, warmup=warmup)
    return df


def section_speed(S: Settings) -> dict:
    import torch

    cfg = S.config()
    df = bench_speed(cfg, reps=S.speed_reps, warmup=S.speed_warmup)
    fp32 = df[df["precision"] == "fp32"].drop_duplicates("model").set_index("model")
    pays = {}
    for _, r in df[df["precision"] != "fp32"].iterrows():
        ref = fp32.loc[r["model"]]
        pays[r["model"]] = {"train_speedup": r["train_samples_s"] / ref["train_samples_s"],
                            "infer_speedup": r["infer_samples_s"] / ref["infer_samples_s"]}
    show(f"Speed on random inputs: batch {df.attrs['batch']}, window {df.attrs['seq_len']}, hidden "
         f"{cfg.model.hidden_size}, {torch.get_num_threads()} torch threads; median of {df.attrs['reps']} reps "
         f"after {df.attrs['warmup']} warm-up, variants interleaved", df,
         "Under autocast SCA2LSTM falls back to its eager reference loop (see sca2lstm/models/sca2lstm.py).")
    for m, p in pays.items():
        if math.isnan(p["train_speedup"]):
            print(f"bf16 autocast for {m}: could not run on this CPU (see the note column)")
            continue
        verdict = "pays" if p["train_speedup"] > 1 or p["infer_speedup"] > 1 else "does not pay"
        print(f"bf16 autocast for {m}: train x{p['train_speedup']:.2f}, inference x{p['infer_speedup']:.2f} "
              f"vs its default fp32 path -> {verdict}")
        if m == "SCA2LSTM" and "SCA2LSTM reference loop" in fp32.index:
            ref = fp32.loc["SCA2LSTM reference loop"]
            row = df[(df["model"] == m) & (df["precision"] != "fp32")].iloc[0]
            p["train_vs_reference_loop"] = row["train_samples_s"] / ref["train_samples_s"]
            p["infer_vs_reference_loop"] = row["infer_samples_s"] / ref["infer_samples_s"]
            print(f"  (vs the fp32 reference loop it replaces: train x{p['train_vs_reference_loop']:.2f}, "
                  f"inference x{p['infer_vs_reference_loop']:.2f})")
    lstm = fp32.loc["LSTMBaseline"]
    sca = fp32.loc["SCA2LSTM"]
    ratio = {"train": lstm["train_samples_s"] / sca["train_samples_s"],
             "infer": lstm["infer_samples_s"] / sca["infer_samples_s"]}
    print(f"LSTMBaseline / SCA2LSTM samples/s: training {ratio['train']:.2f}, inference {ratio['infer']:.2f}")
    return {"tables": {"speed": df}, "summary": {"bf16": pays, "lstm_over_sca2lstm": ratio, **df.attrs,
                                                 "torch_threads": torch.get_num_threads()}}
