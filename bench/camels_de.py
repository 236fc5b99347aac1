"""Bring your own station, measured: three German catchments (CAMELS-DE) with a GB-pretrained model.

Run from the repository root::

    PYTHONPATH=. python bench/camels_de.py [--model ./model_output/sca2lstm.pth] [--out bench_output/camels_de]
    PYTHONPATH=. python bench/camels_de.py --quick      # a smoke run: tiny models, one epoch each

(``--quick`` still uses ``--model`` when that file exists; else it pretrains a tiny GB model for one epoch.)

1. Imports DE110000, DE110010 and DE110020 of ``../shared/data/camels_de_sample`` from their own files, as
   a user would (``sca2lstm station import`` with ``--map date=date,precipitation=precipitation_mean,
   discharge=discharge_vol_obs,temperature=temperature_mean --discharge_unit m3/s`` and area, latitude
   and longitude from the dataset's topographic attribute table). No PET column: the model gets Oudin
   PET from temperature and latitude.
2. Takes the GB-pretrained checkpoint ``--model`` (the large-sample model when you have it; default
   ./model_output/sca2lstm.pth); if it is absent, pretrains the 9-basin default model on
   ``../shared/data/camels_gb`` first (``--quick``: a tiny model, one epoch).
3. On each station's held-out test part (the rule of sca2lstm.data.periods: an imported station follows
   its own years, so the test part is the last 20 % of its observed days and fine-tuning reads the days
   before it) reports NSE and KGE of: zero-shot (the
   GB model as it is), fine-tuned (the guide's defaults), a model trained from scratch on that station
   alone (pretrain() with the default config on that basin, trained and validated on exactly the
   fine-tune's days), and persistence (tomorrow = today), all on the same days. Every model sees
   meteorology up to day t and observed discharge up to day t - 1.
   Writes ``results.csv``, ``results.json`` and prints the table.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from sca2lstm.evaluation.predict import HINDCAST_SETTING  # noqa: E402

STATIONS = ("DE110000", "DE110010", "DE110020")
MAP = "date=date,precipitation=precipitation_mean,discharge=discharge_vol_obs,temperature=temperature_mean"
QUICK_MODEL = {"hidden_size": 16, "attention_hidden_size": 8, "embedding_size": 4}
log = logging.getLogger("sca2lstm.bench.camels_de")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="./model_output/sca2lstm.pth", help="GB-pretrained checkpoint")
    p.add_argument("--de_data", default=str(REPO.parent / "shared" / "data" / "camels_de_sample"))
    p.add_argument("--gb_data", default=str(REPO.parent / "shared" / "data" / "camels_gb"),
                   help="CAMELS-GB folder to pretrain on when --model is absent")
    p.add_argument("--out", default="bench_output/camels_de")
    p.add_argument("--quick", action="store_true", help="tiny models, one epoch each (a smoke run)")
    p.add_argument("--seed", type=int, default=42)
    return p.parse_args(argv)


def import_stations(de_dir: Path, out: Path) -> Path:
    """Import the three stations with the command a user runs; returns the data folder."""
    from sca2lstm.cli.main import main as cli

    topo = pd.read_csv(de_dir / "CAMELS_DE_topographic_attributes.csv", dtype={"gauge_id": str}).set_index("gauge_id")
    data = out / "stations"
    for sid in STATIONS:
        a = topo.loc[sid]
        rc = cli(["station", "import", str(de_dir / "timeseries" / f"CAMELS_DE_hydromet_timeseries_{sid}.csv.gz"),
                  "--id", sid, "--out", str(data), "--map", MAP, "--discharge_unit", "m3/s",
                  "--area_km2", str(a["area"]), "--lat", str(a["gauge_lat"]), "--lon", str(a["gauge_lon"]),
                  "--overwrite"])
        if rc != 0:
            raise SystemExit(f"import of {sid} failed (exit {rc})")
    return data


def gb_model(args, out: Path) -> Path:
    """``--model`` if it exists, else a 9-basin default model pretrained on CAMELS-GB."""
    from sca2lstm.config import load_config
    from sca2lstm.training.pretrain import pretrain

    path = Path(args.model)
    if path.is_file():
        return path
    path = out / ("gb_quick.pth" if args.quick else "gb_sca2lstm.pth")
    if path.is_file():
        return path
    over = {"data": {"data_dir": args.gb_data}, "training": {"seed": args.seed}}
    if args.quick:
        over.update(model=QUICK_MODEL, training={"seed": args.seed, "epochs": 1})
    print(f"Pretraining the GB model on {args.gb_data} -> {path}", flush=True)
    pretrain(load_config(overrides=over), path, data_dir=args.gb_data, progress=False)
    return path


def scratch_model(args, data: Path, sid: str, out: Path, static: list, run_dir: Path) -> Path:
    """The default config trained on one station alone, on exactly the fine-tune's training and
    validation days and scored on the same test part (its static inputs: the attributes it has)."""
    from sca2lstm.config import load_config
    from sca2lstm.training.pretrain import pretrain

    rec = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
    (tr0, tr1), (va0, va1), (te0, te1) = rec["split"]["train"], rec["split"]["validation"], rec["periods"]["test"]
    periods = {"train_start": tr0, "train_end": tr1, "val_start": va0, "val_end": va1, "test_start": te0,
               "test_end": te1}
    over = {"data": {"data_dir": str(data), "basins": [sid], "static_attributes": static, **periods},
            "training": {"seed": args.seed}}
    if args.quick:
        over.update(model=QUICK_MODEL, training={"seed": args.seed, "epochs": 1})
    path = out / "scratch" / f"{sid}.pth"
    pretrain(load_config(overrides=over), path, data_dir=data, progress=False)
    return path


def main(argv=None) -> int:
    from sca2lstm.logs import logging_for_run

    args = parse_args(argv)
    # its console handlers for this run only: called in-process (a test, a script), it must not leave them on a
    # stream that is closed after it
    with logging_for_run(quiet=True):
        return _run(args)


def _run(args) -> int:
    from sca2lstm.config import Config
    from sca2lstm.evaluation.predict import predict
    from sca2lstm.training.finetune import finetune

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    data = import_stations(Path(args.de_data), out)
    model = gb_model(args, out)
    attrs = pd.read_csv(data / "attributes" / "stations.csv", dtype={"gauge_id": str})
    rows = []
    static = [a for a in Config.from_dict({}).data.static_attributes if a in attrs.columns]
    for sid in STATIONS:
        ft = {"epochs": 1} if args.quick else {}
        r = finetune(model, sid, ft, data_dir=data, out_root=out / "fine_tune", progress=False, seed=args.seed)
        variants = {"zero-shot": model, "fine-tuned": r["checkpoint"],
                    "from scratch": scratch_model(args, data, sid, out, static, Path(r["run_dir"]))}
        preds = {name: predict(path, sid, data_dir=data) for name, path in variants.items()}
        days = {name: (str(p.series["date"].iloc[0].date()), str(p.series["date"].iloc[-1].date()))
                for name, p in preds.items()}
        assert len(set(days.values())) == 1, days  # the same test days for every variant
        for name, p in preds.items():
            rows.append({"station": sid, "model": name, "nse": p.metrics["model"]["nse"],
                         "kge": p.metrics["model"]["kge"], "days": p.metrics["n_days"],
                         "test_start": days[name][0], "test_end": days[name][1],
                         "periods_rule": (p.periods or {}).get("rule", "configured")})
        q = preds["fine-tuned"].metrics["persistence"]
        rows.append({"station": sid, "model": "persistence", "nse": q["nse"], "kge": q["kge"],
                     "days": preds["fine-tuned"].metrics["n_days"], "test_start": days["fine-tuned"][0],
                     "test_end": days["fine-tuned"][1], "periods_rule": rows[-1]["periods_rule"]})
    df = pd.DataFrame(rows)
    df.to_csv(out / "results.csv", index=False, float_format="%.4f")
    wide = df.pivot(index="station", columns="model", values="nse")
    verdict = {sid: {"fine-tuned beats persistence": bool(wide.loc[sid, "fine-tuned"] > wide.loc[sid, "persistence"]),
                     "fine-tuned beats zero-shot": bool(wide.loc[sid, "fine-tuned"] > wide.loc[sid, "zero-shot"]),
                     "fine-tuned beats from scratch": bool(wide.loc[sid, "fine-tuned"] > wide.loc[sid, "from scratch"])}
               for sid in STATIONS}
    summary = {"gb_model": str(model), "quick": args.quick, "seconds": round(time.time() - t0, 1),
               "what_models_see": "meteorology up to day t, observed discharge up to day t-1 (lead-1 forecast)",
               "rows": rows, "verdict_nse": verdict}
    (out / "results.json").write_text(json.dumps(summary, indent=2, default=float) + "\n", encoding="utf-8")
    print(f"\nCAMELS-DE stations, GB-pretrained model {model}{' (QUICK: tiny models, 1 epoch)' if args.quick else ''}; "
          f"test NSE of the lead-1 {HINDCAST_SETTING}")
    parts = [f"{r['station']} {r['test_start']}..{r['test_end']}" for r in rows if r["model"] == "persistence"]
    print("test part per station: " + ", ".join(parts))
    print(df.pivot(index="station", columns="model", values=["nse", "kge"]).round(3).to_string())
    for sid, v in verdict.items():
        print(f"{sid}: " + "; ".join(f"{k}: {'yes' if ok else 'NO'}" for k, ok in v.items()))
    print(f"\nwrote {out / 'results.csv'} and {out / 'results.json'} in {summary['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
