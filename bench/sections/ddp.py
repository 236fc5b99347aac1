"""Section 6, DDP: pretraining throughput with one and two torchrun processes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pandas as pd
from harness import REPO, Settings, show

def section_ddp(S: Settings) -> dict:
    import yaml

    from sca2lstm.training.pretrain import prepare_pretraining_data

    cfg = S.config({"training": {"epoch_coverage": S.ddp_coverage}} if S.ddp_coverage else None)
    t = cfg.training
    prep = prepare_pretraining_data(cfg, S.data_dir)
    n_windows = len(prep.data.training_windows(prep.train_periods, t.seq_len, t.spinup, t.epoch_coverage,
                                               np.random.default_rng(0))[0])
    root = S.out / "ddp"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    conf = root / "config.yaml"
    conf.write_text(yaml.safe_dump({k: v for k, v in cfg.to_dict().items()}), encoding="utf-8")
    cores = os.cpu_count() or 1
    rows = []
    for nproc in (1, 2):
        output = root / f"nproc{nproc}" / "sca2lstm.pth"
        env = {**os.environ, "OMP_NUM_THREADS": str(max(1, cores // nproc)), "PYTHONPATH": str(REPO)}
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
               str(REPO / "sca2lstm.py"), "--config", str(conf), "--epochs", str(S.ddp_epochs),
               "--output", str(output), "--device", "cpu", "--quiet"]
        print(f"  [{time.strftime('%H:%M:%S')}] torchrun --nproc_per_node {nproc} (OMP_NUM_THREADS="
              f"{env['OMP_NUM_THREADS']})", flush=True)
        t0 = time.perf_counter()
        r = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        (root / f"nproc{nproc}.log").write_text(r.stdout + r.stderr, encoding="utf-8")
        if r.returncode != 0:
            raise RuntimeError(f"torchrun with {nproc} processes failed (exit {r.returncode}): {r.stderr[-2000:]}")
        hist = pd.read_csv(output.with_name(f"{output.stem}_run") / "history.csv")
        epoch_s = hist.loc[hist["epoch"] >= 1, "seconds"].to_numpy()
        trained = n_windows // nproc * nproc  # each rank takes every nproc-th window, the rest are dropped
        rows.append({"processes": nproc, "omp_threads": int(env["OMP_NUM_THREADS"]), "epochs": len(epoch_s),
                     "windows_per_epoch": trained, "mean_epoch_s": float(epoch_s.mean()),
                     "windows_per_s": trained / float(epoch_s.mean()), "command_wall_s": wall})
    df = pd.DataFrame(rows)
    df["speedup_vs_1"] = df["windows_per_s"] / df["windows_per_s"].iloc[0]
    show(f"DDP pretraining throughput on {len(prep.basins)} basins ({S.ddp_epochs} epoch(s); epoch seconds from "
         f"history.csv include the validation pass every rank runs; {cores} cores)", df)
    return {"tables": {"ddp": df}, "summary": {"cores": cores, "epochs": S.ddp_epochs}}
