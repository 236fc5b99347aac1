"""``sca2lstm calibrate --model M.pth``: fit (or refit) the forecast calibration stored beside a checkpoint.

Pretraining and fine-tuning write ``<stem>.forecast_calibration.json`` themselves; this command makes it
for a model trained before, or refits it after the data changed. It fits on the **validation** days of
the basins (a seeded sample of ``--max_basins`` of the checkpoint's basins, or ``--basins``): the
persistence blend per lead, the spread per lead and weather setting, and the warning probability per
level (:mod:`sca2lstm.evaluation.calibration`). The ``forecast`` and ``ensemble`` spreads are fitted on
emulated weather forecasts (the calibration file says so). An earlier file is replaced only when the
new one is complete. A fine-tuned model is refitted as fine-tuning fitted it: on its own basin's validation
days less any its pretraining or fine-tuning trained on, completed from its pretrained model's calibration
where its own rests on too few days, or replaced by it where no such day remains (``--basins`` naming other
basins is refused).

Example: ``sca2lstm calibrate --model ./model_output/sca2lstm.pth --data_dir ../shared/data/camels_gb_large``
"""

from __future__ import annotations

from .common import ArgumentParser, non_negative_int, positive_int, run_main

PROG = "sca2lstm calibrate"


#: command lines that --help ends with (tests parse each)
EXAMPLES = [
        'sca2lstm calibrate --model ./model_output/sca2lstm.pth',
]


def build_parser(prog: str = PROG) -> ArgumentParser:
    from ..evaluation.calibration import MAX_BASINS
    from ..evaluation.spread import WEATHER_SETTINGS

    p = ArgumentParser(prog=prog, examples=EXAMPLES, description="Fit the forecast calibration of a checkpoint on validation days: "
                                              "blend and spread per lead, warning probabilities.")
    p.add_argument("--model", required=True, help="the checkpoint (.pth, or a quoted glob: the newest match); the "
                                                  "calibration is written beside it. A fine-tuned model is refitted "
                                                  "on its own basin, as fine-tuning fitted it")
    p.add_argument("--data_dir", default=None, help="data folder (default: the one the checkpoint recorded)")
    p.add_argument("--basins", action="extend", nargs="+", default=None, help="basins to fit on (default: a sample of the model's)")
    p.add_argument("--max_basins", type=positive_int, default=MAX_BASINS, help=f"sample size (default {MAX_BASINS})")
    p.add_argument("--settings", nargs="+", default=list(WEATHER_SETTINGS), choices=list(WEATHER_SETTINGS),
                   help="weather settings whose spread is fitted (default: all); the others keep the "
                        "earlier calibration's")
    p.add_argument("--seed", type=non_negative_int, default=0, help="basin sample and emulated forecasts (default 0)")
    p.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    p.add_argument("--quiet", action="store_true", help="less output")
    return p


