"""``python predict.py`` / ``sca2lstm predict``: forecast basins with a checkpoint, score and plot.

Example (the user's guide):
``python predict.py --model ./model_output/fine_tune/basin_32006/*/best_model_basin_32006.pth --basin 32006``
An unquoted glob with several matches arrives as several arguments; all are accepted and the newest
checkpoint is used.
"""

from __future__ import annotations

import functools
import logging
import math
import sys
from pathlib import Path

from ..errors import Sca2lstmError
from .common import ArgumentParser, add_common_flags, basin_id, one_line, output_folder, run_main

PROG = "predict.py"
log = logging.getLogger(__name__)


#: command lines that --help ends with (tests parse each)
EXAMPLES = [
        "python predict.py --model './model_output/fine_tune/basin_32006/*/best_model_basin_32006.pth' --basin 32006",
        'python predict.py --model ./model_output/sca2lstm.pth --basin 32006 --start 2010-10-01 --end 2015-09-30',
]


def build_parser(prog: str = PROG) -> ArgumentParser:
    p = ArgumentParser(prog=prog, examples=EXAMPLES, description="Forecast basins with a pretrained or fine-tuned checkpoint.")
    p.add_argument("--model", action="extend", nargs="+", required=True, help="checkpoint path or glob: the newest match, preferring those fine-tuned for --basin (best_model_basin_<id>.pth)")
    p.add_argument("--basin", type=basin_id, action="extend", nargs="+", required=True,
                   help="basin id(s); repeat the flag or list several")
    p.add_argument("--start", default=None, help="first day, YYYY-MM-DD (default: the test period's)")
    p.add_argument("--end", default=None, help="last day, YYYY-MM-DD (default: the test period's)")
    p.add_argument("--test_start", default=None,
                   help="first day of the test part, YYYY-MM-DD, to its last observed day (default: the one "
                        "stored in a fine-tuned checkpoint, else the configured test period or the last data.station_test_fraction (20%%) "
                        "of a station's record)")
    p.add_argument("--output_dir", default=None, help="default: a predictions/ folder beside the model")
    p.add_argument("--format", choices=["csv", "netcdf"], default="csv", help="series format (default csv)")
    p.add_argument("--allow_missing_inputs", action="store_true",
                   help="run even when precipitation, or every meteorological input, is absent from a basin's "
                        "whole file (the outputs name it)")
    add_common_flags(p, config=False)
    return p


