#!/usr/bin/env python
"""SCA2LSTM benchmark harness: accuracy, patchy records, leave-one-out, more basins, speed, prediction, DDP and memory.

Run from the repository root (one command; ``--quick`` is a ~3-minute smoke run of the harness)::

    python bench/run_benchmarks.py [--data_dir ../shared/data/camels_gb] [--out bench_output] [--quick]
                                   [--only accuracy,gaps,loo,scaling,speed,predict,ddp,memory]

Every section prints its tables and writes them as CSV into ``--out``; ``results.json`` there holds
all tables, the summaries and the environment. Every number is measured by this script, except the
NeuralHydrology rows, which are reference values quoted from the issue and labelled as such.
Training runs each happen in a fresh spawned process, so their peak RSS (VmHWM) is per run.
Everything runs on the CPU. Timings on a shared machine are noisy: compare numbers measured side by
side in one run (the speed section interleaves its variants for that reason).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import multiprocessing as mp
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `python bench/run_benchmarks.py` puts bench/, not the repo root, on the path
    sys.path.insert(0, str(REPO))
if str(REPO / "bench") not in sys.path:  # the spawned workers import gbm_reference from there
    sys.path.insert(0, str(REPO / "bench"))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

SECTIONS = ("accuracy", "gaps", "loo", "scaling", "speed", "predict", "ddp", "memory")
DEFAULT_DATA_DIR = REPO.parent / "shared" / "data" / "camels_gb"
FULL_RECORD = ("1970-10-01", "2015-09-30")

# Reference values, NOT measured here: NSE on the test period as reported in the issue.
REFERENCE_LABEL = "NeuralHydrology 1.13.0, reported in the issue, not measured here"
REFERENCE_BASINS = ["10002", "10003", "22001", "32006", "39025", "42003", "51001", "75003", "79005"]
REFERENCE_NSE = {
    "NH persistence": [0.444, 0.728, 0.290, 0.648, 0.608, 0.210, 0.767, 0.900, 0.353],
    "NH CudaLSTM": [0.816, 0.874, 0.802, 0.868, 0.884, 0.749, 0.904, 0.902, 0.869],
    "NH ARLSTM": [0.844, 0.921, 0.808, 0.908, 0.902, 0.784, 0.930, 0.912, 0.882],
}



# ============================================================================ settings
@dataclass
class Settings:
    """What a run does; ``--quick`` shrinks every knob so the harness itself can be smoke-tested."""

    data_dir: Path
    out: Path
    quick: bool
    verbose: bool = False
    threads: int = 0                                         # torch threads in every process; 0: torch's default
    train_overrides: dict = field(default_factory=dict)     # on top of the default config
    loo_basins: tuple = ("32006", "42003", "22001")
    loo_train_overrides: dict = field(default_factory=dict)
    finetune_overrides: dict = field(default_factory=dict)  # empty: the guide's defaults
    speed_reps: int = 7
    speed_warmup: int = 1
    predict_reps: int = 3
    naive_windows: int = 200
    ddp_epochs: int = 3
    ddp_coverage: float | None = None
    memory_basins: int = 671
    extra_seeds: tuple = ()                                  # accuracy: more seeds, for the seed-to-seed spread
    gap_fraction: float = 0.2                                # gaps: share of test days without observed discharge

    @classmethod
    def make(cls, data_dir, out, quick: bool, verbose: bool = False, threads: int = 0,
             extra_seeds=()) -> "Settings":
        s = cls(Path(data_dir).resolve(), Path(out).resolve(), quick, verbose, threads)
        s.extra_seeds = tuple(extra_seeds)  # ints: parse_args converts them
        if quick:
            s.train_overrides = {"training": {"epochs": 2, "epoch_coverage": 0.1}}
            s.loo_basins = ("32006", "42003")
            s.loo_train_overrides = {"training": {"epochs": 1, "epoch_coverage": 0.1}}
            s.finetune_overrides = {"epochs": 1, "epoch_coverage": 0.5}
            s.speed_reps, s.speed_warmup = 1, 1
            s.predict_reps, s.naive_windows = 1, 10
            s.ddp_epochs, s.ddp_coverage = 1, 0.1
            s.memory_basins = 30
        return s

    @property
    def cache_dir(self) -> Path:
        return self.out / "cache"

    def config(self, extra: dict | None = None):
        """The project's DEFAULT config (never a ./sca2lstm.yaml) with this run's data, cache and overrides."""
        from sca2lstm.config import DEFAULT_CONFIG_PATH, load_config

        over = {"data": {"data_dir": str(self.data_dir), "cache_dir": str(self.cache_dir)}}
        for part in (self.train_overrides, extra or {}):
            for sec, vals in part.items():
                over.setdefault(sec, {}).update(vals)
        return load_config(DEFAULT_CONFIG_PATH, over)


# ============================================================================ small helpers
def peak_rss_bytes() -> int:
    """Peak resident set size of this process's program: VmHWM from /proc where it exists.

    Not ``ru_maxrss`` on Linux: the kernel carries the parent's peak over fork + exec, so every spawned
    worker of a large parent would report at least the parent's peak. Elsewhere (macOS) ru_maxrss.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024  # kB
    except OSError:
        pass
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(r if sys.platform == "darwin" else r * 1024)


def _gb(n_bytes) -> float:
    return n_bytes / 1e9


def _child_main(fn, args, kwargs, log_file, verbose, threads):
    """Body of a spawned worker: log to a file, run ``fn``, return (result, seconds, peak RSS)."""
    from sca2lstm.cli.common import setup_logging

    set_threads(threads)
    Path(log_file).parent.mkdir(parents=True, exist_ok=True)
    setup_logging(quiet=not verbose, logfile=log_file)
    t0 = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - t0, peak_rss_bytes()


