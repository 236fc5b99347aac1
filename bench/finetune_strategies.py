"""``fine_train.py --strategy auto`` against the guide's default fine-tune, zero-shot and persistence.

For each basin: the pretrained model scored on the test years (zero-shot); ``--strategy auto`` (the
guide's default and its three presets on one split, the best kept on validation); then on the test years
the kept model, the default candidate's model and persistence, on the same days. Validation chose
everything; the test years are scored once per model to report.

    python bench/finetune_strategies.py --model bench_output/large_sample/model/sca2lstm.pth \\
        --basins 32006 42003 --data_dir ../shared/data/camels_gb --group "camels_gb 9" --threads 1

``--epoch_coverage`` sets ``finetune.epoch_coverage`` for every candidate alike (windows per epoch, as a
multiple of one tiling of the training days; the guide's default is 4.0): the trial size, not the
protocol. Rows are appended to ``--out``/auto.csv, so basins can be run in several calls.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import pandas as pd  # noqa: E402


def _test(model_path, basin, data_dir) -> dict:
    from sca2lstm.evaluation.predict import predict
    m = predict(model_path, basin, data_dir=data_dir).metrics
    return {"nse": m["model"]["nse"], "persistence_nse": m["persistence"]["nse"], "n_days": int(m["n_days"]),
            "in_sample": bool((m.get("in_sample") or {}).get("in_sample", False))}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--basins", nargs="+", required=True)
    p.add_argument("--data_dir", required=True)
    p.add_argument("--group", default="")
    p.add_argument("--epoch_coverage", type=float, default=None)
    p.add_argument("--out", default=str(REPO / "bench_output" / "strategies"))
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    import logging

    import torch
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING)
    from sca2lstm.training.strategies import PRETRAINED_ROW, finetune_with_strategy

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    over = {} if args.epoch_coverage is None else {"epoch_coverage": args.epoch_coverage}
    for basin in args.basins:
        t0 = time.time()
        zero = _test(args.model, basin, args.data_dir)
        r = finetune_with_strategy("auto", args.model, basin, over, {}, data_dir=args.data_dir,
                                   out_root=out / "fine_tune", progress=False, seed=42)
        table = r["strategies"].set_index("strategy")
        kept = r["strategy_kept"]
        default_ckpt = table.loc["default", "checkpoint"]
        auto = _test(r["checkpoint"], basin, args.data_dir)
        default = _test(default_ckpt, basin, args.data_dir)
        row = {"group": args.group, "basin": basin, "kept": kept,
               "val_score_auto": float(table.loc[kept, "val_score"]),
               "val_score_default": float(table.loc["default", "val_score"]),
               "val_score_pretrained": float(table.loc[PRETRAINED_ROW, "val_score"]),
               "test_nse_auto": auto["nse"], "test_nse_default": default["nse"], "test_nse_zero_shot": zero["nse"],
               "test_nse_persistence": auto["persistence_nse"], "test_days": auto["n_days"],
               "in_sample_zero_shot": zero["in_sample"], "minutes": round((time.time() - t0) / 60, 1),
               "candidates": json.dumps({k: round(float(v), 4) for k, v in table["val_score"].items()})}
        print(json.dumps(row), flush=True)
        path = out / "auto.csv"
        pd.DataFrame([row]).to_csv(path, mode="a", header=not path.exists(), index=False, float_format="%.4f")
    return 0


if __name__ == "__main__":
    sys.exit(main())
