"""What fine-tuning on a station's archive of past weather forecasts learns, through the product's own paths.

A station with an archive (``DIR/weather_archive/<id>.csv``) fine-tunes on it: its issue-time training
windows then see the forecasts the station really had, with their errors (docs/weather.md). This benchmark
measures that on the large sample's held-out basins. Per basin and error model it writes one **emulated**
archive over the whole record (every day an issue date; :func:`archives.make_archive`), then scores the
test years' reforecasts (``sca2lstm forecast --from --to --weather_forecast ARCHIVE``, every ``--stride``-th
day, the same archive rows in every setting) of three models:

* ``pretrained``: the pretrained model as it is (zero-shot);
* ``finetuned``: fine-tuned on the station with the guide's defaults, without the archive (what fine-tuning
  alone gives; its issue-time windows see the emulated forecasts its config asks for);
* ``finetuned+archive``: the same fine-tuning with the archive in the data folder.

The data folder with the archive is the benchmark's own: links to ``--data_dir``'s entries plus a
``weather_archive`` folder. Fine-tuning uses the training years only (its validation split inside them);
the test years are scored, never used to choose. Every archive is EMULATED; none is a real forecast.

Example (12 basins, two error models: 18 min on 2 cores)::

    PYTHONPATH=. python bench/archive_finetune.py --model LARGE/model/sca2lstm.pth \\
        --data_dir ../shared/data/camels_gb_large --basins LARGE/holdout.json --max_basins 12
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import sys
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from archives import ERRORS, correlation, make_archive, reforecast_scores  # noqa: E402  (bench/archives.py)
from sca2lstm.checkpoint import load_model  # noqa: E402
from sca2lstm.cli.main import main as cli  # noqa: E402
from sca2lstm.data.dataset import load_basin  # noqa: E402
from weather import add_basin_args, nse_interval, resolve_basins  # noqa: E402  (bench/weather.py)

SETTINGS = ("pretrained", "finetuned", "finetuned+archive")


def _quiet(argv) -> tuple[int, str]:
    """Run one CLI command in-process; its exit code and output."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        rc = cli(argv)
    return rc, buf.getvalue()


def overlay(data_dir: Path, folder: Path) -> Path:
    """A data folder that links every entry of ``data_dir`` and has a ``weather_archive`` folder of its own."""
    folder.mkdir(parents=True, exist_ok=True)
    for entry in data_dir.iterdir():
        link = folder / entry.name
        if entry.name != "weather_archive" and not link.exists():
            link.symlink_to(entry.resolve())
    (folder / "weather_archive").mkdir(exist_ok=True)
    return folder