def run_isolated(S: Settings, name: str, fn, *args, **kwargs):
    """Run ``fn(*args, **kwargs)`` in a fresh spawned process (its log in ``out/logs/<name>.log``).

    Returns ``(result, wall seconds inside the worker, peak RSS of the worker in bytes)``.
    """
    log_file = S.out / "logs" / f"{name}.log"
    print(f"  [{time.strftime('%H:%M:%S')}] {name} (log: {log_file.relative_to(S.out)})", flush=True)
    with ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn")) as ex:
        return ex.submit(_child_main, fn, args, kwargs, str(log_file), S.verbose, S.threads).result()


def set_threads(n: int) -> None:
    """``torch.set_num_threads(n)`` when n > 0. On a busy machine 1 thread can be several times faster
    than 2: the OpenMP workers wait for each other whenever one of them is descheduled."""
    if n > 0:
        import torch

        torch.set_num_threads(n)


def median_time(fn, reps: int, warmup: int = 0) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(max(1, reps)):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def show(title: str, df: pd.DataFrame, note: str | None = None) -> None:
    print(f"\n{title}")
    print(df.to_string(index=False, float_format=lambda v: f"{v:.3f}", na_rep="-"))
    if note:
        print(note)


def with_median_row(table: pd.DataFrame, counts=()) -> pd.DataFrame:
    """``table`` (one row per basin) with a last row "median" of every numeric column; ``counts`` are
    integer columns, rounded back to integers in that row."""
    med = table.drop(columns="basin").median(numeric_only=True).to_dict()
    table = pd.concat([table, pd.DataFrame([{"basin": "median", **med}])], ignore_index=True)
    for col in counts:
        table[col] = table[col].round().astype("Int64")
    return table


def metric(m: dict, who: str, name: str) -> float:
    v = m[who][name]
    return float(v) if v is not None else float("nan")


# ============================================================================ worker jobs (spawned)
def _pretrain_job(cfg_dict: dict, output: str, data_dir: str, basins, baseline: bool, test: bool = True,
                  gap_fraction: float | None = None) -> dict:
    """Pretrain with the project's pipeline; optionally score the lead-1 forecast on the TEST period,
    and with ``gap_fraction`` also on a gappy record (:func:`_gap_scores`)."""
    from sca2lstm.config import Config
    from sca2lstm.models.baseline import LSTMBaseline
    from sca2lstm.training.pretrain import pretrain
    from sca2lstm.evaluation.evaluate import evaluate

    cfg = Config.from_dict(cfg_dict)
    res = pretrain(cfg, output, data_dir=data_dir, basins=basins, progress=False,
                   model_factory=LSTMBaseline if baseline else None)
    model, prep = res["model"], res["prepared"]
    out = {"checkpoint": str(res["checkpoint"]), "train_seconds": res["seconds"],
           "epochs_run": len(res["history"]) - 1,
           "best_epoch": int(min(res["history"], key=lambda r: r["val_loss"])["epoch"]),
           "n_params": sum(p.numel() for p in model.parameters())}
    if test:
        d, t = cfg.data, cfg.training
        periods = [r.period(d.test_start, d.test_end) for r in prep.data.records]
        ev = evaluate(model, prep.data, periods, t.seq_len, t.spinup, d.lead_days, "cpu")
        out["test"] = ev.per_basin
        out["floods"] = _flood_stats(prep, ev.forecasts)
        out["forecasts"] = _forecast_series(prep, ev.forecasts)
    if gap_fraction is not None:
        out["gappy"] = _gap_scores(model, cfg, prep.scalers, data_dir, prep.basins, gap_fraction)
    return out


def _flood_stats(prep, forecasts) -> dict:
    """Per basin, in m3/s: the largest observed flow of the training and of the test period, the
    largest test forecast, the mean relative error of the forecast on the test days whose observed
    flow is in the top 1 % (negative: floods under-forecast), and those days' share of the squared error
    (what they cost in NSE; NaN for a perfect forecast)."""
    data, out, inv = prep.data, {}, prep.data.scalers.inverse_y
    # evaluate() forecasts every record in order, so forecast b belongs to record b
    for b, (fc, (t0, t1)) in enumerate(zip(forecasts, prep.train_periods)):
        o = data.offsets[b]
        obs = inv(data.y[o + fc.i0:o + fc.i1].astype(np.float64), fc.basin)
        pred = inv(fc.pred.astype(np.float64), fc.basin)
        train = inv(data.y[o + t0:o + t1].astype(np.float64), fc.basin)
        ok = np.isfinite(obs) & np.isfinite(pred)
        obs, pred = obs[ok], pred[ok]
        top = obs >= np.quantile(obs, 0.99)
        sq = (pred - obs) ** 2
        out[fc.basin] = {"train_max_obs": float(np.nanmax(train)), "test_max_obs": float(obs.max()),
                         "test_max_forecast": float(pred.max()),
                         "top1pct_bias": float((pred[top] - obs[top]).sum() / obs[top].sum()),
                         "top1pct_sq_error_share": float(sq[top].sum() / sq.sum()) if sq.sum() > 0 else float("nan")}
    return out


def _forecast_series(prep, forecasts) -> dict:
    """{basin: forecast in m3/s as a Series indexed by date}, for comparing models day by day."""
    out = {}
    for fc, rec in zip(forecasts, prep.data.records):  # evaluate() keeps the records' order
        dates = pd.DatetimeIndex(rec.dates[fc.i0:fc.i1].astype("datetime64[ns]"), name="date")
        out[fc.basin] = pd.Series(prep.data.scalers.inverse_y(fc.pred.astype(np.float64), fc.basin), index=dates)
    return out


