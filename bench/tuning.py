"""Samplers compared at an equal trial budget: sca, tpe and random (pso with --samplers), on the 9 sample
basins, over 3 seeds; and the gradient-guided SCA optimiser against AdamW at equal wall time.

Samplers (default section ``samplers``). Each (sampler, seed) is one ``sca2lstm tune`` study of ``--trials``
short trials (a trial pretrains a small model for a few short epochs, so the whole protocol fits a
shared 2-core machine); the same search space, pruner, trial size and training seed for every sampler:
only the sampler and its seed differ. Per study it records the best-so-far validation loss per trial (a
plot of the mean and range over seeds), and the winner, chosen on validation loss only, is scored once
on the test years beside persistence. Studies are stored in SQLite under ``--out``: rerunning the
command resumes them.

Optimiser (section ``optimizer``). The default model size and windows (the 9 basins), trained for
``--seconds`` of wall time each with ``training.optimizer`` adamw and sca, over 3 seeds, one thread;
the validation loss and median NSE of the best epoch within that time.

    python bench/tuning.py --threads 1                  # both sections (nice -n 5 on a shared machine)
    python bench/tuning.py --sections optimizer --seconds 120
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

DATA = REPO.parent / "shared" / "data" / "camels_gb"

# The trial: a small model, short windows and short epochs (seconds per trial on one thread).
TRIAL = {"training": {"seq_len": 120, "spinup": 30, "epochs": 4, "windows_per_epoch": 192, "batch_size": 32,
                      "patience": 4, "forecast_leads": 7},
         "model": {"attention_hidden_size": 16, "embedding_size": 8}}
SPACE = {"training.learning_rate": {"low": 1e-4, "high": 3e-2, "log": True},
         "model.hidden_size": {"low": 16, "high": 64, "step": 16},
         "model.dropout": {"low": 0.0, "high": 0.4},
         "training.batch_size": {"choices": [16, 32, 64]}}


def _cfg(data_dir, overrides: dict):
    from sca2lstm.config import load_config
    over = {"data": {"data_dir": str(data_dir)}}
    for k, v in overrides.items():
        over.setdefault(k, {}).update(v)
    return load_config(overrides=over)


def _test_scores(model, prep, cfg, device="cpu") -> dict:
    """The model's test-period medians (NSE, and persistence's on the same days)."""
    from sca2lstm.evaluation.evaluate import evaluate
    d = cfg.data
    periods = [r.period(d.test_start, d.test_end) for r in prep.data.records]
    ev = evaluate(model, prep.data, periods, cfg.training.seq_len, cfg.training.spinup, d.lead_days, device)
    return {"test_nse_median": ev.median("model", "nse"), "test_persistence_nse_median": ev.median("persistence", "nse")}


def run_samplers(args) -> pd.DataFrame:
    from sca2lstm.evaluation.tuning_plots import best_so_far, plot_best_so_far
    from sca2lstm.training.tune import run_study

    out = Path(args.out)
    rows, curves = [], {}
    for sampler in args.samplers:
        for seed in args.seeds:
            cfg = _cfg(args.data_dir, {**TRIAL, "tune": {"sampler": sampler, "trials": args.trials, "population": 6,
                                                          "pruner": "median", "objective": "val_loss",
                                                          "space": SPACE}})
            best = {"value": np.inf}

            def keep(number, outcome, best=best):  # the best model so far, for its one test score
                if outcome.value < best["value"]:
                    best.update(value=outcome.value, number=number, model=outcome.model, prep=outcome.prepared,
                                cfg=outcome.cfg)

            t0 = time.time()
            name = f"{sampler}_seed{seed}"
            res = run_study(cfg, out / name, data_dir=args.data_dir, study_name=name, seed=seed, on_trial=keep,
                            echo=lambda s, name=name: print(f"[{name}] {s}", flush=True))
            study = res["study"]
            trials = sorted(study.trials, key=lambda t: t.number)[:args.trials]
            vals = [t.value if t.state.name == "COMPLETE" else np.nan for t in trials]
            curves.setdefault(sampler, []).append(best_so_far(vals))
            bt = res["best"]
            row = {"sampler": sampler, "seed": seed, "best_trial": bt.number, "val_loss": bt.value,
                   "val_nse_median": bt.user_attrs.get("val_nse_median"),
                   "pruned": sum(t.state.name == "PRUNED" for t in trials), "minutes": round((time.time() - t0) / 60, 1),
                   **{k.split(".")[-1]: v for k, v in bt.params.items()}}
            if best.get("number") == bt.number:  # the winner trained in this process: score it on test once
                row.update(_test_scores(best["model"], best["prep"], best["cfg"]))
            else:
                row.update(test_nse_median=np.nan, test_persistence_nse_median=np.nan)
                print(f"[{name}] the winner was trained by an earlier run; its test score is left out "
                      "(delete the study folder to rerun it)")
            rows.append(row)
            print(json.dumps(row, default=str), flush=True)
    table = pd.DataFrame(rows)
    table.to_csv(out / "samplers.csv", index=False, float_format="%.4f")
    n = min(len(c) for cs in curves.values() for c in cs)
    plot_best_so_far({s: np.array([c[:n] for c in cs]) for s, cs in curves.items()}, out / "best_so_far.png",
                     "best validation loss so far",
                     title=f"{len(args.seeds)} seeds x {n} trials, 9 basins (lower is better)")
    mean = pd.DataFrame({s: np.nanmean(np.array([c[:n] for c in cs]), axis=0) for s, cs in curves.items()})
    mean.index += 1
    mean.to_csv(out / "best_so_far_mean.csv", index_label="trial", float_format="%.4f")
    print(mean.iloc[[0, 5, 11, 17, n - 1] if n >= 18 else [n - 1]].to_string(float_format="%.4f"))
    print(table.groupby("sampler")[["val_loss", "val_nse_median", "test_nse_median", "test_persistence_nse_median"]]
          .median().to_string(float_format="%.4f"))
    return table


def run_optimizer(args) -> pd.DataFrame:
    from sca2lstm.training.pretrain import prepare_pretraining_data, train_settings
    from sca2lstm.training.runtime import seed_everything
    from sca2lstm.training.trainer import Trainer
    from sca2lstm.models.sca2lstm import SCA2LSTM
    import dataclasses
    import tempfile

    rows = []
    # The trial's model and windows (TRIAL), longer: epochs of 256 windows until the time is spent.
    cfg0 = _cfg(args.data_dir, {**TRIAL, "training": {**TRIAL["training"], "epochs": 1000, "patience": 1000,
                                                      "windows_per_epoch": 256}})
    prep = prepare_pretraining_data(cfg0, args.data_dir)
    # SCA's learning rate is a step length per tensor, not Adam's: two values, the better one chosen on
    # validation (reported apart, so the choice is visible).
    runs = [("adamw", cfg0.training.learning_rate)] + [("sca", lr) for lr in args.sca_lr]
    for seed in args.seeds:
        for opt, lr in runs:
            cfg = cfg0.replace(training={"optimizer": opt, "seed": seed, "learning_rate": lr})
            seed_everything(seed)
            model = SCA2LSTM(cfg)
            s = dataclasses.replace(train_settings(cfg), time_budget_s=args.seconds)
            with tempfile.TemporaryDirectory() as tmp:
                tr = Trainer(model, prep.data, prep.train_periods, prep.data, prep.val_periods, s, "cpu",
                             Path(tmp) / "state.pth", {}, progress=False)
                t0 = time.time()
                res = tr.fit()
            h = pd.DataFrame(res["history"])
            best = h.loc[h["val_loss"].idxmin()]
            row = {"optimizer": opt, "learning_rate": lr, "seed": seed, "seconds": round(time.time() - t0, 1),
                   "epochs": int(h["epoch"].max()), "best_epoch": int(best["epoch"]),
                   "val_loss": best["val_loss"], "val_nse_median": best["val_nse_median"],
                   "epoch0_val_loss": h.loc[0, "val_loss"]}
            rows.append(row)
            print(json.dumps(row), flush=True)
    table = pd.DataFrame(rows)
    table.to_csv(Path(args.out) / "optimizer.csv", index=False, float_format="%.4f")
    print(table.groupby(["optimizer", "learning_rate"])[["val_loss", "val_nse_median", "epochs"]].agg(["median", "min", "max"])
          .to_string(float_format="%.4f"))
    return table


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data_dir", default=str(DATA))
    p.add_argument("--out", default=str(REPO / "bench_output" / "tuning"))
    p.add_argument("--sections", nargs="+", default=["samplers", "optimizer"], choices=["samplers", "optimizer"])
    p.add_argument("--samplers", nargs="+", default=["sca", "tpe", "random"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--trials", type=int, default=24)
    p.add_argument("--seconds", type=float, default=90.0, help="optimizer section: wall time per run")
    p.add_argument("--sca_lr", nargs="+", type=float, default=[2e-3, 2e-2], help="optimizer section: SCA step lengths")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    import logging

    import torch
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    if "samplers" in args.sections:
        run_samplers(args)
    if "optimizer" in args.sections:
        run_optimizer(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
