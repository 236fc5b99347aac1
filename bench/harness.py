"""What every section of the benchmark harness shares: settings, running a job in a fresh process,
timing, table printing, and the pretraining job most sections use.

bench/ is scripts, not a package: ``run_benchmarks.py`` puts bench/ (its own folder) and the repository
root on ``sys.path``, and the spawned workers inherit that path, so they can unpickle the jobs by their
module names (``harness._pretrain_job``, ``sections.loo._loo_job``, ...).
"""

from __future__ import annotations

import multiprocessing as mp
import resource
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for _p in (REPO, REPO / "bench"):  # the package, and gbm_reference/sections for the spawned workers
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from sca2lstm.evaluation.predict import HINDCAST_SETTING  # noqa: E402,F401  (what every section's NSE model saw)

SECTIONS = ("accuracy", "gaps", "loo", "scaling", "speed", "predict", "ddp", "memory")
DEFAULT_DATA_DIR = REPO.parent / "shared" / "data" / "camels_gb"
FULL_RECORD = ("1970-10-01", "2015-09-30")


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
    from sca2lstm.logs import setup_logging

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


# ============================================================================ the pretraining job (spawned)
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
        from sections.gaps import _gap_scores

        out["gappy"] = _gap_scores(model, cfg, prep.scalers, data_dir, prep.basins, gap_fraction)
    return out


def _flood_stats(prep, forecasts) -> dict:
    """Per basin, in m3/s: the largest observed flow of the training period, and the flood statistics of
    the test forecast (:func:`sca2lstm.evaluation.metrics.flood_stats`, top 1 % of observed flows): the
    largest observed flow and forecast, the mean relative error on those days (negative: floods
    under-forecast) and their share of the squared error (what they cost in NSE; NaN for a perfect
    forecast)."""
    from sca2lstm.evaluation.metrics import flood_stats

    data, out, inv = prep.data, {}, prep.data.scalers.inverse_y
    # evaluate() forecasts every record in order, so forecast b belongs to record b
    for b, (fc, (t0, t1)) in enumerate(zip(forecasts, prep.train_periods)):
        o = data.offsets[b]
        obs = inv(data.y[o + fc.i0:o + fc.i1].astype(np.float64), fc.basin)
        pred = inv(fc.pred.astype(np.float64), fc.basin)
        train = inv(data.y[o + t0:o + t1].astype(np.float64), fc.basin)
        f = flood_stats(obs, pred, top=0.01)
        out[fc.basin] = {"train_max_obs": float(np.nanmax(train)), "test_max_obs": f["max_obs"],
                         "test_max_forecast": f["max_sim"], "top1pct_bias": f["top_bias"],
                         "top1pct_sq_error_share": f["top_sq_error_share"]}
    return out


def _forecast_series(prep, forecasts) -> dict:
    """{basin: forecast in m3/s as a Series indexed by date}, for comparing models day by day."""
    out = {}
    for fc, rec in zip(forecasts, prep.data.records):  # evaluate() keeps the records' order
        dates = pd.DatetimeIndex(rec.dates[fc.i0:fc.i1].astype("datetime64[ns]"), name="date")
        out[fc.basin] = pd.Series(prep.data.scalers.inverse_y(fc.pred.astype(np.float64), fc.basin), index=dates)
    return out