def _gbm_job(cfg_dict: dict, data_dir: str, basins, threads: int) -> dict:
    """LightGBM reference (bench/gbm_reference.py): test forecasts of every basin."""
    from gbm_reference import gbm_forecasts

    from sca2lstm.config import Config

    t0 = time.perf_counter()
    forecasts, n_trees = gbm_forecasts(Config.from_dict(cfg_dict), data_dir, basins, threads=threads)
    return {"forecasts": forecasts, "trees": n_trees, "train_seconds": time.perf_counter() - t0}


def _loo_job(cfg_dict: dict, basin: str, others: list, finetune_overrides: dict, data_dir: str,
             root: str) -> dict:
    """One held-out basin: pretrain on ``others``, then score zero-shot, fine-tuned and from-scratch
    models on the basin's TEST period with the prediction API (persistence on the same days)."""
    from sca2lstm.config import Config
    from sca2lstm.evaluation.predict import predict
    from sca2lstm.training.finetune import finetune
    from sca2lstm.training.pretrain import pretrain

    cfg = Config.from_dict(cfg_dict)
    d, root = cfg.data, Path(root)

    def test_metrics(ckpt):
        return predict(ckpt, basin, d.test_start, d.test_end, data_dir=data_dir).metrics

    pre = pretrain(cfg, root / "pretrained.pth", data_dir=data_dir, basins=others, progress=False)
    zero_shot = test_metrics(pre["checkpoint"])  # the basin's discharge scale from its training period
    t0 = time.perf_counter()
    ft = finetune(pre["checkpoint"], basin, finetune_overrides or None, data_dir=data_dir,
                  out_root=root / "finetune", progress=False)
    ft_wall = time.perf_counter() - t0
    fine_tuned = test_metrics(ft["checkpoint"])
    sc = pretrain(cfg, root / "scratch.pth", data_dir=data_dir, basins=[basin], progress=False)
    scratch = test_metrics(sc["checkpoint"])
    return {"zero_shot": zero_shot, "fine_tuned": fine_tuned, "scratch": scratch,
            "pretrain_s": pre["seconds"], "finetune_s": ft["seconds"], "finetune_wall_s": ft_wall,
            "scratch_s": sc["seconds"]}


def _generate_job(out_dir: str, n_basins: int) -> int:
    from sca2lstm.data.synthetic import generate_synthetic

    return len(generate_synthetic(out_dir, n_basins=n_basins, seed=42))


def _prepare_job(cfg_dict: dict, data_dir: str) -> dict:
    from sca2lstm.config import Config
    from sca2lstm.training.pretrain import prepare_pretraining_data

    prep = prepare_pretraining_data(Config.from_dict(cfg_dict), data_dir)
    d = prep.data
    return {"basins": len(prep.basins), "days": int(sum(len(r.dates) for r in d.records)),
            "array_bytes": int(d.x.nbytes + d.y.nbytes + sum(r.x.nbytes + r.y.nbytes for r in d.records))}


def _idle_job() -> None:
    """Imports what the other jobs import: the floor under every worker's peak RSS."""
    import sca2lstm.training.finetune  # noqa: F401
    import sca2lstm.training.pretrain  # noqa: F401


