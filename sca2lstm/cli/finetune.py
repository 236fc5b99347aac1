"""``python fine_train.py`` / ``sca2lstm finetune``: fine-tune a pretrained model to target basins.

Every flag and default of the user's guide is kept: --target_basin, --pretrained_model, --epochs 20,
--batch_size 16, --learning_rate 1e-4, --weight_decay 1e-5, --patience 8, --fine_tune_ratio 0.8,
--unfreeze_embedding, --unfreeze_lstm1, --unfreeze_weight_head, --no_cuda, --seed 42.
Precedence of each setting: the flag, if given; else the ``finetune:`` section of ``--config`` (default
./sca2lstm.yaml if present; ``training.seed`` for the seed); else the finetune section stored in the
pretrained checkpoint; else those built-in defaults.
"""

from __future__ import annotations

import functools
import logging
import multiprocessing as mp
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from ..errors import Sca2lstmError
from ..training.strategies import DEFAULT_SEARCH_TRIALS, STRATEGIES, preset_overrides
from .common import (ArgumentParser, add_common_flags, basin_id, non_negative_float, non_negative_int,
                     open_unit_float, output_folder, positive_float, positive_int, run_main, setup_logging)

PROG = "fine_train.py"
log = logging.getLogger(__name__)


#: command lines that --help ends with (tests parse each)
EXAMPLES = [
        'python fine_train.py --target_basin 32006 --pretrained_model ./model_output/sca2lstm.pth',
        'python fine_train.py --target_basin my-gauge --data_dir ./my_stations --pretrained_model ./model_output/sca2lstm.pth --strategy conservative',
]


def build_parser(prog: str = PROG) -> ArgumentParser:
    p = ArgumentParser(prog=prog, examples=EXAMPLES, description=(
        "Fine-tune a pretrained SCA2LSTM model to one or more basins. Each setting comes from the flag if "
        "given, else the config file's finetune: section, else the finetune section stored in the "
        "pretrained checkpoint, else the built-in default shown here. Of --config only finetune: and "
        "training.seed apply: the pretrained model fixes its inputs, sizes and windows."))
    # extend: a repeated flag (--target_basin 32006 --target_basin 10002) adds its ids, as predict.py's --basin
    # does, rather than silently fine-tuning only the last one
    p.add_argument("--target_basin", type=basin_id, action="extend", nargs="+", required=True,
                   help="target basin id (e.g. 32006, DE110000, my-gauge); several ids, listed or with the flag "
                        "repeated, fine-tune one model each")
    p.add_argument("--pretrained_model", required=True, help="pretrained checkpoint, e.g. ./model_output/sca2lstm.pth")
    p.add_argument("--epochs", type=non_negative_int, default=None, help="fine-tuning epochs (default 20)")
    p.add_argument("--batch_size", type=positive_int, default=None, help="batch size (default 16)")
    p.add_argument("--learning_rate", type=positive_float, default=None, help="learning rate (default 1e-4)")
    p.add_argument("--weight_decay", type=non_negative_float, default=None, help="weight decay (default 1e-5)")
    p.add_argument("--patience", type=positive_int, default=None, help="early-stopping patience (default 8)")
    p.add_argument("--fine_tune_ratio", type=open_unit_float, default=None,
                   help="share of the train+validation days, in time order, used for training (default 0.8); "
                        "for a basin the model was pretrained on, validation never starts before data.val_start")
    p.add_argument("--test_start", default=None,
                   help="first day of the basin's test part, YYYY-MM-DD: fine-tuning reads only the days before "
                        "it (default: the last data.station_test_fraction (20%%) of an imported station's own record, or the "
                        "configured periods of a CAMELS-GB basin that covers them)")
    p.add_argument("--unfreeze_embedding", action="store_true", default=None, help="also train the basin embedding")
    p.add_argument("--unfreeze_lstm1", action="store_true", default=None, help="also train LSTM1 (attention LSTM)")
    p.add_argument("--unfreeze_weight_head", action="store_true", default=None,
                   help="also train the attention weight head")
    p.add_argument("--allow_missing_inputs", action="store_true",
                   help="fine-tune even when precipitation, or every meteorological input, is absent from the "
                        "basin's whole file (the outputs name it)")
    p.add_argument("--seed", type=non_negative_int, default=None, help="random seed (default 42, or the config file's training.seed)")
    p.add_argument("--strategy", choices=STRATEGIES, default=None,
                   help="the guide's presets conservative, deep, fast (explicit flags still override them); auto: "
                        "the default and the three presets on one split, keeping the best on validation; search: a "
                        "small sine-cosine search over the fine-tune flags (default: none, the guide's defaults)")
    p.add_argument("--trials", type=positive_int, default=None,
                   help=f"--strategy search: fine-tunes tried (default {DEFAULT_SEARCH_TRIALS})")
    p.add_argument("--resume", action="store_true",
                   help="continue the latest interrupted fine-tune of the basin (same --pretrained_model, flags and data; "
                        "on the data folder it read, unless --data_dir)")
    p.add_argument("--jobs", type=positive_int, default=1, help="basins fine-tuned in parallel processes (default 1)")
    # pretraining's --parallel (the guide's first command) carried over to fine-tuning: several basins at once is --jobs
    p.meant_by["--parallel"] = "--jobs N (N basins fine-tuned at once; --parallel is pretraining's)"
    p.add_argument("--output_dir", default="./model_output/fine_tune",
                   help="root of the run folders (default ./model_output/fine_tune)")
    add_common_flags(p, device_from_config=False)  # the pretrained model's config fixes no device
    return p


