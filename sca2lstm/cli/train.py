"""``python sca2lstm.py`` / ``sca2lstm train``: multi-basin pretraining.

Example (the user's guide): ``python sca2lstm.py --epochs 60 --parallel``
"""

from __future__ import annotations

import functools
import logging
import shutil
from pathlib import Path

from ..config import load_config
from ..errors import DataError
from ..logs import console_warnings_only
from .common import (ArgumentParser, add_common_flags, add_log_file, basin_id, non_negative_int,
                     note_in_file, one_line, output_file, positive_float, positive_int, remove_handler, run_main)

PROG = "sca2lstm.py"


#: command lines that --help ends with (tests parse each)
EXAMPLES = [
        'python sca2lstm.py --epochs 60 --parallel                  # CAMELS-GB in $SCA2LSTM_DATA_DIR',
        'sca2lstm train --data_dir builtin --epochs 5 --output ./try/sca2lstm.pth',
        'python sca2lstm.py --epochs 60 --parallel --resume         # after a Ctrl-C',
]


def build_parser(prog: str = PROG) -> ArgumentParser:
    p = ArgumentParser(prog=prog, examples=EXAMPLES, description="Pretrain SCA2LSTM on many basins. A flag that is given beats "
                       "the config file (training: section), which beats the built-in default shown here.")
    p.add_argument("--epochs", type=non_negative_int, default=None,
                   help="maximum epochs (default 60, or the config's training.epochs; early stopping may end sooner)")
    p.add_argument("--parallel", action="store_true", help="use all cores for data preparation and training")
    p.add_argument("--batch_size", type=positive_int, default=None, help="windows per batch (default 32, or the config's)")
    p.add_argument("--learning_rate", type=positive_float, default=None, help="AdamW learning rate (default 0.002, or the config's)")
    p.add_argument("--patience", type=positive_int, default=None, help="early-stopping patience in epochs (default 10, or the config's)")
    # extend: a repeated flag (--basins 32006 --basins 10002) adds its ids rather than keeping only the last ones
    p.add_argument("--basins", action="extend", nargs="+", default=None,
                   help="gauge ids, listed or with the flag repeated, or one file listing ids (one per line); "
                        "default: every basin in the data")
    p.add_argument("--seed", type=non_negative_int, default=None, help="random seed (default 42, or the config's)")
    p.add_argument("--compile", action="store_true", help="torch.compile the model (GPU users)")
    p.add_argument("--mixed_precision", action="store_true", help="bfloat16 autocast")
    p.add_argument("--resume", action="store_true",
                   help="continue the interrupted run of --output (on the data folder it read, unless --data_dir)")
    p.add_argument("--output", default="./model_output/sca2lstm.pth", help="checkpoint path (default ./model_output/sca2lstm.pth)")
    add_common_flags(p)
    return p


def parse_basins(values) -> list[str] | None:
    """Ids given inline, or a single existing file with one id per line (# comments allowed)."""
    if not values:
        return None
    if len(values) == 1 and Path(values[0]).is_file():
        path = Path(values[0])
        ids = [ln.split("#")[0].strip() for ln in path.read_text(encoding="utf-8-sig").splitlines()]
        ids = [i for i in ids if i]
        if not ids:
            raise DataError(f"basin list {path} is empty; expected one gauge id per line")
        values = ids
    return [basin_id(v) for v in values]


def _body(args, prog: str = PROG) -> int:
    from ..distributed import cleanup, init_distributed, is_main_process, rank_device
    from ..training.pretrain import complete_work, pretrain, resume_state, work_dir
    from ..training.runtime import resolve_device

    # before the data is read and the model trained; the path checked, '~' expanded, is the one written
    args.output = str(output_file(args.output, "--output", "sca2lstm.pth"))
    if args.resume:
        resume_state(args.output)  # nothing to resume: said before the config, the data and the run folder
    overrides = {"training": {}}  # only the flags given: flag > config file > built-in default
    for flag, key in (("epochs", "epochs"), ("batch_size", "batch_size"), ("learning_rate", "learning_rate"),
                      ("seed", "seed"), ("patience", "patience")):
        if getattr(args, flag) is not None:
            overrides["training"][key] = getattr(args, flag)
    if args.compile:
        overrides["training"]["compile"] = True
    if args.mixed_precision:
        overrides["training"]["mixed_precision"] = True
    cfg = load_config(args.config, overrides)
    device = rank_device(resolve_device(args.device or cfg.training.device, args.no_cuda))
    try:
        basins = parse_basins(args.basins)
    except Exception as e:  # argparse-style type errors from basin_id
        if isinstance(e, DataError):
            raise
        from ..errors import UsageError
        raise UsageError(f"--basins: {e}") from None
    distributed = init_distributed(device)
    if distributed and not is_main_process():
        console_warnings_only()  # only rank 0 logs (docs/reference.md); the others still show what goes wrong
    output = Path(args.output)
    run_dir = output.with_name(f"{output.stem}_run")
    handler = None
    # beside an earlier run's files, a run works in a subfolder until it completes: stopped or failed, it leaves
    # the earlier run's log and resumable state as they were
    work = work_dir(output, args.resume)
    # a first run that fails before its first state leaves nothing; one beside an earlier run leaves its log there
    new_run_dir = work == run_dir and not work.exists()
    created = [d for d in [work, *work.parents] if not d.exists()]  # to take back on an early failure
    if is_main_process():
        if work != run_dir and not args.resume:  # a new run replaces the state of one stopped before it
            shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True, exist_ok=True)
        handler = add_log_file(work / "train.log")
        # A later run into the same folder appends to its log: each run's lines start with this one.
        note_in_file(handler, logging.INFO, f"{prog}: {'resumed' if args.resume else 'new'} run, output {output}")
    try:
        pretrain(cfg, output, data_dir=args.data_dir, basins=basins, parallel=args.parallel,
                 resume=args.resume, device=device, progress=not args.quiet, state_dir=work)
    except BaseException as e:
        # The log says how the run ended (the console gets the one line from run_main).
        if handler is not None:
            reason = "interrupted" if isinstance(e, KeyboardInterrupt) else "failed"
            note_in_file(handler, logging.ERROR, f"{prog}: run {reason}: {one_line(e)}")
        if not isinstance(e, Exception):
            raise
        # A run that failed before it saved a resumable state leaves nothing behind.
        if handler is not None:
            remove_handler(handler)
            handler = None
        if new_run_dir and is_main_process() and not (work / "last_state.pth").exists():
            shutil.rmtree(work, ignore_errors=True)
            for d in created[1:]:               # the folders made for it (e.g. ./model_output), if still empty
                try:
                    d.rmdir()
                except OSError:
                    break
        raise
    finally:
        if handler is not None:
            remove_handler(handler)
        if distributed:
            cleanup()
    if is_main_process():
        complete_work(output, work)
    return 0


def main(argv=None, prog: str = PROG) -> int:
    return run_main(prog, functools.partial(_body, prog=prog), build_parser(prog), argv)