# ============================================================================ 1. accuracy
def section_accuracy(S: Settings) -> dict:
    cfg = S.config()
    runs, per, floods, series = [], {}, {}, {}
    for name, (res, wall, rss) in _pretrain_both(S, cfg).items():
        per[name] = res["test"]
        floods[name] = res["floods"]
        runs.append({"model": name, "parameters": res["n_params"], "epochs_run": res["epochs_run"],
                     "best_epoch": res["best_epoch"], "train_s": res["train_seconds"], "process_wall_s": wall,
                     "peak_rss_GB": _gb(rss)})
        series[name] = res["forecasts"]
    basins = sorted(per["SCA2LSTM"])
    gbm = _gbm_reference(S, cfg, basins, series, runs)
    rows = []
    for b in basins:
        s, lstm = per["SCA2LSTM"][b], per["LSTMBaseline"][b]
        rows.append({"basin": b, "persistence_NSE": metric(s, "persistence", "nse"),
                     "LSTM_NSE": metric(lstm, "model", "nse"), "SCA2LSTM_NSE": metric(s, "model", "nse"),
                     **({"GBM_NSE": metric(gbm[b]["GBM"], "model", "nse"),
                         "mean_of_3_NSE": metric(gbm[b]["mean_of_3"], "model", "nse")} if gbm else {}),
                     "persistence_KGE": metric(s, "persistence", "kge"),
                     "LSTM_KGE": metric(lstm, "model", "kge"), "SCA2LSTM_KGE": metric(s, "model", "kge"),
                     **({"GBM_KGE": metric(gbm[b]["GBM"], "model", "kge")} if gbm else {}),
                     "test_days": int(s["n_days"])})
    table = with_median_row(pd.DataFrame(rows), counts=("test_days",))
    if gbm:  # the reference must be scored on the very days the neural models are
        days = {b: (int(per["SCA2LSTM"][b]["n_days"]), int(gbm[b]["GBM"]["n_days"])) for b in basins}
        if any(a != g for a, g in days.values()):
            raise RuntimeError(f"GBM scored on other days than SCA2LSTM: {days}")

    ref = pd.DataFrame({"basin": REFERENCE_BASINS, **REFERENCE_NSE})
    mine = table.set_index("basin")
    both = [b for b in REFERENCE_BASINS if b in mine.index]
    ref = ref[ref["basin"].isin(both)].copy()
    ref["SCA2LSTM_NSE (measured)"] = [mine.loc[b, "SCA2LSTM_NSE"] for b in ref["basin"]]
    ref = with_median_row(ref)

    sca = np.array([mine.loc[b, "SCA2LSTM_NSE"] for b in both])
    nh = {k: np.array([v[REFERENCE_BASINS.index(b)] for b in both]) for k, v in REFERENCE_NSE.items()}
    counts = {f">= {k}": int((sca >= v).sum()) for k, v in nh.items()}
    counts[">= every NH row"] = int((sca >= np.max(np.stack(list(nh.values())), axis=0)).sum())
    counts["> LSTMBaseline (NSE)"] = int(sum(mine.loc[b, "SCA2LSTM_NSE"] > mine.loc[b, "LSTM_NSE"] for b in basins))
    counts["> LSTMBaseline (KGE)"] = int(sum(mine.loc[b, "SCA2LSTM_KGE"] > mine.loc[b, "LSTM_KGE"] for b in basins))
    if gbm:
        counts["> GBM (NSE)"] = int(sum(mine.loc[b, "SCA2LSTM_NSE"] > mine.loc[b, "GBM_NSE"] for b in basins))
    counts["> measured persistence (NSE)"] = int(sum(mine.loc[b, "SCA2LSTM_NSE"] > mine.loc[b, "persistence_NSE"]
                                                     for b in basins))

    epochs = cfg.training.epochs
    show(f"Accuracy: lead-{cfg.data.lead_days} forecast, TEST period {cfg.data.test_start}..{cfg.data.test_end} "
         f"(max {epochs} epochs, default config; persistence scored on the same days)", table)
    show(f"REFERENCE ({REFERENCE_LABEL}) beside the measured SCA2LSTM NSE", ref)
    print("SCA2LSTM NSE basin counts (of %d with a reference / %d measured): %s"
          % (len(both), len(basins), ", ".join(f"{k}: {v}" for k, v in counts.items())))
    runs_df = pd.DataFrame(runs)
    show("Pretraining runs (each in a fresh process; train_s = Trainer.fit incl. validation; "
         "peak RSS = VmHWM of that process)", runs_df)
    flood_df = pd.DataFrame([{"basin": bsn, "train_max_obs": f["train_max_obs"], "test_max_obs": f["test_max_obs"],
                              **{f"{name}_max": floods[name][bsn]["test_max_forecast"] for name in floods},
                              **{f"{name}_top1pct_bias": floods[name][bsn]["top1pct_bias"] for name in floods},
                              "SCA2LSTM_top1pct_sq_error_share": floods["SCA2LSTM"][bsn]["top1pct_sq_error_share"]}
                             for bsn, f in sorted(floods["SCA2LSTM"].items())])
    show("Floods (m3/s): largest observed flow in training and test, largest test forecast, the mean "
         "relative error on the test days with the top 1 % of observed flows, and those days' share of "
         "SCA2LSTM's squared error", flood_df.round(3))
    tables = {"accuracy_per_basin": table, "accuracy_nh_reference": ref, "accuracy_runs": runs_df,
              "accuracy_floods": flood_df}
    summary = {"counts": counts, "reference_label": REFERENCE_LABEL, "max_epochs": epochs}
    if S.extra_seeds:
        spread = _seed_spread(S, cfg, per)
        tables["accuracy_seeds"] = spread
        summary["seed_medians"] = spread[spread["basin"] == "median"].drop(columns="basin").to_dict("records")
    return {"tables": tables, "summary": summary}


def _gbm_reference(S: Settings, cfg, basins, series: dict, runs: list) -> dict | None:
    """LightGBM's test forecasts (a fresh process, like the neural runs) and the day-by-day mean of the
    three models' forecasts, each scored beside persistence on the same days:
    {basin: {"GBM": paired metrics, "mean_of_3": paired metrics}}, or None without LightGBM."""
    import importlib.util

    from sca2lstm.evaluation.metrics import paired_metrics

    if importlib.util.find_spec("lightgbm") is None:
        print("GBM reference left out: LightGBM is not installed (pip install -e \".[bench]\")")
        return None
    res, wall, rss = run_isolated(S, "accuracy_GBM", _gbm_job, cfg.to_dict(), str(S.data_dir), basins, S.threads)
    runs.append({"model": "GBM (LightGBM)", "trees": res["trees"],
                 "train_s": res["train_seconds"], "process_wall_s": wall, "peak_rss_GB": _gb(rss)})
    out = {}
    for b in basins:
        f = res["forecasts"][b].set_index("date")
        nets = [series[name][b].reindex(f.index) for name in ("SCA2LSTM", "LSTMBaseline")]
        mean3 = (nets[0] + nets[1] + f["predicted"]) / 3
        out[b] = {"GBM": paired_metrics(f["observed"], f["predicted"], f["persistence"]),
                  "mean_of_3": paired_metrics(f["observed"], mean3, f["persistence"])}
    return out


def _pretrain_both(S: Settings, cfg, suffix: str = "") -> dict:
    """SCA2LSTM and LSTMBaseline pretrained on all basins, each in a fresh process:
    {name: (result of _pretrain_job, wall seconds, peak RSS bytes)}."""
    out = {}
    for name, stem, baseline in (("SCA2LSTM", "sca2lstm", False), ("LSTMBaseline", "lstm_baseline", True)):
        ckpt = S.out / "accuracy" / f"{stem}{suffix}.pth"
        out[name] = run_isolated(S, f"accuracy_{name}{suffix}", _pretrain_job, cfg.to_dict(), str(ckpt),
                                 str(S.data_dir), None, baseline)
    return out


