"""Forecasts from weather-forecast archives through the product's own reforecast path, per lead.

The checks of this project score the model through archives made by an error model it never saw. This
benchmark does the same on the large sample's held-out basins: per basin it writes an **emulated** archive
(``issue_date, lead_days, valid_date, precipitation, temperature``; no PET, so the model derives its own)
with one of the error models below, runs ``sca2lstm forecast --from --to --weather_forecast ARCHIVE``
in-process (stored calibration, blend, spread, recession bound: what a user gets), and scores the
``reforecast.csv`` with :func:`sca2lstm.evaluation.verify.verify`: NSE beside persistence (its median over
basins with a 90 % basin-bootstrap interval), CRPS, 90 %
coverage and the share below q05, per lead, with the precipitation correlation the archive reached.

Error models (every archive is emulated; none is a real weather forecast):

* ``emulator``: :mod:`sca2lstm.weather.emulator`'s ``swap`` kind, the one the calibration's ``forecast``
  spread was fitted on;
* ``amount``: the emulator's other kind (``kind="amount"``: timing blur, amount errors that persist over a
  storm's days, showers; same temperature error). The model of ``training.forecast_emulator: [swap]`` never
  saw it in training; one with ``[swap, amount]`` did, so its figures on it are in-family;
* ``wet``: the ``swap`` kind with every amount :data:`WET_BIAS` times too large: a station where the weather
  model is too wet throughout (as coarse models can be over hills). No training run sees a biased forecast;
  it is the case that ``bench/archive_finetune.py`` uses to show what fine-tuning on an archive learns;
* ``perfect``: the observed weather as an archive (checks the path: it should match ``bench/weather.py``'s
  ``perfect`` setting).

Example (4-5 min for 30 basins and two error models, one thread)::

    PYTHONPATH=. python bench/archives.py --model LARGE/model/sca2lstm.pth \\
        --data_dir ../shared/data/camels_gb_large --basins LARGE/holdout.json --max_basins 30
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from sca2lstm.checkpoint import load_model  # noqa: E402
from sca2lstm.cli.main import main as cli  # noqa: E402
from sca2lstm.data.dataset import load_basin  # noqa: E402
from sca2lstm.evaluation.verify import read_reforecast, verify  # noqa: E402
from sca2lstm.weather.emulator import emulate_series  # noqa: E402
from weather import add_basin_args, nse_interval, resolve_basins  # noqa: E402  (bench/weather.py)

ERRORS = ("emulator", "amount", "wet", "perfect")
#: The ``wet`` archive's precipitation factor.
WET_BIAS = 1.3


def make_archive(kind: str, dates, p, t, issue_idx, leads: int, history: int, seed: int) -> pd.DataFrame:
    """An archive table of the issue days ``issue_idx`` from the observed series, by error model ``kind``."""
    rng = np.random.default_rng(seed)
    day = issue_idx[:, None] + np.arange(1, leads + 1)[None, :]
    if kind == "perfect":
        P, T = p[day], t[day]
    else:
        fc = emulate_series({"precipitation": p, "temperature": t}, issue_idx, leads, rng, history=history,
                            kind="amount" if kind == "amount" else "swap")
        P, T = fc["precipitation"], fc["temperature"]
        if kind == "wet":
            P = P * WET_BIAS
    d = np.asarray(dates, dtype="datetime64[D]")
    tab = pd.DataFrame({"issue_date": np.repeat(d[issue_idx], leads).astype(str),
                        "lead_days": np.tile(np.arange(1, leads + 1), len(issue_idx)),
                        "valid_date": d[day.ravel()].astype(str), "precipitation": P.ravel(), "temperature": T.ravel()})
    return tab.dropna()


def reforecast_scores(model, basin: str, data_dir: Path, archive: Path, first, last, folder: Path,
                      label: str) -> list[dict] | None:
    """``sca2lstm forecast --from first --to last --weather_forecast archive`` in-process, its table scored per
    lead with :func:`verify` (rows of dicts); None, logged with ``label``, where the forecast failed."""
    log = io.StringIO()
    with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        rc = cli(["forecast", "--model", str(model), "--basin", basin, "--data_dir", str(data_dir),
                  "--from", str(first), "--to", str(last), "--weather_forecast", str(archive),
                  "--output_dir", str(folder), "--quiet"])
    if rc != 0:
        logging.info("%s: left out (%s)", label, log.getvalue().strip().splitlines()[-1:])
        return None
    table = next(folder.rglob("reforecast.csv"))
    lv = json.loads((table.parent / "levels.json").read_text(encoding="utf-8"))
    per_lead, _ = verify(read_reforecast(table), {n: float(v["value"]) for n, v in lv.items()})
    return per_lead.to_dict(orient="records")


def correlation(p: np.ndarray, tab: pd.DataFrame, dates) -> dict:
    """Correlation of the archive's precipitation with the observed, per lead."""
    pos = {str(d): i for i, d in enumerate(np.asarray(dates, dtype="datetime64[D]"))}
    obs = p[tab["valid_date"].map(pos).to_numpy()]
    out = {}
    for k, g in tab.assign(obs=obs).groupby("lead_days"):
        ok = np.isfinite(g["obs"]) & np.isfinite(g["precipitation"])
        out[int(k)] = float(np.corrcoef(g["obs"][ok], g["precipitation"][ok])[0, 1]) if ok.sum() > 2 else np.nan
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_basin_args(ap)
    ap.add_argument("--period", choices=["test", "val"], default="test")
    ap.add_argument("--stride", type=int, default=3, help="every n-th day is an issue date of the archive")
    ap.add_argument("--errors", nargs="+", choices=ERRORS, default=["emulator", "amount"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="bench_output/archives")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out = Path(args.out)
    data_dir = Path(args.data_dir)
    _, cfg, _, _ = load_model(Path(args.model))
    F, L = cfg.training.forecast_leads, cfg.training.seq_len
    d = cfg.data
    start, end = (d.test_start, d.test_end) if args.period == "test" else (d.val_start, d.val_end)
    names = list(d.dynamic_inputs)
    rows, corr, seconds = [], {e: [] for e in args.errors}, {e: 0.0 for e in args.errors}
    for b in resolve_basins(args.basins, data_dir, {})[:args.max_basins]:
        rec = load_basin(data_dir, b, cfg)
        p = rec.x[:, names.index("precipitation")].astype(np.float64)
        t = rec.x[:, names.index("temperature")].astype(np.float64)
        i0, i1 = rec.period(start, end)
        issue = np.arange(max(i0 - 1, L), i1 - 1 - F, args.stride)
        if len(issue) == 0:
            continue
        for e in args.errors:
            tab = make_archive(e, rec.dates, p, t, issue, F, L - F, [args.seed, int(b) if b.isdigit() else 0])
            if e != "perfect":
                corr[e].append(correlation(p, tab, rec.dates))
            arch = out / "archives" / e / f"{b}.csv"
            arch.parent.mkdir(parents=True, exist_ok=True)
            tab.to_csv(arch, index=False, float_format="%.3f")
            t0 = time.perf_counter()
            per_lead = reforecast_scores(args.model, b, data_dir, arch, rec.dates[issue[0]], rec.dates[issue[-1]],
                                         out / "reforecasts" / e / b, f"{e} {b}")
            seconds[e] += time.perf_counter() - t0
            for r in per_lead or []:
                rows.append({"errors": e, "basin": b, **r})
        logging.info("%s done", b)
    per = pd.DataFrame(rows)
    out.mkdir(parents=True, exist_ok=True)
    per.to_csv(out / "per_basin.csv", index=False, float_format="%.4f")
    above = {"coverage90_above_q2y_mean": ("coverage90_above_q2y", "mean")} if "coverage90_above_q2y" in per else {}
    summary = per.groupby(["errors", "lead"]).agg(
        basins=("basin", "nunique"), nse_median=("nse", "median"), persistence_nse_median=("persistence_nse", "median"),
        crps_mean=("crps", "mean"), coverage90_mean=("coverage90", "mean"), below_q05_mean=("below_q05", "mean"),
        **above).reset_index()
    summary = summary.merge(nse_interval(per, ["errors", "lead"]), on=["errors", "lead"], how="left")
    summary["precip_corr"] = [np.nanmean([c.get(k, np.nan) for c in corr.get(e, [])]) if corr.get(e) else np.nan
                              for e, k in zip(summary["errors"], summary["lead"])]
    summary.to_csv(out / "summary.csv", index=False, float_format="%.4f")
    pd.set_option("display.width", 200)
    print(f"\nModel {args.model}; {per['basin'].nunique()} basins; {args.period} period {start}..{end}; every "
          f"{args.stride}th day an issue date; through 'sca2lstm forecast --from --to --weather_forecast ARCHIVE'. "
          "Every archive is EMULATED.")
    print(summary.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    (out / "results.json").write_text(json.dumps({"model": args.model, "period": [args.period, start, end],
                                                  "stride": args.stride, "seconds": seconds,
                                                  "summary": summary.to_dict(orient="records")}, indent=2,
                                                 default=float), encoding="utf-8")
    print(f"Saved to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
