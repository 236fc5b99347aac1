"""Fine-tuning strategies: the guide's three presets, ``auto`` (the best of them on validation) and
``search`` (a small sine-cosine search over the fine-tune flags).

- Presets (the guide's section 微调策略建议, flag for flag): ``conservative``, ``deep`` and ``fast``.
  Precedence for a preset run alone: an explicit flag > the preset > the config file's ``finetune:``
  section > the pretrained checkpoint's.
- ``auto`` fine-tunes the guide's default and the three presets, every one on the same split (the
  ``--fine_tune_ratio`` flag or config value, else the checkpoint's, 0.8 by default: the presets' own
  ratios apply only when a preset runs alone, or the candidates would validate on different days).
  Explicit flags still apply to every candidate.
- ``search`` runs ``trials`` fine-tunes chosen by the SCA sampler (:mod:`.samplers`) over learning rate,
  epochs, batch size, patience and the unfreeze flags; its first trial is the guide's default.
- Both keep the candidate with the best validation score on the basin's validation part, the score
  every fine-tune keeps its model by (:func:`~.finetune.validation_score`: skill against persistence of
  the forecast prediction makes, on the validation days the pretrained model did not train on:
  ``val_score_days``). Each fine-tune already keeps the pretrained weights unless its own
  are better there (:func:`~.finetune.keep_better`); when no candidate beats the pretrained model, the
  kept checkpoint holds the pretrained weights and the table says so. Both write one run folder ``<out_root>/basin_{id}/{time}/`` with the winner as
  ``best_model_basin_{id}.pth``, the winner's log, history, scores and figures (``finetune.log``,
  ``history.csv``, ``val_metrics.json``, ...) with a ``report.html`` built from them, ``strategies.csv``
  (every candidate and the pretrained model with their validation scores) and the candidates' own run
  folders under ``candidates/``.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pandas as pd

from ..errors import UsageError
from ..evaluation.calibration import read_calibration, write_calibration
from ..fileio import atomic_write, atomic_write_text
from ..logs import RESULT
from .finetune import FINE_TUNED, PRETRAINED, keep_better

log = logging.getLogger(__name__)

# The guide's presets, exactly its command lines (fine_tune_guide.zh.md, 微调策略建议).
PRESETS = {
    "conservative": {"epochs": 15, "learning_rate": 1e-4, "fine_tune_ratio": 0.8},
    "deep": {"epochs": 30, "learning_rate": 5e-5, "unfreeze_embedding": True, "unfreeze_lstm1": True,
             "fine_tune_ratio": 0.9},
    "fast": {"epochs": 10, "batch_size": 64, "learning_rate": 5e-4, "patience": 5},
}
STRATEGIES = ("conservative", "deep", "fast", "auto", "search")
DEFAULT_SEARCH_TRIALS = 8
PRETRAINED_ROW = "pretrained (zero-shot)"  # strategies.csv's row of the pretrained model
# The guide's defaults of the searched flags (its 参数说明).
GUIDE_DEFAULTS = {"learning_rate": 1e-4, "epochs": 20, "batch_size": 16, "patience": 8,
                  "unfreeze_embedding": False, "unfreeze_lstm1": False}

# ``search``: the fine-tune flags searched and their ranges (sca2lstm.search_space entries).
SEARCH_SPACE = {
    "learning_rate": {"low": 1e-5, "high": 1e-3, "log": True},
    "epochs": {"low": 5, "high": 30},
    "batch_size": {"choices": [16, 32, 64]},
    "patience": {"low": 3, "high": 10},
    "unfreeze_embedding": {"choices": [False, True]},
    "unfreeze_lstm1": {"choices": [False, True]},
}


def preset_overrides(strategy: str | None, config: dict, flags: dict) -> dict:
    """The ``finetune`` overrides of a single run: config file < preset < explicit flags.

    Parameters
    ----------
    strategy : str or None
        A preset name, or None / ``auto`` / ``search`` (no preset: config and flags only).
    config : dict
        The config file's ``finetune:`` keys.
    flags : dict
        The fine-tune flags given on the command line.
    """
    if strategy is not None and strategy not in STRATEGIES:
        raise UsageError(f"--strategy {strategy!r}: choose from {', '.join(STRATEGIES)}")
    return {**config, **PRESETS.get(strategy or "", {}), **flags}


def auto_candidates(overrides: dict, flags: dict) -> dict:
    """``{name: finetune overrides}`` of ``auto``: the guide's default and the three presets, all on
    one split (the presets' own ``fine_tune_ratio`` dropped; the flag's or config's, if any, for all).

    ``overrides``: the config file's keys and the flags (no preset); ``flags``: the flags alone."""
    out = {"default": dict(overrides)}
    for name, preset in PRESETS.items():
        p = {k: v for k, v in preset.items() if k != "fine_tune_ratio"}
        out[name] = {**overrides, **p, **flags}
    return out


def finetune_with_strategy(strategy: str | None, pretrained_model, basin: str, overrides: dict, flags: dict,
                           trials: int | None = None, out_root=None, **kw) -> dict:
    """Fine-tune ``basin`` with a strategy; returns :func:`~.finetune.finetune`'s dict (``before``,
    ``after``, ``checkpoint``, ``run_dir``, ``seconds``), for ``auto``/``search`` the winner's, with
    ``strategies`` (the table) and ``kept`` added.

    Parameters
    ----------
    overrides : dict
        The single run's ``finetune`` overrides (:func:`preset_overrides`: config < preset < flags).
    flags : dict
        The flags given explicitly: ``auto`` and ``search`` put them over every candidate.
    kw
        Passed to every :func:`~.finetune.finetune` call (data_dir, device, progress, seed, test_start,
        resume).
    """
    from .finetune import DEFAULT_OUT_ROOT, finetune

    out_root = Path(out_root or DEFAULT_OUT_ROOT)
    if strategy not in ("auto", "search"):
        if trials is not None:
            raise UsageError("--trials applies to --strategy search only")
        return finetune(pretrained_model, basin, overrides, out_root=out_root, **kw)
    if kw.get("resume"):
        raise UsageError(f"--resume cannot continue --strategy {strategy}; rerun it without --resume")
    if strategy == "auto" and trials is not None:
        raise UsageError("--trials applies to --strategy search only")
    return _run_candidates(strategy, pretrained_model, basin, overrides, flags, trials, out_root, kw)


#: The winning candidate's files copied beside the kept model, so the strategy's run folder reads like a single
#: fine-tune's (its log, history, scores and figures); report.html is rebuilt from them (:func:`_keep_best`).
WINNER_FILES = ("performance_chart.png", "training_curve.png", "val_metrics.json", "val_metrics_before_after.csv",
                "config.json", "history.csv", "finetune.log")


def _run_candidates(strategy, pretrained_model, basin, config, flags, trials, out_root, kw) -> dict:
    from ..data.ids import check_basin_id
    from .finetune import _new_run_dir, finetune

    basin = check_basin_id(basin)
    run_dir = _new_run_dir(out_root / f"basin_{basin}")
    rows, results = [], {}

    def run(name: str, overrides: dict) -> dict:
        log.info("strategy %s, candidate %s: %s", strategy, name, json.dumps(overrides, sort_keys=True))
        r = finetune(pretrained_model, basin, overrides, out_root=run_dir / "candidates" / name, **kw)
        results[name] = r
        rows.append(_row(name, overrides, r, basin))
        return r

    try:
        if strategy == "auto":
            for name, overrides in auto_candidates(config, flags).items():
                run(name, overrides)
        else:
            _search(run, config, flags, trials or DEFAULT_SEARCH_TRIALS, kw.get("seed"))
        return _keep_best(strategy, basin, run_dir, rows, results)
    except BaseException as e:
        if (run_dir / f"best_model_basin_{basin}.pth").exists():
            raise
        shutil.rmtree(run_dir, ignore_errors=True)  # no half-finished strategy folder
        if isinstance(e, KeyboardInterrupt):
            # the candidate's message named its resumable state, removed with the folder above, and --resume
            # refuses a strategy: the line says what is left and what to do instead
            raise KeyboardInterrupt(f"--strategy {strategy} of basin {basin} stopped before it kept a model; "
                                    f"nothing is saved and it cannot be resumed: rerun the same command without "
                                    f"--resume") from None
        raise


def _search(run, config: dict, flags: dict, trials: int, seed) -> None:
    """SCA over the fine-tune flags not given explicitly; trial 0 is the guide's default."""
    from ..search_space import parse_space
    from .samplers import SCASampler
    from .tune import require_optuna, suggest

    optuna = require_optuna()
    types = {"learning_rate": "float", "epochs": "int", "batch_size": "int", "patience": "int",
             "unfreeze_embedding": "bool", "unfreeze_lstm1": "bool"}
    space = {k: v for k, v in SEARCH_SPACE.items() if k not in flags and k not in config}
    dims = parse_space(space, types, source="--strategy search")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize",
                                sampler=SCASampler(population=min(4, max(2, trials // 2)), n_trials=trials,
                                                   seed=seed or 0))
    if dims:  # trial 0: the guide's default of every searched flag
        study.enqueue_trial({d.key: GUIDE_DEFAULTS[d.key] for d in dims})

    def objective(trial):
        values = {d.key: suggest(trial, d) for d in dims}
        r = run(f"trial_{trial.number}", {**config, **values, **flags})
        return _kept_score(r)

    study.optimize(objective, n_trials=trials if dims else 1)


def _kept_score(r: dict) -> float:
    """The validation score of the model a fine-tune kept (:func:`~.finetune.validation_score`: skill
    against persistence, of the blended forecast where the model blends)."""
    d = r["decision"]
    return float(d["fine_tuned"] if r["kept"] == FINE_TUNED else d["pretrained"])


def _score_days(r: dict) -> str:
    """The validation days ``val_score`` was taken on (those the pretrained model did not train on, where enough
    remain: :func:`~.finetune.comparison_days`)."""
    d = r["decision"]["score_days"]
    return " ".join(d["spans"]) + (" (in-sample for the pretrained model)" if d["in_sample_for_pretrained"] else "")


def _row(name: str, overrides: dict, r: dict, basin: str) -> dict:
    a = r["after"].per_basin[basin]
    hist = pd.read_csv(Path(r["run_dir"]) / "history.csv")
    return {"strategy": name, "val_score": _kept_score(r), "val_score_days": _score_days(r),
            "val_nse": a["model"]["nse"], "val_kge": a["model"]["kge"],
            "val_loss": r["after"].loss, "persistence_val_nse": a["persistence"]["nse"], "fine_tune_kept": r["kept"],
            "seconds": round(r["seconds"], 1), "settings": json.dumps(overrides, sort_keys=True),
            "checkpoint": str(r["checkpoint"]), "epochs_run": int(hist["epoch"].max()),
            "best_epoch": int(hist.loc[hist["val_loss"].idxmin(), "epoch"])}


def _keep_best(strategy, basin, run_dir: Path, rows: list, results: dict) -> dict:
    """Copy the winner into ``run_dir`` and write strategies.csv (candidates best first, pretrained row).

    The winner is the candidate whose kept model scores best on validation; it replaces the pretrained
    model only if :func:`~.finetune.keep_better` says so (else its checkpoint, which then holds the
    pretrained weights, is what is kept)."""
    first = results[rows[0]["strategy"]]
    b = first["before"].per_basin[basin]
    pre_score = float(first["decision"]["pretrained"])  # the same weights and days for every candidate
    table = pd.DataFrame(rows).sort_values("val_score", ascending=False, kind="stable")
    win = table.iloc[0]
    pretrained_kept = keep_better(pre_score, float(win["val_score"])) == PRETRAINED
    pre = {"strategy": PRETRAINED_ROW, "val_score": pre_score, "val_score_days": _score_days(first),
           "val_nse": b["model"]["nse"],
           "val_kge": b["model"]["kge"], "val_loss": first["before"].loss, "persistence_val_nse": b["persistence"]["nse"],
           "fine_tune_kept": PRETRAINED, "seconds": 0.0, "settings": "", "checkpoint": "", "epochs_run": 0,
           "best_epoch": 0}
    table = pd.concat([table, pd.DataFrame([pre])], ignore_index=True)
    kept = PRETRAINED_ROW if pretrained_kept else win["strategy"]
    table.insert(1, "kept", table["strategy"] == kept)
    if pretrained_kept:  # a candidate that kept the pretrained weights carries them with their blend
        same = table[(table["fine_tune_kept"] == PRETRAINED) & (table["strategy"] != PRETRAINED_ROW)]
        source = same.iloc[0]["strategy"] if len(same) else win["strategy"]
    else:
        source = win["strategy"]
    winner = results[source]
    src = Path(winner["checkpoint"])
    dst = run_dir / src.name
    with open(src, "rb") as fh:
        data = fh.read()
    atomic_write(dst, lambda out: out.write(data), binary=True)
    calib = read_calibration(src)  # the winner's forecast calibration goes with it (tied to the same bytes)
    if calib:
        write_calibration(dst, calib)
    for extra in WINNER_FILES:
        p = Path(winner["run_dir"]) / extra
        if p.is_file():
            shutil.copy2(p, run_dir / extra)
    atomic_write_text(run_dir / "strategies.csv", table.to_csv(index=False, float_format="%.4f"))
    # The winner's report.html is rebuilt here rather than copied: its figures' paths (data-src) are relative
    # to the folder it is in, so a page built from the files copied above names only files that are here.
    from ..evaluation.report import build_report
    build_report(run_dir, title=f"SCA2LSTM fine-tuning, basin {basin}")
    if pretrained_kept:
        log.log(RESULT, "basin %s, --strategy %s: no candidate beat the pretrained model on validation (score %.4f); "
                 "kept the pretrained weights in %s", basin, strategy, pre_score, dst)
    else:
        log.log(RESULT, "basin %s, --strategy %s: kept %s (validation score %.4f, NSE %.3f; pretrained %.4f) in %s", basin,
                 strategy, win["strategy"], win["val_score"], win["val_nse"], pre_score, dst)
    return {**winner, "checkpoint": dst, "run_dir": run_dir, "strategies": table, "strategy_kept": kept}