def _seed_spread(S: Settings, cfg, first: dict) -> pd.DataFrame:
    """Both models pretrained again with each of ``S.extra_seeds``: per-basin test NSE for every seed,
    the mean over seeds, and a median row. How far apart single runs land says which differences in
    the main table mean anything."""
    seeds = [cfg.training.seed, *S.extra_seeds]
    per = {(name, seeds[0]): first[name] for name in first}
    for seed in S.extra_seeds:
        for name, (res, _, _) in _pretrain_both(S, cfg.replace(training={"seed": seed}), f"_seed{seed}").items():
            per[(name, seed)] = res["test"]
    basins = sorted(first["SCA2LSTM"])
    rows = []
    for b in basins:
        row = {"basin": b}
        for name in ("SCA2LSTM", "LSTMBaseline"):
            vals = [metric(per[(name, sd)][b], "model", "nse") for sd in seeds]
            row.update({f"{name}_seed{sd}": v for sd, v in zip(seeds, vals)})
            row[f"{name}_mean"] = float(np.mean(vals))
        rows.append(row)
    table = with_median_row(pd.DataFrame(rows))
    show(f"Seed spread: test NSE per seed ({', '.join(map(str, seeds))}) and the mean over seeds", table)
    mean = table[table["basin"] != "median"]
    print(f"SCA2LSTM mean-over-seeds NSE > LSTMBaseline mean-over-seeds NSE on "
          f"{int((mean['SCA2LSTM_mean'] > mean['LSTMBaseline_mean']).sum())} of {len(mean)} basins")
    return table


# ============================================================================ 2. patchy records
def gap_mask(n_days: int, i0: int, i1: int, fraction: float, seed: int) -> np.ndarray:
    """[n_days] bool: observed discharge removed in blocks of 1-30 days until ``fraction`` of the
    days [i0, i1) are removed (blocks may start up to 30 days before i0)."""
    rng = np.random.default_rng(seed)
    gap = np.zeros(n_days, dtype=bool)
    while i1 > i0 and gap[i0:i1].mean() < fraction:
        start = int(rng.integers(max(0, i0 - 30), i1))
        gap[start:start + int(rng.integers(1, 31))] = True
    return gap


def gap_forecast(model, cfg, scalers, data_dir, basin: str, fraction: float) -> dict:
    """Test-period forecast of ``basin`` when the gauge lost ``fraction`` of its discharge record.

    The removed days are gone from every input (lagged discharge, SSI state, residual feedback: the
    features are rebuilt from the gappy record, as a user's file would give them), never from the
    observations the forecast is scored against.

    Returns
    -------
    dict of numpy.ndarray [test days]
        ``obs`` (true flow), ``pred``, ``last`` (persistence of the last observed flow) in m3/s, and
        ``after_gap`` (bool: the observation the forecast would normally start from was removed).
    """
    from sca2lstm.data import camels_gb
    from sca2lstm.data.dataset import BasinRecord, SequenceData, load_static
    from sca2lstm.data.features import raw_features, required_columns
    from sca2lstm.evaluation.forecast import forecast_periods

    d, t = cfg.data, cfg.training
    df = camels_gb.read_timeseries(data_dir, basin, columns=required_columns(cfg))
    dates = df.index.to_numpy().astype("datetime64[D]")
    obs = df[d.target].to_numpy(np.float64)
    i0, i1 = BasinRecord(basin, dates, np.empty((len(dates), 0)), obs).period(d.test_start, d.test_end)
    gap = gap_mask(len(df), i0, i1, fraction, seed=int(basin) if basin.isdigit() else 0)
    gappy = df.copy()
    gappy.loc[gap, d.target] = np.nan
    x, y = raw_features(gappy, cfg)
    data = SequenceData([BasinRecord(basin, dates, x, y)], load_static(data_dir, [basin], cfg), scalers,
                        pad=t.seq_len)
    fc = forecast_periods(model, data, [(i0, i1)], t.seq_len, t.spinup)[0]
    last = gappy[d.target].ffill().shift(d.lead_days).to_numpy(np.float64)
    return {"obs": obs[i0:i1], "pred": scalers.inverse_y(fc.pred.astype(np.float64), basin),
            "last": last[i0:i1], "after_gap": gap[i0 - d.lead_days:i1 - d.lead_days]}


def _gap_scores(model, cfg, scalers, data_dir, basins, fraction: float) -> dict:
    """Per basin: NSE of the gappy-record forecast on every test day and on the days after a removed
    observation, beside persistence of the last observed flow on the same days."""
    from sca2lstm.evaluation.metrics import nse

    out = {}
    for basin in basins:
        f = gap_forecast(model, cfg, scalers, data_dir, basin, fraction)
        obs, pred, last = f["obs"], f["pred"], f["last"]
        ok = np.isfinite(obs) & np.isfinite(pred) & np.isfinite(last)
        aft = ok & f["after_gap"]
        out[basin] = {"all_NSE": nse(obs[ok], pred[ok]), "all_persistence_NSE": nse(obs[ok], last[ok]),
                      "after_gap_NSE": nse(obs[aft], pred[aft]),  # NaN with < 2 such days
                      "after_gap_persistence_NSE": nse(obs[aft], last[aft]),
                      "after_gap_days": int(aft.sum())}
    return out


