"""Benchmark: rain sums of a patchy rain record, masked (today) against rescaled over the days present.

``precip_sum_7d`` and ``precip_sum_30d`` are plain trailing sums that need every day of their window: one day
without rain data and the sum is missing (masked for the model). A station whose rain record has scattered gaps
(10-20 % of days, one here and there) loses its 30-day sum on nearly every day. The candidate: the sum of the days
present times ``days / present`` where at least a share ``--share`` (0.8) of the window is present, else missing;
a complete window keeps the plain sum, so complete records are unchanged bit for bit.

Protocol (docs/experiments.md, "Rain sums of a patchy rain record"): one checkpoint (the guide's 9-basin model),
copies of the data folder with precipitation blanked on random days (one uniform draw per basin and day, seeded,
so the 10 % days are among the 20 % days of a seed; ``--seeds`` gives several independent draws), and the hindcast of each basin on the config's **validation** period
(``predict``), with the sums built both ways from the same gapped file; NSE per basin. Rate 0 is the check that
complete records are untouched (the forecasts must be the same bit for bit). Test years are never scored.

Each way runs in its own process with its own feature cache (the cache key does not know the way). The candidate is
applied here by rewriting the two sum columns after :func:`sca2lstm.data.features.raw_features`, so the script
measures the same thing whatever the package's own sums are.

    PYTHONPATH=. python bench/patchy_rain.py --model model_output/sca2lstm.pth \\
        --data_dir ../shared/data/camels_gb --scratch /tmp/patchy_rain --out bench_output/patchy_rain

    PYTHONPATH=. python bench/patchy_rain.py ... --seeds 2 3 4 5 6 7 8 9 10 11   # ten draws, summed up per rate

Prints one table per gap rate and seed, then per rate over the seeds (the mean, spread and worst of the changes), and
writes ``results.json``, ``per_basin.csv`` and ``per_draw.csv`` to ``--out``. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

if __package__ in (None, ""):  # run as a script from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

WAYS = ("masked", "rescaled")


def rescaled_sum(p: pd.Series, days: int, share: float) -> np.ndarray:
    """Trailing ``days``-day sum of ``p``: the plain sum where the window is complete (bit for bit today's), else the
    sum of the days present times ``days / present`` where at least ``share`` of the window is present, else NaN.
    A window that reaches before the series' first day stays NaN, as today."""
    plain = p.rolling(days, min_periods=days).sum().to_numpy()
    present = p.notna().astype(np.float64).rolling(days, min_periods=days).sum().to_numpy()  # NaN: before the start
    total = p.rolling(days, min_periods=1).sum().to_numpy()                                  # over the days present
    need = math.ceil(round(share * days, 9))  # 0.8: 6 of 7 days, 24 of 30
    with np.errstate(invalid="ignore", divide="ignore"):
        part = np.where(present >= need, total * days / present, np.nan)
    return np.where(np.isfinite(plain), plain, part)


def gapped_copy(src: Path, dst: Path, rate: float, seed: int) -> dict:
    """``dst``: ``src``'s data folder with the precipitation of each timeseries file blanked on a share ``rate`` of
    its days (text edited, every other field byte for byte); returns {basin: days blanked}."""
    (dst / "timeseries").mkdir(parents=True, exist_ok=True)
    for entry in src.iterdir():
        if entry.name != "timeseries" and not (dst / entry.name).exists():
            (dst / entry.name).symlink_to(entry.resolve())
    blanked = {}
    for f in sorted((src / "timeseries").glob("*.csv")):
        basin = f.name.split("_")[-2]
        lines = f.read_text().splitlines(keepends=True)
        col = lines[0].rstrip("\r\n").split(",").index("precipitation")
        u = np.random.default_rng([seed, int(basin)]).random(len(lines) - 1)
        n = 0
        for i in np.flatnonzero(u < rate):
            fields = lines[i + 1].split(",")
            if fields[col] != "":
                fields[col] = ""
                n += 1
            lines[i + 1] = ",".join(fields)
        (dst / "timeseries" / f.name).write_text("".join(lines))
        blanked[basin] = n
    return blanked


def _use_way(way: str, share: float) -> None:
    """Make every caller of ``raw_features`` build the rain sums the ``way`` given."""
    from sca2lstm.data import dataset, features
    from sca2lstm.evaluation import context, operational

    orig = features.raw_features

    def raw_features(df, cfg):
        x, y = orig(df, cfg)
        if cfg.data.derived_features:
            names = features.feature_names(cfg)
            p = df["precipitation"]
            for days in features.PRECIP_SUM_DAYS:
                s = (p.rolling(days, min_periods=days).sum().to_numpy() if way == "masked"
                     else rescaled_sum(p, days, share))
                x[:, names.index(f"precip_sum_{days}d")] = s.astype(x.dtype)
        return x, y

    for module in (features, dataset, context, operational):
        module.raw_features = raw_features


def worker(args) -> None:
    """One way, every rate: the validation hindcast of every basin; JSON lines on stdout."""
    from sca2lstm.checkpoint import load_model
    from sca2lstm.evaluation.predict import predict

    _use_way(args.way, args.share)
    bundle = load_model(args.model, "cpu")
    cfg = bundle[1]
    for rate, seed, folder in zip(args.rates, args.draws, args.folders):
        for basin in args.basins:
            pred = predict(args.model, basin, cfg.data.val_start, cfg.data.val_end, data_dir=folder,
                           model_bundle=bundle)
            m = pred.metrics["model"]
            flows = np.ascontiguousarray(pred.series["predicted"].to_numpy(np.float64))
            print(json.dumps({"way": args.way, "rate": rate, "seed": seed, "basin": basin, "nse": m["nse"], "kge": m["kge"],
                              "days": pred.metrics["n_days"], "sha256": hashlib.sha256(flows.tobytes()).hexdigest(),
                              "input_gap_days": int(pred.series["input_gap"].sum())}), flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--data_dir", default="../shared/data/camels_gb")
    ap.add_argument("--scratch", required=True, help="folder for the gapped data copies and the feature caches")
    ap.add_argument("--out", default="bench_output/patchy_rain")
    ap.add_argument("--rates", type=float, nargs="+", default=[0.0, 0.1, 0.2])
    ap.add_argument("--seeds", "--seed", type=int, nargs="+", default=[0],
                    help="seeds of the gap draws, one data copy per rate and seed (rate 0 once)")
    ap.add_argument("--share", type=float, default=0.8, help="least share of a window present (fixed before measuring)")
    ap.add_argument("--basins", nargs="+", default=None, help="default: every basin of --data_dir")
    ap.add_argument("--way", choices=WAYS, help=argparse.SUPPRESS)       # internal: one worker process
    ap.add_argument("--folders", nargs="+", help=argparse.SUPPRESS)
    ap.add_argument("--draws", type=int, nargs="+", help=argparse.SUPPRESS)  # the seed of each folder, -1: no gaps
    args = ap.parse_args(argv)
    if args.way:
        worker(args)
        return 0
    src, scratch, out = Path(args.data_dir).resolve(), Path(args.scratch), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    basins = args.basins or sorted(f.name.split("_")[-2] for f in (src / "timeseries").glob("*.csv"))
    rates, draws, folders, blanked = [], [], [], {}
    for rate in args.rates:
        for seed in ([-1] if rate == 0 else args.seeds):  # no gaps: one run, whatever the seeds
            if rate == 0:
                folder, blanked[rate, seed] = src, {b: 0 for b in basins}
            else:
                folder = scratch / f"gaps_{round(rate * 100)}pct_seed{seed}"
                blanked[rate, seed] = gapped_copy(src, folder, rate, seed)
            rates.append(rate)
            draws.append(seed)
            folders.append(str(folder))
    rows = []
    for way in WAYS:
        t0 = time.time()
        env = {**os.environ, "SCA2LSTM_CACHE_DIR": str(scratch / f"cache_{way}")}
        cmd = [sys.executable, __file__, "--model", args.model, "--scratch", str(scratch), "--share", str(args.share),
               "--way", way, "--rates", *map(str, rates), "--draws", *map(str, draws), "--folders", *folders,
               "--basins", *basins]
        with open(out / f"log_{way}.txt", "w") as log:
            res = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=log, text=True, check=True)
        rows += [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
        print(f"{way}: {time.time() - t0:.0f} s", flush=True)
    df = pd.DataFrame(rows)
    keys = ["rate", "seed", "basin"]
    wide = df.pivot_table(index=keys, columns="way", values="nse", aggfunc="first")
    wide["diff"] = wide["rescaled"] - wide["masked"]
    same = df.pivot_table(index=keys, columns="way", values="sha256", aggfunc="first")
    wide["identical"] = same["masked"] == same["rescaled"]
    wide = wide.reset_index()
    wide["blanked_days"] = [blanked[r, s][b] for r, s, b in zip(wide["rate"], wide["seed"], wide["basin"])]
    wide.to_csv(out / "per_basin.csv", index=False)
    draw_rows = []
    for (rate, seed), part in wide.groupby(["rate", "seed"]):
        label = "no gaps" if seed < 0 else f"seed {seed}"
        print(f"\nrain gaps {rate:.0%}, {label} (validation {part.shape[0]} basins): NSE")
        print(part[["basin", "blanked_days", "masked", "rescaled", "diff", "identical"]]
              .to_string(index=False, float_format=lambda v: f"{v:.4f}"))
        d = {"rate": rate, "seed": seed, "median_masked": float(part["masked"].median()),
             "median_rescaled": float(part["rescaled"].median()),
             "median_rise": float(part["rescaled"].median() - part["masked"].median()),
             "paired_median": float(part["diff"].median()), "worst_basin_change": float(part["diff"].min()),
             "basins_up": int((part["diff"] > 0).sum()), "all_identical": bool(part["identical"].all())}
        draw_rows.append(d)
        print(f"median NSE {d['median_masked']:.4f} -> {d['median_rescaled']:.4f} ({d['median_rise']:+.4f}); paired "
              f"median {d['paired_median']:+.4f}; worst basin {d['worst_basin_change']:+.4f}; "
              f"forecasts identical on every basin: {d['all_identical']}")
    draws_df = pd.DataFrame(draw_rows)
    draws_df.to_csv(out / "per_draw.csv", index=False)
    summary = {}
    for rate, part in draws_df[draws_df["seed"] >= 0].groupby("rate"):
        basins_part = wide[(wide["rate"] == rate) & (wide["seed"] >= 0)]
        per_basin = basins_part.groupby("basin")["diff"].agg(["mean", "min", "max"])
        s = {"seeds": [int(v) for v in part["seed"]], "median_rise_mean": float(part["median_rise"].mean()),
             "median_rise_sd": float(part["median_rise"].std(ddof=1)) if len(part) > 1 else 0.0,
             "median_rise_min": float(part["median_rise"].min()), "median_rise_max": float(part["median_rise"].max()),
             "paired_median_mean": float(part["paired_median"].mean()),
             "basin_mean_change": {b: float(v) for b, v in per_basin["mean"].items()},
             "worst_basin_mean_change": float(per_basin["mean"].min()),
             "worst_single_change": float(basins_part["diff"].min())}
        summary[str(rate)] = s
        print(f"\nrain gaps {rate:.0%} over {len(part)} seeds {s['seeds']}:")
        print(f"  median NSE change per seed: mean {s['median_rise_mean']:+.4f}, sd {s['median_rise_sd']:.4f}, "
              f"min {s['median_rise_min']:+.4f}, max {s['median_rise_max']:+.4f}; paired median, mean "
              f"{s['paired_median_mean']:+.4f}")
        print("  per basin, change over the seeds (mean / min / max):")
        print(per_basin.to_string(float_format=lambda v: f"{v:+.4f}"))
        print(f"  worst basin mean {s['worst_basin_mean_change']:+.4f}; worst single (basin, seed) "
              f"{s['worst_single_change']:+.4f}")
    (out / "results.json").write_text(json.dumps({"share": args.share, "seeds": args.seeds, "model": args.model,
                                                  "draws": draw_rows, "summary": summary, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
