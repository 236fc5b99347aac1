"""Large-sample benchmark: pretrain on the CAMELS-GB large sample as it comes, score every basin on the
test years, zero-shot and fine-tuned on held-out basins, and the 9 sample basins under this model.

Run from the repository root (long: hours on 2 cores for the full set)::

    PYTHONPATH=. python bench/large_sample.py [--config my.yaml] [--out bench_output/large_sample]
        [--threads 2] [--holdout_frac 0.1] [--finetune_n 10] [--quick]
    SCA2LSTM_CACHE_DIR=$(mktemp -d) PYTHONPATH=. python bench/large_sample.py --prepare_only   # cold cache

Periods (fixed by the benchmark, not the config): train 1970-10-01..2000-09-30, validation
2000-10-01..2005-09-30, test 2005-10-01..2015-09-30. A seeded ``--holdout_frac`` of the basins
(``--holdout_seed``, default 0; the list is written to ``holdout.json``) is never seen in pretraining.
PET is Oudin's from temperature for every basin (``data.pet_from_temperature: always``), so the
9 full-column basins of ``../shared/data/camels_gb`` get the same inputs as the large sample's.

What the model could see: meteorology up to the forecast day and observed discharge up to the day
before (lead 1); persistence (tomorrow = today's observation) is scored on exactly the same days.
Nothing of the test years is used for training, scaling or choosing epochs.

Outputs in ``--out``: ``per_basin.csv`` (every scored basin and group), ``summary.csv`` / ``summary.json``
(median, quartiles, share above 0.9 per group), ``test_nse_cdf.png``, ``holdout.json``, the model
and its run folder, and the fine-tuned models. ``--quick`` (6 basins, 2 epochs, a small model) only
checks that the script works (fine-tuning 2 epochs); its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.harness import peak_rss_bytes  # noqa: E402
from sca2lstm.checkpoint import load_model  # noqa: E402
from sca2lstm.config import load_config  # noqa: E402
from sca2lstm.data import reader  # noqa: E402
from sca2lstm.errors import DataError  # noqa: E402
from sca2lstm.evaluation.predict import HINDCAST_SETTING, predict  # noqa: E402
from sca2lstm.training.finetune import finetune  # noqa: E402
from sca2lstm.training.pretrain import pretrain  # noqa: E402

log = logging.getLogger("sca2lstm.bench")

PERIODS = {"train_start": "1970-10-01", "train_end": "2000-09-30", "val_start": "2000-10-01",
           "val_end": "2005-09-30", "test_start": "2005-10-01", "test_end": "2015-09-30"}
QUICK = {"training": {"epochs": 2, "windows_per_epoch": 64, "batch_size": 16}, "finetune": {"epochs": 2},
         "model": {"hidden_size": 16, "attention_hidden_size": 8, "embedding_size": 4}}


def holdout_split(basins: list, frac: float, seed: int) -> tuple[list, list]:
    """(pretraining basins, held-out basins): a seeded ``frac`` of ``basins`` (at least one) held out."""
    n = max(1, int(round(frac * len(basins)))) if frac > 0 else 0
    rng = np.random.default_rng(seed)
    held = sorted(rng.choice(np.array(basins, dtype=object), size=n, replace=False).tolist()) if n else []
    return [b for b in basins if b not in set(held)], held


def score(model_path, basin: str, data_dir, bundle=None) -> dict:
    """Test-period NSE/KGE of the model and of persistence on the same days; ``error`` when not scorable."""
    try:
        p = predict(model_path, basin, data_dir=data_dir, model_bundle=bundle)
    except DataError as e:
        return {"basin": basin, "error": str(e)}
    m = p.metrics
    return {"basin": basin, "n_days": int(m["n_days"]), "nse": m["model"]["nse"], "kge": m["model"]["kge"],
            "persistence_nse": m["persistence"]["nse"], "persistence_kge": m["persistence"]["kge"], "error": ""}


def gbm_rows(cfg, data_dir, basins, threads: int) -> list:
    """Pooled gradient-boosted trees (bench/gbm_reference.py) on ``basins``: test NSE/KGE per basin.

    The trees read precipitation and temperature (what every large-sample file has; Oudin PET is a
    function of temperature and the day of year, which they also get) and the observed discharge up to the
    day before. Scored with the model's rule: only days where the observation, the forecast and
    persistence all exist (the trees forecast the change from the last observation, so they exist where
    persistence does). For 500+ basins the trees use a learning rate of 0.1 (0.03 in the 9-basin
    harness) to fit in minutes; early stopping on the validation years as there.
    """
    import importlib.util

    from sca2lstm.evaluation.metrics import paired_metrics

    spec = importlib.util.spec_from_file_location("gbm_reference", REPO / "bench" / "gbm_reference.py")
    gbm = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gbm)
    gbm.LGB_PARAMS = dict(gbm.LGB_PARAMS, learning_rate=0.1)
    gcfg = cfg.replace(data={"dynamic_inputs": ["precipitation", "temperature"]})
    t0 = time.time()
    forecasts, n_trees = gbm.gbm_forecasts(gcfg, data_dir, basins, threads=threads)
    print(f"gradient-boosted trees: {n_trees} trees, {time.time() - t0:.0f} s for {len(basins)} basins")
    rows = []
    for b, f in forecasts.items():
        m = paired_metrics(f["observed"].to_numpy(), f["predicted"].to_numpy(), f["persistence"].to_numpy())
        rows.append({"group": "pretraining basins", "model": "GBM", "basin": b, "n_days": int(m["n_days"]),
                     "nse": m["model"]["nse"], "kge": m["model"]["kge"], "persistence_nse": m["persistence"]["nse"],
                     "persistence_kge": m["persistence"]["kge"], "error": ""})
    return rows


def summarise(df: pd.DataFrame) -> pd.DataFrame:
    """Per group and forecaster: number of basins, median / quartiles of NSE, share of NSE > 0.9, median KGE."""
    rows = []
    ok = df[(df["error"] == "") & (df["n_days"] > 1)]
    for (group, who), g in ok.groupby(["group", "model"], sort=False):
        for name, nse, kge in (("model", g["nse"], g["kge"]), ("persistence", g["persistence_nse"],
                                                               g["persistence_kge"])):
            if name == "persistence" and who != "pretrained":
                continue  # persistence is the same whatever the model: once per group
            rows.append({"group": group, "forecast": who if name == "model" else "persistence",
                         "n_basins": int(nse.notna().sum()), "nse_median": nse.median(),
                         "nse_q25": nse.quantile(0.25), "nse_q75": nse.quantile(0.75),
                         "share_nse_gt_0.9": float((nse > 0.9).mean()), "kge_median": kge.median(),
                         "below_persistence": int((g["nse"] < g["persistence_nse"]).sum())
                         if name == "model" else None})
    out = pd.DataFrame(rows)
    if len(out):
        out["below_persistence"] = out["below_persistence"].astype("Int64")
    return out


def cdf_plot(df: pd.DataFrame, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    ok = df[(df["error"] == "") & (df["model"] == "pretrained")]
    for group, style in (("pretraining basins", "-"), ("held out (zero-shot)", "--")):
        g = ok[ok["group"] == group]
        for col, label, color in (("nse", "SCA2LSTM", "C0"), ("persistence_nse", "persistence", "C1")):
            v = np.sort(g[col].dropna().to_numpy())
            if len(v):
                ax.step(v, np.arange(1, len(v) + 1) / len(v), style, color=color, where="post",
                        label=f"{label}, {group} (n={len(v)}, median {np.median(v):.3f})")
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.02)
    ax.set_xlabel("test NSE (2005-10-01..2015-09-30)")
    ax.set_ylabel("share of basins with NSE below x")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data_dir", default=str(REPO.parent / "shared" / "data" / "camels_gb_large"))
    p.add_argument("--small_dir", default=str(REPO.parent / "shared" / "data" / "camels_gb"),
                   help="the 9 full-column basins, scored under the large-sample model")
    p.add_argument("--nine_model", default=None, help="a 9-basin checkpoint to score beside (optional)")
    p.add_argument("--config", default=None, help="a config YAML (default: the project defaults)")
    p.add_argument("--out", default=str(REPO / "bench_output" / "large_sample"))
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--holdout_frac", type=float, default=0.1)
    p.add_argument("--holdout_seed", type=int, default=0)
    p.add_argument("--finetune_n", type=int, default=10)
    p.add_argument("--quick", action="store_true", help="6 basins, 2 epochs, a small model: a smoke run")
    p.add_argument("--gbm", action="store_true",
                   help="also fit the pooled gradient-boosted trees (bench/gbm_reference.py) on the pretraining "
                        "basins and score them on the same days as the model")
    p.add_argument("--gbm_only", action="store_true", help="with --model: only the trees, beside the stored scores")
    p.add_argument("--model", default=None,
                   help="score this pretrained checkpoint instead of pretraining (its basins must exclude the "
                        "seeded hold-out; cost figures then come from the checkpoint)")
    p.add_argument("--prepare_only", action="store_true",
                   help="only load and scale every basin (parallel; the feature cache is cold when "
                        "$SCA2LSTM_CACHE_DIR is empty): time, basins used, array size, peak RSS")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    import torch
    torch.set_num_threads(args.threads)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    over = {"data": {**PERIODS, "pet_from_temperature": "always"}}
    if args.quick:
        over.update(QUICK)
    cfg = load_config(args.config, overrides=over)
    data_dir = Path(args.data_dir)
    if args.prepare_only:
        from sca2lstm.training.pretrain import prepare_pretraining_data
        t0 = time.time()
        prep = prepare_pretraining_data(cfg, data_dir, parallel=True)
        print(f"prepare_pretraining_data: {time.time() - t0:.1f} s; {len(prep.basins)} basins used, "
              f"{len(prep.skipped)} left out of a period; inputs {prep.data.x.shape} float32 = "
              f"{prep.data.x.nbytes / 1e9:.2f} GB; peak RSS {peak_rss_bytes() / 1e9:.2f} GB")
        return 0
    basins = reader.list_basins(data_dir)
    if args.quick:
        basins = basins[:6]
    train_b, held = holdout_split(basins, args.holdout_frac, args.holdout_seed)
    (out / "holdout.json").write_text(json.dumps({"seed": args.holdout_seed, "frac": args.holdout_frac,
                                                  "held_out": held, "n_basins": len(basins)}, indent=1))
    print(f"{len(basins)} basins: {len(train_b)} for pretraining, {len(held)} held out (seed {args.holdout_seed}); "
          f"{args.threads} threads")

    # ---- pretraining: wall time and peak RSS of this process, which has done nothing heavy before
    if args.model:
        ckpt = Path(args.model)
        stored = load_model(ckpt)[3]
        leaked = sorted(set(held) & set(stored["basins"]))
        if leaked:
            raise SystemExit(f"--model {ckpt} was pretrained on held-out basins {leaked[:5]}")
        cost = {"train_seconds": round(float(stored.get("train_seconds", float("nan"))), 1),
                "epochs_run": len(stored.get("history", [])) - 1, "basins_used": len(stored["basins"]),
                "model": str(ckpt)}
        print(f"scoring {ckpt}: {len(stored['basins'])} pretraining basins")
    else:
        ckpt = out / "model" / "sca2lstm.pth"
        t0 = time.time()
        res = pretrain(cfg, ckpt, data_dir=data_dir, basins=train_b, parallel=True, progress=False)
        wall = time.time() - t0
        rss = peak_rss_bytes()
        prep = res["prepared"]
        cost = {"pretrain_wall_s": round(wall, 1), "train_seconds": round(res["seconds"], 1),
                "peak_rss_gb": round(rss / 1e9, 3), "epochs_run": len(res["history"]) - 1,
                "basins_used": len(prep.basins), "basins_left_out": [s for s in prep.skipped]}
        print(f"pretraining: {wall / 60:.1f} min wall ({res['seconds'] / 60:.1f} min training), peak RSS "
              f"{rss / 1e9:.2f} GB, {len(prep.basins)} basins used, {len(prep.skipped)} left out of a period")

    # ---- test scores
    bundle = load_model(ckpt)
    rows = []
    scored = [] if args.gbm_only else (stored["basins"] if args.model else train_b)
    for b in scored:
        rows.append({"group": "pretraining basins", "model": "pretrained", **score(ckpt, b, data_dir, bundle)})
    for b in ([] if args.gbm_only else held):
        rows.append({"group": "held out (zero-shot)", "model": "pretrained", **score(ckpt, b, data_dir, bundle)})
    # ---- fine-tuned with the guide's defaults (the config's finetune section) on N held-out basins
    zero = {r["basin"]: r for r in rows if r["group"] == "held out (zero-shot)" and r["error"] == ""}
    for b in list(zero)[:args.finetune_n]:
        try:
            ft = finetune(ckpt, b, data_dir=data_dir, out_root=out / "fine_tune", progress=False)
        except DataError as e:
            rows.append({"group": "held out (fine-tuned)", "model": "fine-tuned", "basin": b, "error": str(e)})
            continue
        r = score(ft["checkpoint"], b, data_dir)
        rows.append({"group": "held out (fine-tuned)", "model": "fine-tuned", **r})
        rows.append({**zero[b], "group": "held out (fine-tuned)", "model": "pretrained"})  # zero-shot, same basins
    # ---- the 9 sample basins under this model (and a 9-basin model, if given)
    if args.gbm or args.gbm_only:
        rows += gbm_rows(cfg, data_dir, stored["basins"] if args.model else train_b, args.threads)
    small = Path(args.small_dir)
    nine = [] if args.gbm_only else reader.list_basins(small)[:2 if args.quick else None]
    for b in nine:
        rows.append({"group": "camels_gb 9", "model": "pretrained", **score(ckpt, b, small, bundle)})
        if args.nine_model:
            rows.append({"group": "camels_gb 9", "model": "9-basin model", **score(args.nine_model, b, small)})
    df = pd.DataFrame(rows)
    df["error"] = df["error"].fillna("")
    df.to_csv(out / "per_basin.csv", index=False)
    summary = summarise(df)
    summary.to_csv(out / "summary.csv", index=False)
    not_scored = df[df["error"] != ""][["group", "model", "basin", "error"]].to_dict("records")
    ft = df[(df["group"] == "held out (fine-tuned)") & (df["error"] == "")].pivot(index="basin", columns="model",
                                                                                  values="nse")
    if {"fine-tuned", "pretrained"} <= set(ft.columns):
        below = ft[ft["fine-tuned"] < ft["pretrained"]].index.tolist()
        cost["finetuned_below_zero_shot"] = below
        print(f"fine-tuned below zero-shot (test NSE): {len(below)} of {len(ft)} {below}")
    (out / "summary.json").write_text(json.dumps({"cost": cost, "periods": PERIODS, "summary": summary.to_dict("records"),
                                                  "not_scored": not_scored, "quick": args.quick}, indent=1,
                                                 default=str))
    cdf_plot(df, out / "test_nse_cdf.png")
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(f"Test NSE of the lead-1 {HINDCAST_SETTING}, beside persistence on the same days:")
        print(summary.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if not_scored:
        print(f"{len(not_scored)} basin(s) not scored (no test discharge, or no training flows to scale a new "
              f"basin): see summary.json")
    print(f"outputs in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
