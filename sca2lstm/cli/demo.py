"""``sca2lstm demo``: the whole story offline, on basins the project makes itself.

1. write synthetic CAMELS-GB-style basins (GR4J + weather generator) into ``OUT/data``;
2. pretrain on them (``OUT/model_output/sca2lstm.pth``);
3. fine-tune basin 32006 (``OUT/model_output/fine_tune/basin_32006/<time>/``);
4. predict its test period with the pretrained and the fine-tuned model;
5. print NSE/KGE of both beside persistence and write ``OUT/report.html``.

The demo shortens training (fewer basins, epochs and windows) so it ends in a few minutes on a laptop;
the model itself is the default one, so ``SCA2LSTM(load_config())`` loads its checkpoints.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from ..errors import UsageError
from .common import ArgumentParser, output_folder, positive_int, run_main

PROG = "sca2lstm demo"

# Demo-sized training: the default model, trained briefly.
DEMO = {"basins": 6, "pretrain_epochs": 12, "finetune_epochs": 6, "coverage": 1.0}
TINY = {"basins": 3, "pretrain_epochs": 1, "finetune_epochs": 1, "coverage": 0.3,
        "periods": {"train_start": "1971-01-01", "train_end": "1973-12-31", "val_start": "1974-01-01",
                    "val_end": "1974-12-31", "test_start": "1975-01-01", "test_end": "1975-12-31"},
        "synth_end": "1975-12-31"}


#: command lines that --help ends with (tests parse each)
EXAMPLES = [
        'sca2lstm demo                                   # writes ./demo_output/, open report.html',
        'sca2lstm demo --out ./demo2 --epochs 4',
]


def build_parser(prog: str = PROG) -> ArgumentParser:
    p = ArgumentParser(prog=prog, examples=EXAMPLES, description="Run synth -> pretrain -> fine-tune -> predict offline.")
    p.add_argument("--out", default="./demo_output", help="output folder (default ./demo_output)")
    p.add_argument("--basins", type=positive_int, default=None, help=f"synthetic basins (default {DEMO['basins']})")
    p.add_argument("--epochs", type=positive_int, default=None,
                   help=f"pretraining epochs (default {DEMO['pretrain_epochs']})")
    p.add_argument("--basin", default="32006", help="basin to fine-tune and predict (default 32006)")
    p.add_argument("--tiny", action="store_true", help="a seconds-long smoke run (tests use it)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    return p


def _written_by_a_demo(data_dir: Path) -> bool:
    """Whether ``data_dir`` holds only what a demo writes there: attributes/, timeseries/ with the files of
    the first synthetic basins, and the synthetic marker (so a rerun never deletes a user's own data folder that
    happens to be there)."""
    import re

    from ..data.dataset import SYNTHETIC_MARKER
    from ..data.synthetic import synthetic_gauge_ids

    if not data_dir.is_dir() or {p.name for p in data_dir.iterdir()} - {"attributes", "timeseries", SYNTHETIC_MARKER}:
        return False
    names = [p.name for p in (data_dir / "timeseries").iterdir()] if (data_dir / "timeseries").is_dir() else []
    ids = [m.group(1) for m in (re.fullmatch(r"CAMELS_GB_hydromet_timeseries_(\w+)_\d{8}-\d{8}\.csv", n)
                                for n in names) if m]
    return len(ids) == len(names) and set(ids) <= set(synthetic_gauge_ids(max(len(ids), 1)))


def _write_summary(out: Path, summary, config: dict, figures) -> None:
    """``demo_test_metrics.csv``, ``config.json`` and the ``figures/`` copies (``(source, name)`` pairs) in ``out``.

    Each file is written atomically: a rerun that fails while writing them (a full disk, Ctrl-C) leaves the
    earlier demo's file whole, never a truncated one."""
    from ..fileio import atomic_write, atomic_write_text, json_text

    # full precision: the report rounds these to 3 decimals as the console does; rounded here first, a
    # KGE of 0.97648 was 0.9765 in the file and then 0.977 in the report beside the console's 0.976
    atomic_write_text(out / "demo_test_metrics.csv", summary.to_csv(index=False))
    for src, name in figures:
        data = Path(src).read_bytes()
        atomic_write(out / "figures" / name, lambda fh, data=data: fh.write(data), binary=True)
    atomic_write_text(out / "config.json", json_text(config))