def finetune(model: str, basin: str, data_dir: Path, out: Path, config: str | None = None) -> Path | None:
    """Fine-tune ``basin`` with the guide's defaults (or a config file's ``finetune:`` keys); the checkpoint,
    or None where it failed."""
    rc, text = _quiet(["finetune", "--target_basin", basin, "--pretrained_model", model, "--data_dir",
                       str(data_dir), "--output_dir", str(out), "--quiet"] + (["--config", config] if config else []))
    if rc != 0:
        logging.info("%s: fine-tuning failed (%s)", basin, text.strip().splitlines()[-1:])
        return None
    return next(out.rglob(f"best_model_basin_{basin}.pth"), None)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_basin_args(ap, "pretrained checkpoint, with its calibration beside it")
    ap.add_argument("--stride", type=int, default=3, help="every n-th test day is a scored issue date")
    ap.add_argument("--errors", nargs="+", choices=[e for e in ERRORS if e != "perfect"], default=["wet", "emulator"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--finetune_config", default=None,
                    help="a config file whose finetune: keys both fine-tunings use (default: the guide's defaults)")
    ap.add_argument("--out", default="bench_output/archive_finetune")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out, data_dir = Path(args.out), Path(args.data_dir)
    _, cfg, _, _ = load_model(Path(args.model))
    F, L, d = cfg.training.forecast_leads, cfg.training.seq_len, cfg.data
    names = list(d.dynamic_inputs)
    rows, corr = [], {e: [] for e in args.errors}
    for b in resolve_basins(args.basins, data_dir, {})[:args.max_basins]:
        rec = load_basin(data_dir, b, cfg)
        p = rec.x[:, names.index("precipitation")].astype(np.float64)
        t = rec.x[:, names.index("temperature")].astype(np.float64)
        i0, i1 = rec.period(d.test_start, d.test_end)
        issue = np.arange(L, i1 - 1 - F)                      # every day of the record: training reads them
        scored = issue[(issue >= max(i0 - 1, L)) & ((issue - i0) % args.stride == 0)]
        if len(scored) == 0:
            continue
        tuned = finetune(args.model, b, data_dir, out / "models" / "none", args.finetune_config)
        models = {"pretrained": (args.model, data_dir), "finetuned": (tuned, data_dir)}
        days = set(np.asarray(rec.dates, dtype="datetime64[D]")[scored].astype(str))
        for e in args.errors:
            tab = make_archive(e, rec.dates, p, t, issue, F, L - F, [args.seed, int(b) if b.isdigit() else 0],
                               train=rec.period(d.train_start, d.train_end))
            corr[e].append(correlation(p, tab, rec.dates))
            folder = overlay(data_dir, out / "data" / e)
            tab.to_csv(folder / "weather_archive" / f"{b}.csv", index=False, float_format="%.3f")
            test_arch = out / "archives" / e / f"{b}.csv"
            test_arch.parent.mkdir(parents=True, exist_ok=True)
            tab[tab["issue_date"].isin(days)].to_csv(test_arch, index=False, float_format="%.3f")
            with_archive = finetune(args.model, b, folder, out / "models" / e, args.finetune_config)
            for setting, (model, ddir) in {**models, "finetuned+archive": (with_archive, folder)}.items():
                if model is None:
                    continue
                per = reforecast_scores(model, b, ddir, test_arch, rec.dates[scored[0]], rec.dates[scored[-1]],
                                        out / "reforecasts" / e / setting / b, f"{e} {setting} {b}")
                for r in per or []:
                    rows.append({"errors": e, "setting": setting, "basin": b, **r})
        logging.info("%s done", b)
    per = pd.DataFrame(rows)
    out.mkdir(parents=True, exist_ok=True)
    per.to_csv(out / "per_basin.csv", index=False, float_format="%.4f")
    keys = ["errors", "setting", "lead"]
    summary = per.groupby(keys).agg(basins=("basin", "nunique"), nse_median=("nse", "median"),
                                    persistence_nse_median=("persistence_nse", "median"), crps_mean=("crps", "mean"),
                                    coverage90_mean=("coverage90", "mean")).reset_index()
    summary = summary.merge(nse_interval(per, keys), on=keys, how="left")
    summary["precip_corr"] = [np.nanmean([c.get(k, np.nan) for c in corr[e]]) for e, k in
                              zip(summary["errors"], summary["lead"])]
    summary["setting"] = pd.Categorical(summary["setting"], SETTINGS)
    summary = summary.sort_values(keys)
    summary.to_csv(out / "summary.csv", index=False, float_format="%.4f")
    # Paired per basin: the archive's gain over fine-tuning alone, median over basins.
    wide = per.pivot_table(index=["errors", "lead", "basin"], columns="setting", values="nse").dropna()
    paired = (wide["finetuned+archive"] - wide["finetuned"]).groupby(["errors", "lead"]).median()
    pd.set_option("display.width", 200)
    print(f"\nModel {args.model}; {per['basin'].nunique()} basins; test period {d.test_start}..{d.test_end}; every "
          f"{args.stride}th day an issue date. Every archive is EMULATED.")
    print(summary.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print("\nPaired per basin, NSE of finetuned+archive minus finetuned (median over basins):")
    print(paired.unstack("lead").to_string(float_format=lambda v: f"{v:+.3f}"))
    (out / "results.json").write_text(json.dumps({"model": args.model, "stride": args.stride,
                                                  "summary": summary.astype({"setting": str}).to_dict(orient="records"),
                                                  "paired_gain": {f"{e}/{k}": v for (e, k), v in paired.items()}},
                                                 indent=2, default=float), encoding="utf-8")
    print(f"Saved to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
