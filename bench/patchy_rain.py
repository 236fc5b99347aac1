"""Benchmark: rain sums of a patchy rain record, masked (today) against rescaled over the days present.

``precip_sum_7d`` and ``precip_sum_30d`` are plain trailing sums that need every day of their window: one day
without rain data and the sum is missing (masked for the model). A station whose rain record has scattered gaps
(10-20 % of days, one here and there) loses its 30-day sum on nearly every day. The candidate: the sum of the days
present times ``days / present`` where at least a share ``--share`` (0.8) of the window is present, else missing;
a complete window keeps the plain sum, so complete records are unchanged bit for bit.

Protocol (docs/experiments.md, "Rain sums of a patchy rain record"): one checkpoint (the guide's 9-basin model),
copies of the data folder with precipitation blanked on random days (one uniform draw per basin and day, seeded,
so the 10 % days are among the 20 % days), and the hindcast of each basin on the config's **validation** period
(``predict``), with the sums built both ways from the same gapped file; NSE per basin. Rate 0 is the check that
complete records are untouched (the forecasts must be the same bit for bit). Test years are never scored.

Each way runs in its own process with its own feature cache (the cache key does not know the way). The candidate is
applied here by rewriting the two sum columns after :func:`sca2lstm.data.features.raw_features`, so the script
measures the same thing whatever the package's own sums are.

    PYTHONPATH=. python bench/patchy_rain.py --model model_output/sca2lstm.pth \\
        --data_dir ../shared/data/camels_gb --scratch /tmp/patchy_rain --out bench_output/patchy_rain

Prints one table per gap rate and writes ``results.json`` and ``per_basin.csv`` to ``--out``. Nothing is asserted.
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
    for rate, folder in zip(args.rates, args.folders):
        for basin in args.basins:
            pred = predict(args.model, basin, cfg.data.val_start, cfg.data.val_end, data_dir=folder,
                           model_bundle=bundle)
            m = pred.metrics["model"]
            flows = np.ascontiguousarray(pred.series["predicted"].to_numpy(np.float64))
            print(json.dumps({"way": args.way, "rate": rate, "basin": basin, "nse": m["nse"], "kge": m["kge"],
                              "days": pred.metrics["n_days"], "sha256": hashlib.sha256(flows.tobytes()).hexdigest(),
                              "input_gap_days": int(pred.series["input_gap"].sum())}), flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--data_dir", default="../shared/data/camels_gb")
    ap.add_argument("--scratch", required=True, help="folder for the gapped data copies and the feature caches")
    ap.add_argument("--out", default="bench_output/patchy_rain")
    ap.add_argument("--rates", type=float, nargs="+", default=[0.0, 0.1, 0.2])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--share", type=float, default=0.8, help="least share of a window present (fixed before measuring)")
    ap.add_argument("--basins", nargs="+", default=None, help="default: every basin of --data_dir")
    ap.add_argument("--way", choices=WAYS, help=argparse.SUPPRESS)       # internal: one worker process
    ap.add_argument("--folders", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.way:
        worker(args)
        return 0
    src, scratch, out = Path(args.data_dir).resolve(), Path(args.scratch), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    basins = args.basins or sorted(f.name.split("_")[-2] for f in (src / "timeseries").glob("*.csv"))
    folders, blanked = [], {}
    for rate in args.rates:
        if rate == 0:
            folders.append(str(src))
            blanked[rate] = {b: 0 for b in basins}
        else:
            dst = scratch / f"gaps_{round(rate * 100)}pct_seed{args.seed}"
            blanked[rate] = gapped_copy(src, dst, rate, args.seed)
            folders.append(str(dst))
    rows = []
    for way in WAYS:
        t0 = time.time()
        env = {**os.environ, "SCA2LSTM_CACHE_DIR": str(scratch / f"cache_{way}")}
        cmd = [sys.executable, __file__, "--model", args.model, "--scratch", str(scratch), "--share", str(args.share),
               "--way", way, "--rates", *map(str, args.rates), "--folders", *folders, "--basins", *basins]
        with open(out / f"log_{way}.txt", "w") as log:
            res = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=log, text=True, check=True)
        rows += [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
        print(f"{way}: {time.time() - t0:.0f} s", flush=True)
    df = pd.DataFrame(rows)
    wide = df.pivot_table(index=["rate", "basin"], columns="way", values="nse", aggfunc="first")
    wide["diff"] = wide["rescaled"] - wide["masked"]
    same = df.pivot_table(index=["rate", "basin"], columns="way", values="sha256", aggfunc="first")
    wide["identical"] = same["masked"] == same["rescaled"]
    wide = wide.reset_index()
    wide["blanked_days"] = [blanked[r][b] for r, b in zip(wide["rate"], wide["basin"])]
    wide.to_csv(out / "per_basin.csv", index=False)
    summary = {}
    for rate, part in wide.groupby("rate"):
        print(f"\nrain gaps {rate:.0%} (validation {part.shape[0]} basins): NSE")
        print(part[["basin", "blanked_days", "masked", "rescaled", "diff", "identical"]]
              .to_string(index=False, float_format=lambda v: f"{v:.4f}"))
        s = {"median_masked": float(part["masked"].median()), "median_rescaled": float(part["rescaled"].median()),
             "median_rise": float(part["rescaled"].median() - part["masked"].median()),
             "worst_basin_change": float(part["diff"].min()), "all_identical": bool(part["identical"].all())}
        summary[str(rate)] = s
        print(f"median NSE {s['median_masked']:.4f} -> {s['median_rescaled']:.4f} ({s['median_rise']:+.4f}); "
              f"worst basin {s['worst_basin_change']:+.4f}; forecasts identical on every basin: {s['all_identical']}")
    (out / "results.json").write_text(json.dumps({"share": args.share, "seed": args.seed, "model": args.model,
                                                  "summary": summary, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