def run_demo(out, basins=None, epochs=None, basin="32006", tiny=False, progress=True) -> dict:
    """Run the demo; returns the summary rows and the paths of every artefact."""
    import pandas as pd

    from ..checkpoint import load_model
    from ..config import DEFAULT_CONFIG_PATH, USER_CONFIG_NAME, load_config
    from ..data.synthetic import generate_synthetic, synthetic_gauge_ids
    from ..evaluation.predict import predict, write_prediction
    from ..evaluation.report import build_report
    from ..training.finetune import finetune
    from ..training.pretrain import pretrain

    s = dict(TINY if tiny else DEMO)
    out = Path(out)
    t_all = time.time()
    n_basins = basins or s["basins"]
    ids = synthetic_gauge_ids(n_basins)
    if basin not in ids:  # said before minutes of pretraining, and before anything is written
        raise UsageError(f"--basin {basin!r} is not one of the demo's {n_basins} synthetic basins: {', '.join(ids)} "
                         "(--basins sets how many)")
    data_dir = out / "data"
    if data_dir.exists():  # a rerun regenerates the (deterministic) data
        if not _written_by_a_demo(data_dir):
            raise UsageError(f"--out {out}: {data_dir} exists and is not a demo's synthetic data; the demo would "
                             "replace it. Give another --out")
        shutil.rmtree(data_dir)
    print(f"[1/4] Writing {n_basins} synthetic basins to {data_dir}")
    # marked (inside the folder before it appears) so its model is then taken for what it is on other synthetic data
    generate_synthetic(data_dir, n_basins=n_basins, seed=42, end=s.get("synth_end", "2015-09-30"),
                       marked_by="`sca2lstm demo`")
    overrides = {"data": {"data_dir": str(data_dir), **s.get("periods", {})},
                 "training": {"epochs": epochs or s["pretrain_epochs"], "epoch_coverage": s["coverage"]},
                 "finetune": {"epochs": s["finetune_epochs"]}}
    # The project's defaults, never the working folder's sca2lstm.yaml: that file is for the user's own runs
    # (its basins, periods and sizes stopped the demo after writing its data, or trained another model).
    if Path(USER_CONFIG_NAME).is_file():
        print(f"      ({USER_CONFIG_NAME} of this folder is not read: the demo trains the default model)")
    cfg = load_config(DEFAULT_CONFIG_PATH, overrides=overrides)
    model_dir = out / "model_output"
    print(f"[2/4] Pretraining on {n_basins} basins -> {model_dir / 'sca2lstm.pth'}")
    pre = pretrain(cfg, model_dir / "sca2lstm.pth", data_dir=data_dir, progress=progress)
    print(f"[3/4] Fine-tuning basin {basin}")
    ft = finetune(pre["checkpoint"], basin, {"epochs": s["finetune_epochs"]}, data_dir=data_dir,
                  out_root=model_dir / "fine_tune", progress=progress)
    print(f"[4/4] Predicting basin {basin} on the test period {cfg.data.test_start}..{cfg.data.test_end}")
    rows, folders, in_sample = [], {}, []
    for name, ckpt in (("pretrained", pre["checkpoint"]), ("fine-tuned", ft["checkpoint"])):
        bundle = load_model(ckpt)
        p = predict(ckpt, basin, data_dir=data_dir, model_bundle=bundle)
        if (p.metrics.get("in_sample") or {}).get("in_sample"):
            in_sample.append(name)
        folders[name] = write_prediction(p, Path(ckpt).parent / "predictions", title_extra=f" ({name})")
        rows.append({"model": name, "NSE": p.metrics["model"]["nse"], "KGE": p.metrics["model"]["kge"],
                     "days": p.metrics["n_days"]})
        if name == "fine-tuned":
            rows.append({"model": "persistence", "NSE": p.metrics["persistence"]["nse"],
                         "KGE": p.metrics["persistence"]["kge"], "days": p.metrics["n_days"]})
    summary = pd.DataFrame(rows)
    _write_summary(out, summary, cfg.to_dict(),
                   ((pre["run_dir"] / "training_curve.png", "pretraining_curve.png"),
                    (ft["run_dir"] / "training_curve.png", "finetune_curve.png"),
                    (ft["run_dir"] / "performance_chart.png", "finetune_performance_chart.png"),
                    (folders["fine-tuned"] / "hydrograph.png", "test_hydrograph_finetuned.png"),
                    (folders["fine-tuned"] / "attention_heatmap.png", "test_attention_finetuned.png")))
    report = build_report(out, title=f"SCA2LSTM demo: basin {basin}")
    seconds = time.time() - t_all
    # What the scores are: predict's hindcast (the observed weather of each day), and whether the models saw
    # those days; a fine-tune that kept the pretrained weights would otherwise read as fine-tuning doing nothing.
    seen = (f"IN-SAMPLE for the {' and '.join(in_sample)} model (days it trained or validated on)" if in_sample
            else "out-of-sample for both models")
    print(f"\nTest period {cfg.data.test_start}..{cfg.data.test_end}, basin {basin}: lead-1 hindcast (observed weather "
          f"of the target day), {seen}:")
    print(summary.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if ft.get("kept") == "pretrained":
        print(f"(fine-tuning kept the pretrained weights, the fine-tuned ones being no better on basin {basin}'s "
              "validation part: the fine-tuned row is those weights with the persistence blend fitted there)")
    print(f"\nDone in {seconds:.0f} s. Everything is under {out}:")
    for label, path in (("pretrained model", pre["checkpoint"]), ("pretraining run", pre["run_dir"]),
                        ("fine-tuned model", ft["checkpoint"]), ("predictions", folders["fine-tuned"]),
                        ("demo report", report)):
        print(f"  {label:<17} {path}")
    return {"summary": summary, "pretrained": pre["checkpoint"], "finetuned": ft["checkpoint"],
            "predictions": folders, "report": report, "seconds": seconds}


def _body(args) -> int:
    output_folder(args.out, "--out")
    run_demo(args.out, args.basins, args.epochs, args.basin, args.tiny, progress=not args.quiet)
    return 0


def main(argv=None, prog: str = PROG) -> int:
    return run_main(prog, _body, build_parser(prog), argv)
