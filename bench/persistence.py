"""Benchmark: is the model ever worse than persistence, and does the per-basin blend fix it?

For every basin, on the config's test period (what ``predict`` forecasts by default), with the given
checkpoint: NSE of the raw model, of the blended model (``model.persistence_blend``: the model mixed
with yesterday's observation by a per-basin weight fitted on validation days only) and of persistence,
the skill against persistence ``1 - MSE/MSE_persistence`` of raw and blended, the weight alpha and where
it came from, and the basin's baseflow index (attribute ``baseflow_index``: reported, never an input).

Summaries: basins below persistence (skill < 0) before and after the blend, with their baseflow index;
median and quartiles of NSE and of skill over all basins; the skill of the basins whose persistence NSE
exceeds 0.9; and whether the blend generalises inside the validation period (alpha fitted on its first
half of the years, scored on the second half, against the raw model there).

Prints what it measured and writes ``per_basin.csv``, ``summary.json`` and ``persistence_skill.png``
(skill vs baseflow index; raw vs blended skill) to ``--out``. Nothing is asserted.

    python bench/persistence.py --model model_output/sca2lstm.pth --data_dir ../shared/data/camels_gb \\
        --out bench_output/persistence
    python bench/persistence.py --model M.pth --data_dir D --basins ids.txt --out OUT   # a list of gauges
    python bench/persistence.py --model M.pth --data_dir D --quick --out OUT            # 3 basins
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

if __package__ in (None, ""):  # run as a script from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sca2lstm.data import camels_gb
from sca2lstm.evaluation.metrics import nse, skill_vs_persistence
from sca2lstm.evaluation.persistence import apply_blend, fit_blend
from sca2lstm.evaluation.predict import HINDCAST_SETTING, predict, resolve_model_path
from sca2lstm.checkpoint import load_model

log = logging.getLogger("sca2lstm")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/persistence.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="checkpoint (pretrained or fine-tuned)")
    p.add_argument("--data_dir", required=True, help="CAMELS-GB folder")
    p.add_argument("--basins", default=None, help="file of gauge ids, one per line (default: every basin "
                   "of data_dir)")
    p.add_argument("--out", default="bench_output/persistence", help="output folder")
    p.add_argument("--quick", action="store_true", help="only the first 3 basins")
    p.add_argument("--device", default="cpu")
    return p.parse_args(argv)


def read_basins(path, data_dir) -> list[str]:
    if path is None:
        return camels_gb.list_basins(data_dir)
    ids = [ln.split("#")[0].strip() for ln in Path(path).read_text(encoding="utf-8").splitlines()]
    return [i for i in ids if i]


def half_split_check(val) -> dict:
    """Fit alpha on the first half of the validation years and score the second half.

    Parameters
    ----------
    val : Prediction
        ``predict`` over the validation period (its ``predicted_raw`` is the raw model).
    """
    s = val.series
    years = s["date"].dt.year.to_numpy()
    uniq = np.unique(years)
    out = {"alpha_first_half": np.nan, "skill_raw_second_half": np.nan, "skill_blend_second_half": np.nan,
           "val_years": f"{uniq[0]}..{uniq[-1]}" if len(uniq) else ""}
    if len(uniq) < 2:
        return out
    first = years < uniq[len(uniq) // 2]
    obs, raw, pers = s["observed"].to_numpy(), val.predicted_raw, s["persistence"].to_numpy()
    fit = fit_blend(obs[first], raw[first], pers[first])
    sec = ~first
    out.update(alpha_first_half=float(fit.alpha),
               skill_raw_second_half=float(skill_vs_persistence(obs[sec], raw[sec], pers[sec])),
               skill_blend_second_half=float(skill_vs_persistence(
                   obs[sec], apply_blend(raw[sec], pers[sec], fit.alpha), pers[sec])))
    return out


def basin_row(path, bundle, basin, data_dir) -> dict:
    cfg = bundle[1]
    test = predict(path, basin, data_dir=data_dir, model_bundle=bundle)
    s = test.series
    obs, pers = s["observed"].to_numpy(), s["persistence"].to_numpy()
    raw, blend = test.predicted_raw, s["predicted"].to_numpy()
    ok = np.isfinite(obs) & np.isfinite(pers) & np.isfinite(raw)  # the same days for all three
    o = np.where(ok, obs, np.nan)
    row = {"basin": basin, "n_days": int(ok.sum()),
           "nse_raw": nse(o, raw), "nse_blend": nse(o, blend), "nse_persistence": nse(o, pers),
           "skill_raw": skill_vs_persistence(o, raw, pers), "skill_blend": skill_vs_persistence(o, blend, pers),
           "alpha": test.metrics["persistence_blend"]["alpha"],
           "alpha_source": test.metrics["persistence_blend"]["source"]}
    try:
        val = predict(path, basin, cfg.data.val_start, cfg.data.val_end, data_dir=data_dir, model_bundle=bundle)
        row.update(half_split_check(val))
    except Exception as e:  # noqa: BLE001 - a basin without validation data: report, keep going
        row["val_error"] = str(e)
    return row


def quartiles(x) -> dict:
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    if not len(x):
        return {"q25": np.nan, "median": np.nan, "q75": np.nan, "n": 0}
    q = np.percentile(x, [25, 50, 75])
    return {"q25": float(q[0]), "median": float(q[1]), "q75": float(q[2]), "n": len(x)}


def summarize(df: pd.DataFrame) -> dict:
    def below(col):
        b = df[df[col] < 0]
        return {"n": len(b), "basins": b["basin"].tolist(),
                "baseflow_index": [None if not np.isfinite(v) else round(float(v), 3) for v in b["baseflow_index"]]}

    hi = df[df["nse_persistence"] > 0.9]
    gen = df.dropna(subset=["skill_blend_second_half"]) if "skill_blend_second_half" in df else df.iloc[:0]
    return {
        "n_basins": len(df),
        "below_persistence": {"raw": below("skill_raw"), "blend": below("skill_blend")},
        "nse": {k: quartiles(df[c]) for k, c in
                (("raw", "nse_raw"), ("blend", "nse_blend"), ("persistence", "nse_persistence"))},
        "skill": {"raw": quartiles(df["skill_raw"]), "blend": quartiles(df["skill_blend"])},
        "alpha": quartiles(df["alpha"].astype(float)),
        "persistence_nse_above_0.9": {
            "n": len(hi), "basins": hi["basin"].tolist(),
            "skill_raw": hi["skill_raw"].round(4).tolist(), "skill_blend": hi["skill_blend"].round(4).tolist(),
            "n_skill_blend_at_least_0.3": int((hi["skill_blend"] >= 0.3).sum())},
        "validation_half_split": {
            "n": len(gen),
            "skill_raw_second_half": quartiles(gen.get("skill_raw_second_half", [])),
            "skill_blend_second_half": quartiles(gen.get("skill_blend_second_half", [])),
            "n_blend_below_persistence": int((gen.get("skill_blend_second_half", pd.Series(dtype=float)) < 0).sum()),
            "n_raw_below_persistence": int((gen.get("skill_raw_second_half", pd.Series(dtype=float)) < 0).sum()),
            "n_blend_worse_than_raw": int((gen.get("skill_blend_second_half", pd.Series(dtype=float))
                                           < gen.get("skill_raw_second_half", pd.Series(dtype=float))).sum())},
    }


def plot(df: pd.DataFrame, path: Path, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # Skills below -1 are drawn at -1 (the CSV has the values); 0 (persistence) always in view.
    s = pd.concat([df["skill_raw"], df["skill_blend"]]).astype(float)
    lo = float(np.clip(np.nanmin(s) - 0.05, -1.0, -0.1)) if s.notna().any() else -1.0
    def clip(v):
        return np.clip(v.astype(float), lo, 1.0)

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.5))
    a.scatter(df["baseflow_index"], clip(df["skill_raw"]), s=18, marker="o", facecolors="none",
              edgecolors="tab:red", label="raw model")
    a.scatter(df["baseflow_index"], clip(df["skill_blend"]), s=14, marker="x", color="tab:blue",
              label="blended with persistence")
    a.axhline(0, color="k", lw=0.8)
    a.set_xlabel("baseflow index (attribute; not a model input)")
    a.set_ylabel("skill vs persistence, 1 - MSE/MSE$_{pers}$ (test)")
    a.set_ylim(lo - 0.05, 1.02)
    a.legend(loc="lower left", fontsize=8)
    sc = b.scatter(clip(df["skill_raw"]), clip(df["skill_blend"]), s=16, c=df["baseflow_index"], cmap="viridis")
    fig.colorbar(sc, ax=b, label="baseflow index")
    b.plot([lo, 1], [lo, 1], color="grey", lw=0.8)
    b.axhline(0, color="k", lw=0.8)
    b.axvline(0, color="k", lw=0.8)
    b.set_xlabel("skill, raw model")
    b.set_ylabel("skill, blended")
    b.set_xlim(lo - 0.05, 1.02)
    b.set_ylim(lo - 0.05, 1.02)
    if (pd.concat([df["skill_raw"], df["skill_blend"]]).astype(float) < lo).any():
        title += f" (skills below {lo:.2f} drawn at {lo:.2f})"
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)


def print_summary(sm: dict, df: pd.DataFrame) -> None:
    br, bb = sm["below_persistence"]["raw"], sm["below_persistence"]["blend"]
    print(f"\n{sm['n_basins']} basins, test period, lead-1 {HINDCAST_SETTING}")
    print(f"below persistence (skill < 0): raw {br['n']}, blended {bb['n']}")
    for name, b in (("raw", br), ("blended", bb)):
        if b["n"]:
            print(f"  {name}: " + ", ".join(f"{x} (BFI {v})" for x, v in zip(b["basins"], b["baseflow_index"])))
    print(f"{'':18} {'q25':>7} {'median':>7} {'q75':>7}")
    for label, q in (("NSE raw", sm["nse"]["raw"]), ("NSE blended", sm["nse"]["blend"]),
                     ("NSE persistence", sm["nse"]["persistence"]), ("skill raw", sm["skill"]["raw"]),
                     ("skill blended", sm["skill"]["blend"]), ("alpha", sm["alpha"])):
        print(f"{label:18} {q['q25']:7.3f} {q['median']:7.3f} {q['q75']:7.3f}")
    h = sm["persistence_nse_above_0.9"]
    print(f"persistence NSE > 0.9: {h['n']} basins; blended skill >= 0.3 on {h['n_skill_blend_at_least_0.3']}")
    for bsn, r, s in zip(h["basins"], h["skill_raw"], h["skill_blend"]):
        print(f"  {bsn}: skill raw {r:.3f}, blended {s:.3f}")
    g = sm["validation_half_split"]
    if g["n"]:
        print(f"validation, alpha fitted on the first half of the years, scored on the second ({g['n']} basins): "
              f"median skill raw {g['skill_raw_second_half']['median']:.3f}, blended "
              f"{g['skill_blend_second_half']['median']:.3f}; below persistence raw {g['n_raw_below_persistence']}, "
              f"blended {g['n_blend_below_persistence']}; blend worse than raw on {g['n_blend_worse_than_raw']}")


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    t0 = time.time()
    path = resolve_model_path(args.model)
    model, cfg, scalers, ckpt = load_model(path, args.device)
    if not cfg.model.persistence_blend:
        # A checkpoint from before the blend (or with it off): measure the blend anyway, each basin's
        # weight fitted on its validation period, as prediction does for a basin the checkpoint lacks.
        print("the checkpoint stores no blend weights: each basin's alpha is fitted on its validation period")
        cfg = cfg.replace(model={"persistence_blend": True})
    bundle = (model, cfg, scalers, ckpt)
    basins = read_basins(args.basins, args.data_dir)
    if args.quick:
        basins = basins[:3]
    rows = []
    for i, b in enumerate(basins):
        try:
            rows.append(basin_row(path, bundle, b, args.data_dir))
        except Exception as e:  # noqa: BLE001 - one bad basin is reported, the others go on
            print(f"basin {b}: skipped ({e})")
        if (i + 1) % 25 == 0:
            print(f"{i + 1}/{len(basins)} basins, {time.time() - t0:.0f} s", flush=True)
    if not rows:
        print("no basin could be scored")
        return 1
    df = pd.DataFrame(rows)
    bfi = camels_gb.read_attributes(args.data_dir, df["basin"], ["baseflow_index"])["baseflow_index"]
    df["baseflow_index"] = bfi.to_numpy()
    sm = summarize(df)
    sm.update(model=str(path), data_dir=str(args.data_dir), test_period=[cfg.data.test_start, cfg.data.test_end],
              validation_period=[cfg.data.val_start, cfg.data.val_end],
              checkpoint_stores_blend=bool(ckpt.get("persistence_blend")),
              seconds=round(time.time() - t0, 1))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / "per_basin.csv", index=False, float_format="%.4f")
    (out / "summary.json").write_text(json.dumps(sm, indent=2, default=float), encoding="utf-8")
    plot(df, out / "persistence_skill.png",
         f"{Path(path).name}: skill against persistence, test {cfg.data.test_start}..{cfg.data.test_end}")
    print_summary(sm, df)
    print(f"\nwrote {out / 'per_basin.csv'}, {out / 'summary.json'}, {out / 'persistence_skill.png'} "
          f"in {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
