"""Which validation loss should early stopping follow? ``training.validation_loss`` compared on the 9 basins.

Run from the repository root (one thread per run, a few minutes each on 2 cores)::

    PYTHONPATH=. nice -n 5 python bench/validation_loss.py [--data_dir ../shared/data/camels_gb]
        [--seeds 42 7 3] [--epochs 30] [--out bench_output/validation_loss]

For each seed it pretrains the default model twice with the same seed, data and everything else:

* ``training_mixture``: early stopping, the learning-rate schedule and the best epoch follow the training
  objective on the validation days (the same share of issue-time windows as in training, MSE + pinball);
* ``hindcast``: they follow the hindcast MSE alone (the point forecast with the target day's weather).

It then prints, per run, what the choice is made on - validation: the restored epoch; its hindcast MSE,
the MSE of the lead days of the issue-time windows (after the issue date, 7 days) and the quantile
head's loss (pinball), all in scaled units; the median NSE of the hindcast - and, to report only, the same
scores on the test years. A finished run is not trained again (delete its folder to redo it).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

VARIANTS = ("training_mixture", "hindcast")


def train(out: Path, variant: str, seed: int, data_dir: str, epochs: int) -> Path:
    ckpt = out / f"{variant}_s{seed}" / "sca2lstm.pth"
    if ckpt.is_file():
        return ckpt
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    conf = out / f"{variant}.yaml"
    conf.write_text(f"training:\n  validation_loss: {variant}\n", encoding="utf-8")
    code = ("import sys, torch; torch.set_num_threads(1); from sca2lstm.cli.train import main; "
            "sys.exit(main(sys.argv[1:]))")
    cmd = [sys.executable, "-c", code, "--data_dir", data_dir, "--config", str(conf), "--seed", str(seed),
           "--epochs", str(epochs), "--output", str(ckpt), "--quiet"]
    subprocess.run(cmd, check=True)
    return ckpt


def scores(ckpt: Path, data_dir: str) -> dict:
    """Validation scores of the restored epoch (from the run's history) and test scores (computed)."""
    from sca2lstm.checkpoint import load_model
    from sca2lstm.evaluation.evaluate import evaluate
    from sca2lstm.training.pretrain import prepare_pretraining_data, train_settings
    from sca2lstm.training.trainer import Trainer

    torch.set_num_threads(1)
    ck = torch.load(ckpt, weights_only=True)
    best = next(h for h in ck["history"] if h["epoch"] == ck["epoch"])
    model, cfg, _, _ = load_model(ckpt)
    prep = prepare_pretraining_data(cfg, data_dir)
    test = [r.period(cfg.data.test_start, cfg.data.test_end) for r in prep.data.records]
    ev = evaluate(model, prep.data, test, cfg.training.seq_len, cfg.training.spinup, cfg.data.lead_days, "cpu")
    tr = Trainer(model, prep.data, prep.train_periods, prep.data, test, train_settings(cfg), "cpu",
                 ckpt.with_name("unused_state.pth"), {}, progress=False)
    mix = tr._validation_mixture()  # the same mixture, on the test years
    val_nse = statistics.median(m["model"]["nse"] for m in ck["val_metrics"].values())
    return {"epoch": ck["epoch"], "epochs_run": len(ck["history"]) - 1,
            "val_hindcast_mse": best["val_hindcast_mse"], "val_leads_mse": best["val_mse_leads"],
            "val_head": best.get("val_head", best.get("val_pinball")), "val_nse": val_nse,
            "test_hindcast_mse": ev.loss, "test_leads_mse": mix["mse_leads"], "test_head": mix["head"],
            "test_nse": ev.median("model", "nse")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data_dir", default="../shared/data/camels_gb")
    ap.add_argument("--seeds", type=int, nargs="+", default=[42, 7, 3])
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--out", default="bench_output/validation_loss")
    a = ap.parse_args()
    out = Path(a.out)
    rows = {}
    for seed in a.seeds:
        for v in VARIANTS:
            rows[(v, seed)] = scores(train(out, v, seed, a.data_dir, a.epochs), a.data_dir)
    keys = ("epoch", "epochs_run", "val_hindcast_mse", "val_leads_mse", "val_head", "val_nse",
            "test_hindcast_mse", "test_leads_mse", "test_head", "test_nse")
    print("| validation_loss | seed | " + " | ".join(keys) + " |")
    print("|---|---|" + "---|" * len(keys))
    for (v, seed), r in rows.items():
        print(f"| {v} | {seed} | " + " | ".join(f"{r[k]:.4f}" if isinstance(r[k], float) else str(r[k])
                                               for k in keys) + " |")
    print("\nPaired change, training_mixture - hindcast, mean over seeds (± s.e.):")
    for k in keys[2:]:
        d = np.array([rows[("training_mixture", s)][k] - rows[("hindcast", s)][k] for s in a.seeds])
        se = d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else float("nan")
        print(f"  {k:18s} {d.mean():+.4f} ± {se:.4f}")


if __name__ == "__main__":
    main()