def section_gaps(S: Settings) -> dict:
    cfg = S.config()
    default_p = cfg.training.discharge_dropout
    variants = sorted({0.0, default_p})
    res = {p: run_isolated(S, f"gaps_dropout{p}", _pretrain_job, cfg.replace(training={"discharge_dropout": p}).to_dict(),
                           str(S.out / "gaps" / f"sca2lstm_dropout{p}.pth"), str(S.data_dir), None, False,
                           gap_fraction=S.gap_fraction)[0]
           for p in variants}
    rows = []
    for b in sorted(res[variants[0]]["test"]):
        g0 = res[variants[0]]["gappy"][b]
        row = {"basin": b, "after_gap_days": g0["after_gap_days"],
               "persistence_gappy_NSE": g0["all_persistence_NSE"],
               "persistence_after_gap_NSE": g0["after_gap_persistence_NSE"]}
        for p in variants:
            row[f"dropout{p}_full_NSE"] = metric(res[p]["test"][b], "model", "nse")
            row[f"dropout{p}_gappy_NSE"] = res[p]["gappy"][b]["all_NSE"]
            row[f"dropout{p}_after_gap_NSE"] = res[p]["gappy"][b]["after_gap_NSE"]
        rows.append(row)
    table = with_median_row(pd.DataFrame(rows), counts=("after_gap_days",))
    show(f"Patchy records: SCA2LSTM pretrained with training.discharge_dropout {' and '.join(map(str, variants))} "
         f"(default {default_p}); test NSE with the full record (full), with {S.gap_fraction:.0%} of the test days' "
         "discharge removed in blocks of 1-30 days (gappy: every day; after_gap: the days whose previous "
         "observation was removed); persistence = the last observed flow, on the same days", table.round(3))
    return {"tables": {"gaps": table}, "summary": {"gap_fraction": S.gap_fraction, "default_dropout": default_p}}


# ============================================================================ 3. leave-one-out
def section_loo(S: Settings) -> dict:
    from sca2lstm.data import camels_gb

    cfg = S.config(S.loo_train_overrides)
    d = cfg.data
    all_basins = camels_gb.list_basins(S.data_dir)
    held_out = [b for b in S.loo_basins if b in all_basins]
    rows = []
    for b in held_out:
        root = S.out / "loo" / b
        shutil.rmtree(root, ignore_errors=True)
        others = [x for x in all_basins if x != b]
        r, _, _ = run_isolated(S, f"loo_{b}", _loo_job, cfg.to_dict(), b, others, S.finetune_overrides,
                               str(S.data_dir), str(root))
        zs, fm, sm = r["zero_shot"], r["fine_tuned"], r["scratch"]
        rows.append({"basin": b, "persistence_NSE": metric(zs, "persistence", "nse"),
                     "zero_shot_NSE": metric(zs, "model", "nse"), "fine_tuned_NSE": metric(fm, "model", "nse"),
                     "scratch_NSE": metric(sm, "model", "nse"),
                     "persistence_KGE": metric(zs, "persistence", "kge"), "zero_shot_KGE": metric(zs, "model", "kge"),
                     "fine_tuned_KGE": metric(fm, "model", "kge"), "scratch_KGE": metric(sm, "model", "kge"),
                     "test_days": int(zs["n_days"]), "pretrain_s": r["pretrain_s"], "finetune_s": r["finetune_s"],
                     "finetune_wall_s": r["finetune_wall_s"], "scratch_s": r["scratch_s"]})
    table = pd.DataFrame(rows)
    ft_desc = "guide defaults" if not S.finetune_overrides else f"overrides {S.finetune_overrides}"
    show(f"Leave-one-out (pretrained on the other {len(all_basins) - 1} basins; test period "
         f"{d.test_start}..{d.test_end}; fine-tune: {ft_desc})", table,
         "*_s: Trainer.fit seconds (incl. validation); finetune_wall_s: the whole finetune() call "
         "(loading, training, plots, report)")
    return {"tables": {"loo": table}, "summary": {"held_out": held_out, "finetune": ft_desc}}


# ============================================================================ 3b. more basins
def scaling_groups(basins) -> dict:
    """Pretraining sets of growing size that cover every basin equally: each basin alone, each third of
    the sorted basins, each complement of a third (two thirds; every basin is in two of them) and all.
    {label: list of basin lists}."""
    basins = sorted(basins)
    thirds = [list(t) for t in np.array_split(basins, 3) if len(t)]
    return {"alone": [[b] for b in basins], "third": thirds,
            "two_thirds": [[b for b in basins if b not in t] for t in thirds if len(t) < len(basins)],
            "all": [basins]}


def section_scaling(S: Settings) -> dict:
    """Test NSE of each basin when SCA2LSTM is pretrained on more and more basins (default config):
    does the accuracy still grow with the number of basins, or has it levelled off?"""
    from sca2lstm.data import camels_gb

    cfg = S.config()
    groups = scaling_groups(camels_gb.list_basins(S.data_dir))
    scores = {label: {} for label in groups}          # label -> basin -> [NSE of each run that had it]
    sizes = {}
    for label, sets in groups.items():
        sizes[label] = len(sets[0])
        for i, members in enumerate(sets):
            r, _, _ = run_isolated(S, f"scaling_{label}_{i}", _pretrain_job, cfg.to_dict(),
                                   str(S.out / "scaling" / f"{label}_{i}.pth"), str(S.data_dir), members, False)
            for b, m in r["test"].items():
                scores[label].setdefault(b, []).append(metric(m, "model", "nse"))
    basins = sorted(scores["all"])
    table = pd.DataFrame([{"basin": b, **{f"{lab}_NSE": float(np.mean(scores[lab][b])) for lab in groups}}
                          for b in basins])
    mean_row = {"basin": "mean", **table.drop(columns="basin").mean().to_dict()}
    table = pd.concat([with_median_row(table), pd.DataFrame([mean_row])], ignore_index=True)
    show("More basins: SCA2LSTM test NSE of each basin when pretrained on it alone, with a third, with two "
         f"thirds (mean of the two runs that include it) and with all of them (pretraining set sizes "
         f"{', '.join(f'{k} {v}' for k, v in sizes.items())}; default config, seed {cfg.training.seed})", table)
    return {"tables": {"scaling": table}, "summary": {"set_sizes": sizes}}


# ============================================================================ 4. speed
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