FLAGS = ("epochs", "batch_size", "learning_rate", "weight_decay", "patience", "fine_tune_ratio",
         "unfreeze_embedding", "unfreeze_lstm1", "unfreeze_weight_head")
DEFAULT_SEED = 42  # the guide's


def settings(args) -> tuple[dict, int]:
    """The ``finetune`` overrides and the seed: flag > ``--strategy`` preset > config file >
    (checkpoint's section) > built-in.

    Returns
    -------
    overrides : dict
        The config file's ``finetune:`` keys, updated with the flags that were given. Keys in neither
        are left out, so :func:`~sca2lstm.training.finetune.finetune` keeps the pretrained checkpoint's
        stored ``finetune`` section for them (the built-in defaults, unless pretraining set others).
    seed : int
        ``--seed``, else the config file's ``training.seed``, else 42.
    """
    from ..config import read_config_file

    source, user = read_config_file(args.config)
    # The pretrained model fixes the rest (its inputs, sizes, windows): say so rather than ignore it quietly.
    ignored = [f"{sec}.{k}" for sec, v in user.items() if sec != "finetune" and isinstance(v, dict) for k in v
               if (sec, k) != ("training", "seed")]
    if ignored:
        # the file read may be ./sca2lstm.yaml, found without --config: name the file, not the flag
        log.warning("%s: %s ignored: a fine-tune keeps the pretrained model's data, model and training "
                    "settings (only the finetune: section and training.seed apply)",
                    f"--config {source}" if args.config else source, ", ".join(ignored))
    overrides = preset_overrides(getattr(args, "strategy", None), dict(user.get("finetune", {})), given_flags(args))
    seed = args.seed if args.seed is not None else user.get("training", {}).get("seed", DEFAULT_SEED)
    return overrides, int(seed)


def given_flags(args) -> dict:
    """The fine-tune flags given on the command line (``auto``/``search`` apply them to every candidate)."""
    return {k: getattr(args, k) for k in FLAGS if getattr(args, k) is not None}


def _finetune(args, basin, overrides, seed, device, progress):
    from ..training.strategies import finetune_with_strategy
    return finetune_with_strategy(args.strategy, args.pretrained_model, basin, overrides, given_flags(args),
                                  trials=args.trials, data_dir=args.data_dir, device=device,
                                  out_root=args.output_dir, progress=progress, resume=args.resume, seed=seed,
                                  test_start=args.test_start, allow_missing_inputs=args.allow_missing_inputs)


def _one(job) -> dict:
    """Fine-tune one basin; errors become a row of the summary (used for several basins)."""
    args, basin, threads, in_worker, overrides, seed = job
    import torch

    from ..training.runtime import resolve_device
    if in_worker:
        setup_logging(args.quiet)
        torch.set_num_threads(threads)
    try:
        device = resolve_device(args.device, args.no_cuda)
        r = _finetune(args, basin, overrides, seed, device, not args.quiet and not in_worker)
        b, a = r["before"].per_basin[basin], r["after"].per_basin[basin]
        return {"basin": basin, "status": "ok", "val_nse_before": b["model"]["nse"], "val_nse_after": a["model"]["nse"],
                "kept": r["kept"],
                "persistence_nse": a["persistence"]["nse"], "seconds": round(r["seconds"], 1),
                "checkpoint": str(r["checkpoint"])}
    except Sca2lstmError as e:
        return {"basin": basin, "status": f"failed: {' '.join(str(e).split())}"}
    except Exception as e:  # one bad basin never costs the others; the log keeps the traceback
        log.error("basin %s: unexpected error", basin, exc_info=True)
        return {"basin": basin, "status": f"failed: {type(e).__name__}: {' '.join(str(e).split())}"}


