"""``sca2lstm tune``: hyper-parameter search over the config's ``tune.space`` (Optuna).

Example::

    sca2lstm tune --config my.yaml --data_dir ../shared/data/camels_gb --trials 24 --sampler tpe

Rerunning the same command resumes the study from its file database; several processes given the same
``--storage`` share one study. The best configuration is written as ``best_config.yaml`` (``--config``
of ``sca2lstm.py`` accepts it).
"""

from __future__ import annotations

from pathlib import Path

from ..config import TUNE_SAMPLERS, load_config
from .common import ArgumentParser, add_common_flags, non_negative_int, output_folder, positive_int, run_main

PROG = "sca2lstm tune"


#: command lines that --help ends with (tests parse each)
EXAMPLES = [
        'sca2lstm tune --config my.yaml --trials 24',
]


def build_parser(prog: str = PROG) -> ArgumentParser:
    p = ArgumentParser(prog=prog, examples=EXAMPLES, description=(
        "Search hyper-parameters with Optuna over the config's tune.space, scored on the validation period. "
        "Flags beat the config's tune: section. Rerun the same command to resume an interrupted study."))
    p.add_argument("--trials", type=positive_int, default=None, help="trials the study holds in all (default: tune.trials, 24)")
    p.add_argument("--sampler", choices=TUNE_SAMPLERS, default=None, help="search algorithm (default: tune.sampler, tpe)")
    p.add_argument("--objective", choices=("val_loss", "val_nse"), default=None,
                   help="validation loss (minimised) or validation median NSE (maximised); default tune.objective")
    p.add_argument("--pruner", choices=("median", "hyperband", "none"), default=None,
                   help="stop trials that fall behind (default: tune.pruner, median)")
    p.add_argument("--epochs", type=positive_int, default=None, help="maximum epochs per trial (default: training.epochs)")
    p.add_argument("--seed", type=non_negative_int, default=None, help="sampler seed (default 0)")
    p.add_argument("--study_name", default="sca2lstm", help="study name inside the storage (default sca2lstm)")
    p.add_argument("--storage", default=None,
                   help="Optuna storage: a database URL (sqlite:///path/study.db) or a journal file ending in .log "
                        "(default: sqlite in --output_dir)")
    p.add_argument("--output_dir", default="./model_output/tune",
                   help="study folder: trials.csv, history.png, best_config.yaml (default ./model_output/tune)")
    p.add_argument("--threads", type=positive_int, default=None, help="torch threads (default: torch's)")
    add_common_flags(p)
    return p


def _body(args) -> int:
    from ..training.tune import require_optuna, run_study
    from ..training.runtime import resolve_device

    require_optuna()
    args.output_dir = str(output_folder(args.output_dir, "--output_dir"))  # '~' expanded
    tune = {k: getattr(args, k) for k in ("trials", "sampler", "objective", "pruner") if getattr(args, k) is not None}
    overrides = {"tune": tune}
    if args.epochs is not None:
        overrides["training"] = {"epochs": args.epochs}
    cfg = load_config(args.config, overrides)
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device or cfg.training.device, args.no_cuda)
    try:
        run_study(cfg, Path(args.output_dir), data_dir=args.data_dir, storage=args.storage,
                  study_name=args.study_name, device=device, seed=args.seed if args.seed is not None else 0)
    except KeyboardInterrupt as e:  # run_study names the outputs it wrote from the trials finished, if any
        written = f"; {e}" if str(e) else ""
        raise KeyboardInterrupt(f"the study is stored{written}; rerun the same command to finish its trials") from None
    return 0


def main(argv=None, prog: str = PROG) -> int:
    return run_main(prog, _body, build_parser(prog), argv)