# ============================================================================ 5. predict
def section_predict(S: Settings) -> dict:
    import torch

    from sca2lstm.data.dataset import SequenceData, chunk_starts, load_basin, load_static
    from sca2lstm.evaluation.forecast import forecast_periods
    from sca2lstm.evaluation.metrics import paired_metrics
    from sca2lstm.evaluation.predict import predict
    from sca2lstm.checkpoint import load_model

    ckpt = S.out / "accuracy" / "sca2lstm.pth"
    source = "the accuracy section's SCA2LSTM"
    if not ckpt.is_file():  # timing does not depend on training quality; a short run is enough
        ckpt = S.out / "predict" / "sca2lstm.pth"
        source = "a 1-epoch SCA2LSTM (no accuracy checkpoint in --out)"
        cfg1 = S.config({"training": {"epochs": 1, "epoch_coverage": 0.1}})
        run_isolated(S, "predict_pretrain", _pretrain_job, cfg1.to_dict(), str(ckpt), str(S.data_dir), None,
                     False, False)
    bundle = load_model(ckpt)
    model, cfg, scalers, _ = bundle
    L, spinup = cfg.training.seq_len, cfg.training.spinup
    basin = "32006" if "32006" in scalers.basins else sorted(scalers.basins)[0]

    # The chunked batched forecast through the public API (reads the basin, scales, forecasts).
    t_api = median_time(lambda: predict(ckpt, basin, *FULL_RECORD, data_dir=S.data_dir, model_bundle=bundle),
                        S.predict_reps, warmup=1)
    # The same scaled arrays predict() builds, to time the model runs alone.
    rec = load_basin(S.data_dir, basin, cfg)
    data = SequenceData([rec], load_static(S.data_dir, [basin], cfg), scalers, pad=L)
    n = len(rec.dates)
    n_chunks = len(chunk_starts(0, n, L, spinup))
    chunked = {}

    def run_chunked():
        chunked["pred"] = forecast_periods(model, data, [(0, n)], L, spinup)[0].pred

    t_chunk = median_time(run_chunked, S.predict_reps)

    def arrays(start, length):
        x, miss, y, st, stm = data.gather(np.array([0]), np.array([start]), length)
        return [torch.from_numpy(a) for a in (x, miss, st, stm, y)]

    one = {}

    @torch.no_grad()
    def run_one_pass():  # batch of 1 over the whole record, one sequential pass
        a = arrays(0, n)
        one["pred"] = model(*a[:4], q_obs=a[4])[0].numpy()

    t_one = median_time(run_one_pass, S.predict_reps)

    days = np.linspace(L - 1, n - 1, S.naive_windows).astype(int)
    naive = []

    @torch.no_grad()
    def run_naive():  # one overlapping window per forecast day, each run on its own
        naive.clear()
        for day in days:
            a = arrays(day - L + 1, L)
            naive.append(float(model(*a[:4], q_obs=a[4])[0, -1]))

    t0 = time.perf_counter()
    run_naive()
    per_window = (time.perf_counter() - t0) / len(days)
    t_naive = per_window * n

    inv = lambda v: scalers.inverse_y(np.asarray(v, dtype=np.float64), basin)  # noqa: E731
    # Agreement on the test period: the API's chunked forecast vs the one-pass run, same observed days.
    test = predict(ckpt, basin, data_dir=S.data_dir, model_bundle=bundle)
    i0, i1 = rec.period(cfg.data.test_start, cfg.data.test_end)
    s = test.series
    one_m = paired_metrics(s["observed"], inv(one["pred"][i0:i1]), s["persistence"])
    diff = np.abs(s["predicted"].to_numpy() - inv(one["pred"][i0:i1]))
    naive_diff = np.abs(inv(naive) - inv(chunked["pred"][days]))
    mean_q = float(np.nanmean(s["observed"]))

    table = pd.DataFrame([
        {"method": "predict() API, chunked batched", "windows": n_chunks,
         "seconds": t_api, "measured": f"median of {S.predict_reps}"},
        {"method": "chunked forecast, model runs only", "windows": n_chunks,
         "seconds": t_chunk, "measured": f"median of {S.predict_reps}"},
        {"method": "one pass, batch of 1 over the record", "windows": 1, "seconds": t_one,
         "measured": f"median of {S.predict_reps}"},
        {"method": "naive per-day windows (extrapolated)", "windows": n, "seconds": t_naive,
         "measured": f"{len(days)} windows x {n} days"},
    ])
    agree = pd.DataFrame([
        {"forecast": "chunked (predict API)", "NSE": metric(test.metrics, "model", "nse"),
         "KGE": metric(test.metrics, "model", "kge"), "persistence_NSE": metric(test.metrics, "persistence", "nse"),
         "days": int(test.metrics["n_days"])},
        {"forecast": "one pass", "NSE": metric(one_m, "model", "nse"), "KGE": metric(one_m, "model", "kge"),
         "persistence_NSE": metric(one_m, "persistence", "nse"), "days": int(one_m["n_days"])},
    ])
    show(f"Prediction of basin {basin}, {n} days {FULL_RECORD[0]}..{FULL_RECORD[1]}, model loaded "
         f"({source}); window {L}, spin-up {spinup}", table)
    show(f"Chunked vs one-pass on the test period {cfg.data.test_start}..{cfg.data.test_end}", agree,
         f"max |chunked - one pass| = {np.nanmax(diff):.4f} m3/s (mean flow {mean_q:.3f} m3/s); "
         f"naive windows vs chunked on {len(days)} sampled days: max |diff| = {np.nanmax(naive_diff):.4f} m3/s")
    return {"tables": {"predict_timing": table, "predict_agreement": agree},
            "summary": {"basin": basin, "days": n, "checkpoint": str(ckpt), "source": source,
                        "max_abs_diff_chunked_vs_one_pass": float(np.nanmax(diff)),
                        "max_abs_diff_naive_vs_chunked": float(np.nanmax(naive_diff)), "mean_flow": mean_q}}