def _body(args, prog: str = PROG) -> int:
    from ..checkpoint import load_model
    from ..evaluation.predict import (
        HINDCAST_SETTING,
        predict,
        require_netcdf,
        resolve_model_path,
        write_prediction,
    )
    from ..evaluation.context import check_basins
    from ..training.runtime import resolve_device

    if args.output_dir:
        args.output_dir = str(output_folder(args.output_dir, "--output_dir"))  # '~' expanded
    if args.format == "netcdf":
        require_netcdf()  # before any work: a missing optional package is a usage error
    device = resolve_device(args.device, args.no_cuda)
    path = resolve_model_path(args.model, args.basin[0] if len(args.basin) == 1 else None)
    bundle = load_model(path, device)
    out_dir = Path(args.output_dir) if args.output_dir else path.parent / "predictions"
    basins = list(dict.fromkeys(args.basin))
    # A basin id the data folder lacks is bad input: refused before anything is computed or written. The
    # folder is resolved (and said where it is the model's synthetic one) once, not again for each basin.
    data_dir = check_basins(bundle, args.data_dir, basins)
    # Each basin is written as soon as it is forecast: a basin that fails later costs no finished one.
    rows, failed = [], []
    for basin in basins:
        try:
            pred = predict(path, basin, args.start, args.end, data_dir=data_dir, device=device,
                           model_bundle=bundle, test_start=args.test_start,
                           allow_missing_inputs=args.allow_missing_inputs)
            rows.append((pred, write_prediction(pred, out_dir, args.format)))
        except Exception as e:
            if len(basins) == 1:  # the guide's form: one stderr line and the error's exit code
                raise
            if not isinstance(e, Sca2lstmError):
                log.error("basin %s: unexpected error", basin, exc_info=True)
            failed.append((basin, one_line(e)))
    print(f"\nModel: {path}")
    print(f"Setting: {HINDCAST_SETTING} (for an issue-time forecast use 'sca2lstm forecast')")
    # Left of the first bar: the days where persistence also has a forecast (the fair comparison); "NSE all
    # days" also scores the days right after a gap in the record, which persistence cannot forecast.
    # skill = 1 - MSE/MSE_persistence of the forecast and of the raw model (before the persistence blend).
    print(f"{'basin':>8} {'days':>6} {'NSE':>7} {'KGE':>7} {'RMSE':>8} {'PBIAS%':>7} | {'persist. NSE':>12} {'KGE':>7} "
          f"| {'skill':>6} {'raw':>6} {'alpha':>5} | {'days':>6} {'NSE all days':>12} | unpredicted  output")
    below, in_sample, unscored, short = [], [], [], []
    for pred, folder in rows:
        m, q, a = pred.metrics["model"], pred.metrics["persistence"], pred.metrics["model_all_days"]
        raw = pred.metrics.get("model_raw", m)
        alpha = (pred.metrics.get("persistence_blend") or {}).get("alpha")
        flag = "  BELOW PERSISTENCE" if m["skill_vs_persistence"] < 0 else ""
        if pred.metrics["in_sample"]["in_sample"]:
            flag += "  IN-SAMPLE"
            in_sample.append(pred.basin)
        if pred.metrics["missing_inputs"]:
            flag += f"  NO {'/'.join(pred.metrics['missing_inputs']).upper()}"
        print(f"{pred.basin:>8} {pred.metrics['n_days']:6d} {m['nse']:7.3f} {m['kge']:7.3f} {m['rmse']:8.3f} "
              f"{m['pbias']:7.2f} | {q['nse']:12.3f} {q['kge']:7.3f} | {m['skill_vs_persistence']:6.3f} "
              f"{raw['skill_vs_persistence']:6.3f} {'-' if alpha is None else f'{alpha:.2f}':>5} "
              f"| {a['n_days']:6d} {a['nse']:12.3f} | {pred.n_unpredicted:11d}  {folder}{flag}")
        d = pred.series["date"]
        if not a["n_days"]:
            unscored.append(f"{pred.basin} ({d.iloc[0].date()}..{d.iloc[-1].date()})")
        elif math.isnan(m["nse"]):  # one observed day, or a flow that never changed
            short.append(f"{pred.basin} ({d.iloc[0].date()}..{d.iloc[-1].date()}, {a['n_days']} observed)")
        if m["skill_vs_persistence"] < 0:
            below.append(f"{pred.basin} ({d.iloc[0].date()}..{d.iloc[-1].date()})")
    print("skill = 1 - MSE/MSE_persistence on the same days (raw: the model before the persistence blend)")
    if below:
        print(f"WARNING: the model is below persistence (skill < 0) for basin {', '.join(below)}")
    if unscored:
        print(f"basin {', '.join(unscored)}: no observed discharge on these days, so nothing to score (nan): a "
              "forecast only, in series.csv")
    if short:
        print(f"basin {', '.join(short)}: too few observed days, or a flow that never changed, for an NSE (nan)")
    if in_sample:
        print(f"WARNING: basin {', '.join(in_sample)}: the scored days include days the model was trained or "
              "validated on; these are in-sample scores, not a test (metrics.json: in_sample)")
    for basin, why in failed:
        print(f"{basin:>8} failed: {why}")
    if failed:
        sys.stderr.write(f"{prog}: error: {len(failed)} of {len(basins)} basins failed: "
                         f"{', '.join(b for b, _ in failed)}\n")
        return 1
    return 0


def main(argv=None, prog: str = PROG) -> int:
    return run_main(prog, functools.partial(_body, prog=prog), build_parser(prog), argv)