def _body(args, prog: str = PROG) -> int:
    # the folder checked is the one written, and the model read is the one named: a '~' the shell left (--flag=~/x)
    # is the home folder there too, never a folder named ~ under this one
    args.output_dir = str(output_folder(args.output_dir, "--output_dir"))
    args.pretrained_model = str(Path(args.pretrained_model).expanduser())
    basins = list(dict.fromkeys(args.target_basin))
    overrides, seed = settings(args)
    if len(basins) == 1:  # the guide's form: errors propagate to one stderr line and an exit code
        from ..training.runtime import resolve_device
        device = resolve_device(args.device, args.no_cuda)
        _finetune(args, basins[0], overrides, seed, device, not args.quiet)
        return 0
    if not args.resume:
        # a mistyped id among several is refused before the others' fine-tunes (minutes each), as predict refuses
        # it; a basin whose file is there but bad still fails alone, in the summary (a resumed run reads the folder
        # its interrupted run read, known only there)
        from ..checkpoint import load_model
        from ..evaluation.context import check_basins
        check_basins(load_model(args.pretrained_model), args.data_dir, basins)
    jobs = min(args.jobs, len(basins))
    try:
        if jobs > 1:
            threads = max(1, (os.cpu_count() or 1) // jobs)
            with ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn")) as ex:
                futures = {b: ex.submit(_one, (args, b, threads, True, overrides, seed)) for b in basins}
                rows = [_collect(b, f) for b, f in futures.items()]
        else:
            rows = [_one((args, b, 0, False, overrides, seed)) for b in basins]
    except KeyboardInterrupt:
        raise _interrupted_basins(args.output_dir, basins) from None
    _print_summary(rows)
    failed = [r for r in rows if r["status"] != "ok"]
    if failed:
        sys.stderr.write(f"{prog}: error: {len(failed)} of {len(rows)} basins failed: "
                         f"{', '.join(r['basin'] for r in failed)}\n")
        return 1
    return 0


def _interrupted_basins(out_root, basins) -> KeyboardInterrupt:
    """Ctrl-C in a fine-tune of several basins, as the command reports it: which basins saved a state to resume.

    A basin's own line names its state and says to rerun with --resume, but --resume of every basin listed
    fails for those finished or not begun (no interrupted run): the line names the basins to resume instead.
    """
    from ..training.finetune import interrupted_run

    saved = [b for b in basins if interrupted_run(out_root, b) is not None]
    if not saved:
        return KeyboardInterrupt("no basin saved a state to resume")
    several = len(saved) > 1
    return KeyboardInterrupt(f"{'states are' if several else 'the state is'} saved for basin{'s' if several else ''} "
                             f"{', '.join(saved)}; rerun with --resume --target_basin {' '.join(saved)} to continue")


def _collect(basin: str, future) -> dict:
    """The row of one basin's job; a worker that died (killed, out of memory) fails only its basins."""
    try:
        return future.result()
    except Exception as e:  # e.g. BrokenProcessPool: the other basins' rows still count
        return {"basin": basin, "status": f"failed: {type(e).__name__}: {' '.join(str(e).split())}"}


def _print_summary(rows) -> None:
    print(f"\n{'basin':>8}  {'status':<10} {'NSE before':>10} {'NSE after':>10} {'persistence':>11} {'seconds':>8}"
          "  kept (the better on validation)")
    for r in rows:
        if r["status"] == "ok":
            print(f"{r['basin']:>8}  {'ok':<10} {r['val_nse_before']:10.3f} {r['val_nse_after']:10.3f} "
                  f"{r['persistence_nse']:11.3f} {r['seconds']:8.1f}  {r['kept']}")
        else:
            print(f"{r['basin']:>8}  {r['status']}")


def main(argv=None, prog: str = PROG) -> int:
    return run_main(prog, functools.partial(_body, prog=prog), build_parser(prog), argv)