# ============================================================================ 6. DDP
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


# ============================================================================ 7. memory
def section_memory(S: Settings) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="sca2lstm_bench_mem_"))
    try:
        _, t_gen, _ = run_isolated(S, "memory_generate", _generate_job, str(tmp / "data"), S.memory_basins)
        cfg = S.config({"data": {"data_dir": str(tmp / "data"), "cache_dir": str(tmp / "fresh_cache")}})
        prep, t_prep, rss = run_isolated(S, "memory_prepare", _prepare_job, cfg.to_dict(), str(tmp / "data"))
        _, _, rss_idle = run_isolated(S, "memory_idle", _idle_job)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    df = pd.DataFrame([{"basins": prep["basins"], "days": prep["days"], "generate_s": t_gen, "prepare_s": t_prep,
                        "peak_rss_GB": _gb(rss), "idle_worker_rss_GB": _gb(rss_idle),
                        "arrays_GB": _gb(prep["array_bytes"])}])
    show(f"Memory: prepare_pretraining_data on {prep['basins']} synthetic basins x 45 years, fresh cache, one process "
         "(peak_rss = VmHWM of that process; idle = a worker that only imports the package)", df)
    return {"tables": {"memory": df}, "summary": {}}


# ============================================================================ main
RUNNERS = {"accuracy": section_accuracy, "gaps": section_gaps, "loo": section_loo, "scaling": section_scaling,
           "speed": section_speed, "predict": section_predict, "ddp": section_ddp, "memory": section_memory}


def environment(S: Settings) -> dict:
    import torch

    def git(*args):
        try:
            return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    return {"time": time.strftime("%Y-%m-%d %H:%M:%S"), "quick": S.quick, "data_dir": str(S.data_dir),
            "python": platform.python_version(), "torch": torch.__version__, "platform": platform.platform(),
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "git_commit": git("rev-parse", "HEAD"), "git_dirty": bool(git("status", "--porcelain"))}


def _clean(v):
    """NaN and infinities as null, so results.json is strict JSON."""
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    if isinstance(v, (float, np.floating)) and not math.isfinite(v):
        return None
    if v is pd.NA:
        return None
    return v


def _jsonable(v):
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, Path):
        return str(v)
    raise TypeError(type(v).__name__)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data_dir", default=str(DEFAULT_DATA_DIR), help=f"CAMELS-GB folder (default {DEFAULT_DATA_DIR})")
    p.add_argument("--out", default="bench_output", help="output folder (default ./bench_output)")
    p.add_argument("--quick", action="store_true", help="shrink everything: a few-minute smoke run of the harness")
    p.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections (default all: {','.join(SECTIONS)})")
    p.add_argument("--verbose", action="store_true", help="stream the training logs to the console too")
    p.add_argument("--threads", type=int, default=0,
                   help="torch threads in every process except the DDP runs (default: torch's default); "
                        "1 is steadier on a shared machine")
    p.add_argument("--extra_seeds", default="",
                   help="accuracy section: also pretrain both models with these seeds (comma-separated, e.g. "
                        "1,2) and print the seed-to-seed spread; each seed adds ~4 minutes")
    a = p.parse_args(argv)
    try:
        a.extra_seeds = [int(x) for x in a.extra_seeds.split(",") if x.strip()]
    except ValueError:
        p.error(f"--extra_seeds {a.extra_seeds!r}: expected comma-separated integers, e.g. 1,2")
    a.only = [s.strip() for s in a.only.split(",") if s.strip()]
    bad = [s for s in a.only if s not in SECTIONS]
    if bad:
        p.error(f"--only: unknown section(s) {bad}; choose from {', '.join(SECTIONS)}")
    if not (Path(a.data_dir) / "timeseries").is_dir():
        p.error(f"--data_dir {a.data_dir} has no timeseries/ folder")
    return a


def main(argv=None) -> int:
    a = parse_args(argv)
    S = Settings.make(a.data_dir, a.out, a.quick, a.verbose, a.threads, a.extra_seeds)
    S.out.mkdir(parents=True, exist_ok=True)
    set_threads(S.threads)
    from sca2lstm.cli.common import setup_logging

    setup_logging(quiet=not S.verbose)
    results = {"environment": environment(S), "sections": {}}
    print(f"sca2lstm benchmarks{' (QUICK smoke run: numbers are not meaningful)' if S.quick else ''}: "
          f"{', '.join(a.only)}; output in {S.out}")
    failed = []
    for name in [s for s in SECTIONS if s in a.only]:
        print(f"\n=== {name} ===", flush=True)
        t0 = time.perf_counter()
        try:
            res = RUNNERS[name](S)
        except Exception as e:  # keep going: one broken section should not hide the others
            traceback.print_exc()
            failed.append(name)
            results["sections"][name] = {"error": f"{type(e).__name__}: {e}"}
            continue
        for tname, df in res["tables"].items():
            df.to_csv(S.out / f"{tname}.csv", index=False)
        results["sections"][name] = {"seconds": time.perf_counter() - t0, "summary": res["summary"],
                                     "tables": {k: v.to_dict(orient="records") for k, v in res["tables"].items()}}
        print(f"({name}: {time.perf_counter() - t0:.0f} s)")
        (S.out / "results.json").write_text(json.dumps(_clean(results), indent=2, default=_jsonable), encoding="utf-8")
    (S.out / "results.json").write_text(json.dumps(_clean(results), indent=2, default=_jsonable), encoding="utf-8")
    print(f"\nWrote {S.out / 'results.json'} and one CSV per table."
          + (f" FAILED sections: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