def _body(args) -> int:
    import time
    from pathlib import Path

    from ..checkpoint import load_model
    from ..errors import DataError, UsageError
    from ..evaluation.calibration import (calibrate, calibration_path, read_calibration, with_earlier_settings,
                                          with_source_calibration, write_calibration)
    from ..evaluation.context import check_basins
    from ..evaluation.predict import resolve_model_path

    path = resolve_model_path(args.model)   # a quoted glob, as forecast and predict.py take it: the newest match
    bundle = load_model(path)
    if bundle[1].training.forecast_leads <= 0:
        raise UsageError(f"{path}: a hindcast-only model (training.forecast_leads 0) has no issue-time forecasts "
                         "to calibrate")
    # A fine-tuned model is calibrated as fine-tuning calibrated it: on its own basin's validation days,
    # completed from its pretrained model's calibration where its own rests on too few days.
    tuned = bundle[3].get("finetuned_basin")
    if args.basins:  # a basin named twice is one basin (it was counted, and fitted, twice)
        args.basins = list(dict.fromkeys(str(b) for b in args.basins))
    if tuned and args.basins and args.basins != [str(tuned)]:
        raise UsageError(f"--basins {' '.join(map(str, args.basins))}: {path.name} is fine-tuned for basin {tuned} and "
                         f"is calibrated on it alone (leave --basins out); calibrate the pretrained model on other "
                         "basins")
    basins = args.basins or ([str(tuned)] if tuned else None)
    folder = check_basins(bundle, args.data_dir, basins or [])
    t0 = time.perf_counter()
    if not args.quiet:
        n = len(basins or bundle[2].basins)
        what = (f"basin {tuned}, the one it was fine-tuned on" if tuned else
                f"up to {_basins(min(n, args.max_basins))}")
        print(f"Calibrating {path.name} on the validation days of {what} (settings {', '.join(args.settings)}); "
              "this takes a minute to a few minutes", flush=True)
    source = Path(str(bundle[3].get("source_checkpoint") or ""))
    src = read_calibration(source) if tuned and source.is_file() else {}
    # given the pretrained model's calibration, a setting whose spread would be replaced by it is not run
    doc = calibrate(bundle, None, folder, basins, max_basins=args.max_basins, seed=args.seed,
                    settings=args.settings, progress=not args.quiet, source=src or None)
    own = bool((doc.get("spread") or {}).get("none"))   # fitted on the basin's own days ("none" is always run)
    # A fine-tuned basin without a validation day outside the days the model trained on (a --test_start in the
    # pretraining years) takes its pretrained model's calibration, as fine-tuning does: not the earlier file's,
    # which may have been fitted on those days
    if not own and not src.get("spread"):
        raise DataError(f"no basin of {folder} had validation days to calibrate on (days with observed flow that the "
                        "model did not train on); nothing written")
    kept = with_earlier_settings(doc, read_calibration(path)) if own else []   # settings left out of --settings
    if tuned:
        if source.is_file():
            with_source_calibration(doc, src)
        elif not args.quiet:
            print(f"the pretrained model {source} is not there: warning probabilities and spreads come from basin "
                  f"{tuned} alone")
    write_calibration(path, doc)
    if own:
        print(f"Calibrated on {_basins(doc['basins'])}, validation days {doc['validation_days']} "
              f"({time.perf_counter() - t0:.0f} s); settings {', '.join(w for w in doc['spread'] if w not in kept)}"
              + (f"; kept the earlier calibration's {', '.join(kept)} (not in --settings)" if kept else ""))
    else:
        print(f"Basin {tuned} has no validation days outside the days the model trained on: its calibration is the "
              f"pretrained model's ({source}), its blend per lead the raw model ({time.perf_counter() - t0:.0f} s)")
    for w, sp in doc["spread"].items():
        f = sp["factors"]
        j05, j95 = sp["levels"].index(0.05), sp["levels"].index(0.95)
        lo = " ".join(f"{max(row[j05] for row in lead):.2f}" for lead in f)
        hi = " ".join(f"{max(row[j95] for row in lead):.2f}" for lead in f)
        print(f"  {w:<9} largest q05 / q95 spread factor per lead: {lo} / {hi}")
        print(f"  {'':<9} {_at_bounds(sp)}; "
              + (f"taken from {sp['from']}, not fitted in this run" if sp.get("from") else "fitted in this run"))
    print(f"Saved {calibration_path(path)}")
    return 0


def _at_bounds(spread: dict) -> str:
    """How many of a setting's spread factors (every lead, state and level but the median's) sit at a bound of
    :data:`~sca2lstm.evaluation.spread.FACTOR_RANGE`: the largest factor per lead hides a quantile squeezed to
    the floor (a degenerate head, or a bin of identical forecasts)."""
    import numpy as np

    from ..evaluation.spread import FACTOR_RANGE

    f = np.asarray(spread["factors"], dtype=float)
    f = np.delete(f, [j for j, t in enumerate(spread["levels"]) if t == 0.5], axis=-1)   # the median's is 1
    floor, ceiling = FACTOR_RANGE
    # the file rounds factors to 4 decimals; the bounds are exact there
    n_floor, n_ceiling = int(np.sum(f <= floor + 1e-9)), int(np.sum(f >= ceiling - 1e-9))
    return (f"{n_floor} of {f.size} factors at the floor {floor:g} of the allowed range, {n_ceiling} at its "
            f"ceiling {ceiling:g}")


def _basins(n: int) -> str:
    return f"{n} basin" + ("" if n == 1 else "s")


def main(argv=None, prog: str = PROG) -> int:
    return run_main(prog, _body, build_parser(prog), argv)
