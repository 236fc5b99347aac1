"""Per-basin fine-tuning of a pretrained model (the CLI ``fine_train.py`` is a thin layer over it).

- Split: the basin's train + validation periods, in time order; the first ``fine_tune_ratio`` of the
  days trains, the rest validates (early stopping). For a basin that was in pretraining, validation
  never starts before ``data.val_start`` (earlier days were pretraining targets). The test period is
  never loaded into either.
- The basin's data, periods, discharge scale and static attributes come from its
  :class:`~sca2lstm.evaluation.context.BasinContext`, as in prediction and forecasts. Inputs use the
  pretrained scalers, so frozen layers see what they learned on; a basin that was not in pretraining
  gets its discharge scale by the context's one rule (its training part), so epoch 0 is the zero-shot
  model itself.
- Freezing: the groups of ``SCA2LSTM.FREEZABLE_GROUPS`` not released by an unfreeze flag are frozen.
- The pretrained model is kept, per basin, unless the fine-tuned one forecasts the validation part
  better (:func:`keep_better` on :func:`validation_score`); the log, ``val_metrics.json`` and
  ``config.json`` say which, and ``best_model_basin_{id}.pth`` holds the kept weights. The two are
  compared only on validation days the pretrained model did not train on (:func:`comparison_days`; a
  ``--test_start`` or ratio can move the validation part into them); ``kept.score_days`` records which.
  The kept model's persistence blend weight is fitted on those same days, and its forecast calibration on
  the validation days outside every training span of the basin
  (:meth:`~sca2lstm.evaluation.context.BasinContext.blend_days`).
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as _dt
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..checkpoint import build_checkpoint, clean_state_dict, load_model
from ..config import Config
from ..data.dataset import check_period_inputs
from ..data.ids import check_basin_id
from ..data.periods import BasinPeriods, fit_split
from ..errors import DataError
from ..evaluation.context import BasinContext, basin_places, rain_digest
from ..evaluation.evaluate import evaluate
from ..evaluation.calibration import calibrate_after_training
from ..evaluation.metrics import true_runs
from ..evaluation.persistence import fit_forecasts
from ..evaluation.plots import plot_before_after
from ..fileio import atomic_write_text, file_sha256, json_text
from ..logs import RESULT, add_log_file, hold_records, release, remove_handler
from .outputs import metrics_frame, save_calibrated, write_training_artifacts
from .pretrain import train_settings, weather_archives
from .runtime import seed_everything
from .trainer import Trainer, resumable_interrupt, state_data

log = logging.getLogger(__name__)

DEFAULT_OUT_ROOT = Path("./model_output/fine_tune")


@dataclass
class FinetuneSplit:
    i0: int       # first day of the train part
    i_split: int  # first day of the validation part
    i1: int       # one past the last validation day
    n_train_valid: int
    rule: str = ""  # how i_split was chosen, for the log and config.json


def chronological_split(rec, cfg: Config, periods: BasinPeriods | None = None,
                        in_pretraining: bool = False) -> FinetuneSplit:
    """First ``fine_tune_ratio`` of the fine-tuning days trains, the rest validates. Never random.

    The fine-tuning days are the configured train..validation periods, or ``periods`` (a station's own
    record without its test part, :mod:`sca2lstm.data.periods`).

    For a basin the model was pretrained on (``in_pretraining``) under the configured periods, the days
    before ``data.val_start`` were pretraining targets: a validation part starting earlier would score
    the pretrained model partly in-sample. Its validation part therefore starts at the later of the
    ratio split and ``data.val_start``. A basin new to the model keeps the ratio split.
    """
    d = cfg.data
    if periods is None:
        periods = BasinPeriods("configured", np.datetime64(d.train_start, "D"), np.datetime64(d.val_end, "D"),
                               np.datetime64(d.test_start, "D"), np.datetime64(d.test_end, "D"))
    ratio = cfg.finetune.fine_tune_ratio
    i0, i_split, i1 = fit_split(rec, periods, ratio)
    rule = f"fine_tune_ratio {ratio:g} of {periods.fit_start}..{periods.fit_end}"
    if in_pretraining and periods.rule == "configured":
        i_val = min(max(rec.index_of(d.val_start), i0 + 1), i1 - 1)
        if i_val > i_split:
            i_split = i_val
            rule = (f"data.val_start {d.val_start}: the basin was in pretraining, whose training targets end "
                    f"there, so validation starts no earlier (the ratio {ratio:g} split was earlier)")
        else:
            rule += f" (not before data.val_start {d.val_start}: the basin was in pretraining)"
    n_valid = int(np.isfinite(rec.y[i0:i_split]).sum())
    return FinetuneSplit(i0, i_split, i1, n_valid, rule)


def apply_freezing(model, cfg: Config) -> dict:
    """Freeze every group except LSTM2, the head and those released by the unfreeze flags.

    Returns ``{group: trainable}`` for the log.
    """
    f = cfg.finetune
    trainable = {"embedding": f.unfreeze_embedding, "lstm1": f.unfreeze_lstm1,
                 "weight_head": f.unfreeze_weight_head, "lstm2": True, "predict_head": True}
    for group in model.FREEZABLE_GROUPS:
        for p in model.group_parameters(group):
            p.requires_grad_(trainable[group])
    return trainable


def finetune(pretrained_model, basin: str, finetune_overrides: dict | None = None, data_dir=None,
             device="cpu", out_root=DEFAULT_OUT_ROOT, progress: bool = True, resume: bool = False,
             seed: int | None = None, test_start=None, allow_missing_inputs: bool = False) -> dict:
    """Fine-tune ``pretrained_model`` to ``basin``; write ``best_model_basin_{id}.pth`` and the run files.

    The days read follow :mod:`sca2lstm.data.periods`: the configured periods for a basin that covers
    them, else the station's own record without its test part (``test_start``: where that begins).

    Returns
    -------
    dict with ``checkpoint``, ``run_dir``, ``before`` and ``after`` (validation EvalResults), ``seconds``.
    """
    basin = check_basin_id(basin)  # it names folders and files
    # what is said before the run folder exists (the split, a ratio overridden by data.val_start, missing inputs,
    # too few records) is written at the top of finetune.log, as pretraining's train.log holds its own
    held = hold_records()
    try:
        model, pcfg, scalers, src = load_model(pretrained_model, device)
        updates = {"finetune": dict(finetune_overrides or {})}
        if seed is not None:
            updates["training"] = {"seed": seed}
        if "persistence_blend" not in ((src.get("config") or {}).get("model") or {}):
            # A source written before the blend existed forecasts raw; the new checkpoint gets the default.
            updates["model"] = {"persistence_blend": True}
            log.info("the source checkpoint predates model.persistence_blend; the fine-tuned model uses it")
        cfg = pcfg.replace(**updates)
        base = Path(out_root) / f"basin_{basin}"
        if resume and not data_dir:
            # the run continued read a station folder of its own (--data_dir ./my_stations), not the pretrained
            # model's: the guide's line with --resume added reads it again
            interrupted = _resume_dir(base)
            recorded = state_data(interrupted / "last_state.pth") if interrupted else None
            data_dir = recorded[0] if recorded and Path(recorded[0]).is_dir() else None
        ctx = BasinContext.resolve((model, cfg, scalers, src), data_dir, basin, cfg=cfg, test_start=test_start,
                                   allow_missing_inputs=allow_missing_inputs, device=device)
        rec, periods, in_set = ctx.record, ctx.periods, ctx.in_checkpoint
        if periods.rule == "station":
            log.info("basin %s: station periods (its own record%s): fine-tuning reads %s..%s; its test part "
                     "%s..%s is never read here", basin, ", --test_start" if test_start else "",
                     periods.fit_start, periods.fit_end, periods.test_start, periods.test_end)
        seen = ctx.in_sample(periods.test_start, periods.test_end)
        if seen["in_sample"]:
            log.warning("basin %s: its test part %s..%s holds %d days the pretrained model was trained on (and %d it "
                        "was validated on); scores on it will be labelled in-sample, not a test", basin,
                        periods.test_start, periods.test_end, seen["train_days"], seen["validation_days"])
        split = chronological_split(rec, cfg, periods, in_pretraining=in_set)
        log.info("basin %s: validation from %s, by %s", basin, rec.dates[split.i_split], split.rule)
        if split.n_train_valid == 0:
            raise DataError(f"basin {basin}: no valid discharge records in the fine-tuning training part "
                            f"{rec.dates[split.i0]}..{rec.dates[split.i_split - 1]}")
        check_period_inputs(rec, cfg, rec.dates[split.i0], rec.dates[split.i_split - 1], "fine-tuning training")
        n_val_valid = int(np.isfinite(rec.y[split.i_split:split.i1]).sum())
        if split.n_train_valid < cfg.finetune.min_records:
            # The guide's "at least 5000 valid records" is checked on the days fine-tuning trains on: a record long
            # enough in all, most of it validation, still trains on few. The line says which days it counted.
            log.warning("basin %s: only %d valid training records (observed days of the training part %s..%s; the "
                        "validation part's %d are not counted); at least %d are recommended (finetune.min_records)",
                        basin, split.n_train_valid, rec.dates[split.i0], rec.dates[split.i_split - 1], n_val_valid,
                        cfg.finetune.min_records)
        if n_val_valid == 0:
            raise DataError(f"basin {basin}: no observed discharge in the validation part "
                            f"{rec.dates[split.i_split]}..{rec.dates[split.i1 - 1]}; lower --fine_tune_ratio")

        run_dir = _resume_dir(base) if resume else None
        if resume and run_dir is None:
            raise DataError(f"--resume: no interrupted fine-tune of basin {basin} under {base}")
        run_dir = run_dir or _new_run_dir(base)
    finally:
        release(held)
    handler = add_log_file(run_dir / "finetune.log", held)
    try:
        return _run(ctx, pretrained_model, split, run_dir, progress, resume)
    except BaseException as e:
        if isinstance(e, KeyboardInterrupt) and (run_dir / "last_state.pth").is_file():
            # kept for --resume; stopped after the last epoch (calibration: minutes), the state there finishes it
            raise resumable_interrupt(e, run_dir / "last_state.pth") from None
        # a failed run, or one stopped before it saved anything to resume (a folder holding only its log)
        if not resume and not (run_dir / f"best_model_basin_{basin}.pth").exists():
            remove_handler(handler)
            handler = None
            shutil.rmtree(run_dir, ignore_errors=True)  # no partial outputs from a failed run
            try:
                base.rmdir()  # only if this run was its first
            except OSError:
                pass
        raise
    finally:
        if handler is not None:
            remove_handler(handler)


def _new_run_dir(base: Path) -> Path:
    """A fresh ``base/<timestamp>`` folder; a second run in the same second gets ``_2``, ``_3``, ..."""
    stamp = _dt.datetime.now().strftime("%Y%m%d_%H%M%S")
    base.mkdir(parents=True, exist_ok=True)
    for i in range(1, 1000):
        cand = base / (stamp if i == 1 else f"{stamp}_{i}")
        try:
            cand.mkdir()
            return cand
        except FileExistsError:
            continue
    raise DataError(f"cannot create a new run folder under {base}: too many runs in one second")


def interrupted_run(out_root, basin: str) -> Path | None:
    """The run folder ``--resume`` continues for ``basin`` under ``out_root`` (its latest interrupted fine-tune),
    or None."""
    return _resume_dir(Path(out_root) / f"basin_{basin}")


def _resume_dir(base: Path):
    if not base.is_dir():
        return None
    cands = sorted(p for p in base.iterdir() if (p / "last_state.pth").is_file()
                   and not any(p.glob("best_model_basin_*.pth")))
    return cands[-1] if cands else None


def _run(ctx: BasinContext, pretrained_model, split, run_dir, progress, resume) -> dict:
    model, cfg, scalers, data, rec, device = ctx.model, ctx.cfg, ctx.scalers, ctx.sequence_data(), ctx.record, ctx.device
    basin, in_set, periods = ctx.basin, ctx.in_checkpoint, ctx.periods
    pretrained_state = copy.deepcopy(clean_state_dict(model.state_dict()))
    seed_everything(cfg.training.seed)
    groups = apply_freezing(model, cfg)
    for g, on in groups.items():
        n = sum(p.numel() for p in model.group_parameters(g))
        log.info("  %-13s %-9s %6d parameters", g, "trainable" if on else "frozen", n)
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    # the days without an observed flow are left out of the loss: said with the days they are out of, as a patchy
    # station's user needs to know how much of the record the fine-tune learns from
    n_train_days, n_val_days = split.i_split - split.i0, split.i1 - split.i_split
    n_val_obs = int(np.isfinite(rec.y[split.i_split:split.i1]).sum())
    log.info("Fine-tuning basin %s of %s (%s pretraining): %d trainable parameters; train %s..%s (%d of %d days "
             "with observed discharge), validate %s..%s (%d of %d); the days without it are left out of the loss "
             "and the scores",
             basin, ctx.data_dir, "in" if in_set else "new to", n_train, rec.dates[split.i0],
             rec.dates[split.i_split - 1], split.n_train_valid, n_train_days, rec.dates[split.i_split],
             rec.dates[split.i1 - 1], n_val_obs, n_val_days)
    settings = train_settings(cfg, finetune=True)
    tr_p, va_p = [(split.i0, split.i_split)], [(split.i_split, split.i1)]
    split_days = {"train": [str(rec.dates[split.i0]), str(rec.dates[split.i_split - 1])],
                  "validation": [str(rec.dates[split.i_split]), str(rec.dates[split.i1 - 1])]}
    # The days trained and validated on are part of what a resumed run must share (a --test_start moved
    # between the runs would let days validated on become test days).
    meta = {"config": cfg.to_dict(), "scalers": scalers.to_dict(), "basins": [basin],
            "data_sha256": {basin: rec.source_hash}, "source_sha256": file_sha256(pretrained_model),
            "split": split_days, "data_dir": str(Path(ctx.data_dir).expanduser().absolute()),
            "builtin_data": ctx.builtin}
    archives = weather_archives(cfg, ctx.data_dir, data, tr_p)
    trainer = Trainer(model, data, tr_p, data, va_p, settings, device, run_dir / "last_state.pth", meta,
                      progress=progress, weather_archive=archives)
    # The pretrained weights' scores, taken before a resumed state replaces them.
    before = evaluate(model, data, va_p, cfg.training.seq_len, cfg.training.spinup, cfg.data.lead_days, device)
    if resume:
        trainer.load_state(run_dir / "last_state.pth")
    # a resumed fine-tune's time includes the interrupted run's epochs (none trained here after its last one)
    result, seconds, _ = trainer.timed_fit()
    after = evaluate(model, data, va_p, cfg.training.seq_len, cfg.training.spinup, cfg.data.lead_days, device)
    # Keep the fine-tuned weights only if they forecast the validation part better than the pretrained ones,
    # on days the pretrained weights did not learn from (there they would win by memory, not by skill).
    days, score_days = comparison_days(ctx, split)
    score_before, score_after = (validation_score(cfg, data, ev, basin, days) for ev in (before, after))
    kept = keep_better(score_before, score_after)
    decision = {"kept": kept, "score": _SCORE_NAME[bool(cfg.model.persistence_blend)],
                "pretrained": score_before, "fine_tuned": score_after, "score_days": score_days}
    if kept == PRETRAINED:
        model.load_state_dict(pretrained_state)
    log.info("basin %s: kept the %s model (validation %s on %s: pretrained %.4f, fine-tuned %.4f)", basin, kept,
             decision["score"], _days_text(score_days), score_before, score_after)
    # the blend weight is fitted on the days the models were compared on, for the same reason
    blend = _fit_blend(cfg, data, before if kept == PRETRAINED else after, basin, kept, days)

    # Outputs ---------------------------------------------------------------------------------------
    comparison = pd.concat([metrics_frame(before.per_basin).assign(stage="before (pretrained)"),
                            metrics_frame(after.per_basin).assign(stage="after (fine-tuned)")])
    config_record = {**cfg.to_dict(), "source_checkpoint": str(Path(pretrained_model).resolve()),
                     "data_dir": str(ctx.data_dir), "data_sha256": rec.source_hash, "basin": basin,
                     "basin_in_pretraining": in_set, "split": {**split_days, "rule": split.rule},
                     "periods": periods.to_dict(), "persistence_blend": blend, "kept": decision,
                     "missing_inputs": list(ctx.missing_inputs),
                     "groups_trainable": groups, "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad)}
    write_training_artifacts(run_dir, result["history"], config_record, comparison, "val_metrics_before_after.csv",
                             f"Fine-tuning basin {basin}")
    dates = rec.dates[split.i_split:split.i1]
    inv = scalers.inverse_y
    o = data.offsets[0]
    obs = inv(data.y[o + split.i_split:o + split.i1].astype(np.float64), basin)
    flow = lambda pred: np.maximum(inv(pred.astype(np.float64), basin), 0.0)  # noqa: E731  (as predict.py issues it)
    vm = {"before": before.per_basin[basin], "after": after.per_basin[basin], "persistence_blend": blend,
          "kept": decision, "missing_inputs": list(ctx.missing_inputs)}
    # The legends name the NSE the log, val_metrics.json and the csv report (on the days scored beside
    # persistence, before the 0 m3/s floor): a score of the floored series drawn differed in the third digit.
    plot_before_after(dates, obs, flow(before.forecasts[0].pred), flow(after.forecasts[0].pred),
                      run_dir / "performance_chart.png",
                      # persistence's score on the same days: a fine-tuned NSE of 0.56 reads as a success beside
                      # 0.52 before, not beside persistence's 0.79
                      title=f"Basin {basin}: validation before and after fine-tuning (kept: {kept}); persistence "
                            f"NSE {vm['after']['persistence']['nse']:.3f}",
                      nse_scores=(vm["before"]["model"]["nse"], vm["after"]["model"]["nse"]))
    atomic_write_text(run_dir / "val_metrics.json", json_text(vm, default=float))  # NaN: null
    # The validation part chose the kept model and its blend weight; the training part trained it only
    # when the fine-tuned weights are kept.
    spans = ctx.trained_on + [{"role": role, "basins": [basin], "start": a, "end": b}
                              for role, (a, b) in split_days.items() if role == "validation" or kept == FINE_TUNED]
    ckpt = build_checkpoint(model, cfg, scalers, [basin], trainer.best_epoch if kept == FINE_TUNED else 0,
                            trainer.optimizer, vm, history=result["history"], source_checkpoint=str(pretrained_model),
                            finetuned_basin=basin, data_sha256=rec.source_hash, train_seconds=seconds,
                            data_dir=str(ctx.data_dir), builtin_data=ctx.builtin, periods=periods.to_dict(),
                            persistence_blend={basin: blend["alpha"]} if blend else {}, trained_on=spans, kept=kept,
                            finetune_flows=rec.flows_digest(split_days["train"][0], split_days["validation"][1]),
                            finetune_rain=rain_digest(ctx.frame, split_days["train"][0], split_days["validation"][1]),
                            basin_places={**(ctx.ckpt.get("basin_places") or {}), **basin_places(ctx.data_dir, [basin])},
                            weather_archives=_learned_archives(
                                ctx, archives.trained_sources(tr_p) if archives and kept == FINE_TUNED else None))
    b, a = vm["before"], vm["after"]
    log.log(RESULT, "Basin %s validation NSE %.3f -> %.3f, KGE %.3f -> %.3f (persistence NSE %.3f) in %.1f s; kept the "
             "%s model", basin, b["model"]["nse"], a["model"]["nse"], b["model"]["kge"], a["model"]["kge"],
             a["persistence"]["nse"], seconds, kept)
    # the model appears under its name only with its calibration (a stopped run leaves no half-made model)
    final = run_dir / f"best_model_basin_{basin}.pth"
    path = save_calibrated(ckpt, final, lambda staged: calibrate_after_training(
        staged, ctx.data_dir, [basin], source_model=pretrained_model, shown_as=final))
    log.log(RESULT, "saved %s", path)
    from ..evaluation.report import build_report
    build_report(run_dir, title=f"SCA2LSTM fine-tuning, basin {basin}")
    return {"checkpoint": path, "run_dir": run_dir, "before": before, "after": after, "seconds": seconds,
            "model": model, "config": cfg, "persistence_blend": blend, "kept": kept, "decision": decision}


def _learned_archives(ctx: BasinContext, trained: dict | None) -> dict:
    """The archives of weather forecasts the kept weights learned (``weather_archives`` of the checkpoint): the
    pretrained model's, and this basin's where the fine-tuned weights, which trained on it, are kept (``trained``:
    :meth:`~sca2lstm.weather.archive.ArchiveLookup.trained_sources` of the fine-tuning; None: the pretrained
    weights are kept)."""
    learned = dict(ctx.ckpt.get("weather_archives") or {})   # a station that shares an id only: forgotten there
    if trained is not None and ctx.basin in trained:
        learned[ctx.basin] = trained[ctx.basin]
    return learned


PRETRAINED, FINE_TUNED = "pretrained", "fine-tuned"
_SCORE_NAME = {True: "skill vs persistence of the blended forecast", False: "skill vs persistence"}


def keep_better(pretrained_score: float, finetuned_score: float) -> str:
    """Which model a basin keeps: ``"fine-tuned"`` only when its validation score is strictly higher
    (higher is better; NaN never wins), else ``"pretrained"``: fine-tuning must earn its place."""
    if np.isfinite(finetuned_score) and (not np.isfinite(pretrained_score) or finetuned_score > pretrained_score):
        return FINE_TUNED
    return PRETRAINED


def validation_score(cfg, data, ev, basin: str, days=None) -> float:
    """The score :func:`keep_better` compares: ``1 - MSE / MSE_persistence`` on the validation part of
    the forecast prediction makes (blended with persistence, its weight fitted on those days, when
    ``model.persistence_blend``; else the raw model). Higher is better; scale-free, so it compares
    models on the same days and basin.

    ``days``: [days of the basin's forecast] bool, the days scored (:func:`comparison_days`); default all."""
    fit = fit_forecasts(data, _on_days(ev, basin, days), cfg.data.lead_days)[basin]
    return float(fit.skill_blend if cfg.model.persistence_blend else fit.skill_model)


def _on_days(ev, basin: str, days=None) -> list:
    """``ev``'s forecasts, the basin's kept only on ``days`` ([days of its forecast] bool; None: all)."""
    return [f if f.basin != basin or days is None else
            dataclasses.replace(f, pred=np.where(np.asarray(days, bool), f.pred, np.nan)) for f in ev.forecasts]


#: Fewest observed validation days outside the pretrained model's training days that the keep-or-discard
#: comparison is scored on alone: a year (its seasons average out), or half the validation part's observed days
#: where that part is shorter than two years. Fewer, and the comparison takes every validation day.
MIN_COMPARE_DAYS = 365


def comparison_days(ctx: BasinContext, split: FinetuneSplit) -> tuple[np.ndarray, dict]:
    """The validation days the keep-or-discard comparison scores: those the pretrained model did not train on.

    A basin the pretrained model trained on, whose validation part a ``--test_start`` or ``fine_tune_ratio``
    moved into its training spans (``ctx.trained_on``, role ``train``), would score the pretrained weights
    in-sample there, biased toward keeping them. Those days are left out while at least
    :data:`MIN_COMPARE_DAYS` observed days (half the validation part's, if that is under two years) remain;
    else every validation day is compared, with a warning that the comparison is in-sample for the
    pretrained model.

    Returns
    -------
    (ndarray, dict)
        ``[split.i1 - split.i_split]`` bool, the days scored; and what was compared, for the run's outputs:
        ``spans`` (``"start..end"`` runs of scored days), ``observed_days`` (scored days with an observed
        flow), ``left_out`` (runs of pretrained training days left out) and ``in_sample_for_pretrained``.
    """
    rec, basin = ctx.record, ctx.basin
    dates = rec.dates[split.i_split:split.i1]
    observed = np.isfinite(rec.y[split.i_split:split.i1])
    trained = ctx.trained_days(split.i_split, split.i1)
    unseen = int((observed & ~trained).sum())
    need = min(MIN_COMPARE_DAYS, int(observed.sum()) // 2)
    overlap = bool((trained & observed).any())
    days = ~trained if overlap and unseen >= need else np.ones(len(dates), bool)
    record = {"spans": _runs(dates, days), "observed_days": int((days & observed).sum()),
              "left_out": _runs(dates, ~days), "in_sample_for_pretrained": bool((days & trained & observed).any())}
    if overlap and unseen < need:
        log.warning("basin %s: the validation part %s..%s holds %d observed days the pretrained model trained on "
                    "(%s) and only %d others (fewer than %d): the keep-or-discard comparison uses every validation "
                    "day, in-sample for the pretrained model, which it favours", basin, dates[0], dates[-1],
                    int((trained & observed).sum()), ", ".join(_runs(dates, trained)), unseen, need)
    elif overlap:
        log.info("basin %s: the keep-or-discard comparison scores %s (%d observed days), leaving out %s: days the "
                 "pretrained model trained on", basin, ", ".join(record["spans"]), record["observed_days"],
                 ", ".join(record["left_out"]))
    return days, record


def _runs(dates, mask) -> list:
    """``"start..end"`` of each run of consecutive days where ``mask`` holds."""
    return [f"{dates[a]}..{dates[b - 1]}" for a, b in true_runs(mask)]


def _days_text(score_days: dict) -> str:
    """The compared days for the log: their spans and number, and whether they are in-sample."""
    # observed days, not scored ones: a day scores only where the day before it is observed too (persistence)
    text = f"{', '.join(score_days['spans'])} ({score_days['observed_days']} observed days"
    return text + (", in-sample for the pretrained model)" if score_days["in_sample_for_pretrained"] else ")")


def _fit_blend(cfg, data, kept_eval, basin, kept: str, days=None) -> dict | None:
    """The basin's blend weight with persistence, fitted on the fine-tune's validation part.

    Parameters
    ----------
    kept_eval : EvalResult
        The validation forecasts of the model the run keeps.
    kept : str
        Which model that is, ``"pretrained"`` or ``"fine-tuned"`` (:func:`keep_better`): the lines name it,
        since the blend is fitted for the kept weights, which are the pretrained ones where fine-tuning did
        not earn its place.
    days : ndarray of bool, optional
        The validation days fitted on (:func:`comparison_days`, those the kept model was chosen on): days
        the pretrained weights trained on would make the model look better than it forecasts, and weigh it
        too heavily against persistence. Default: every validation day.

    Says in one line when that model alone is worse than persistence there, and how the blend resolves it
    (or that it is off). Returns ``BlendFit.as_dict()`` or None when the blend is off.
    """
    fit = fit_forecasts(data, _on_days(kept_eval, basin, days), cfg.data.lead_days)[basin]
    if not cfg.model.persistence_blend:
        if fit.skill_model < 0:
            log.warning("basin %s: the %s model is worse than persistence on its validation part "
                        "(skill %.3f); model.persistence_blend is off in the source checkpoint's config, so "
                        "nothing resolves it", basin, kept, fit.skill_model)
        return None
    if fit.skill_model < 0:
        log.warning("basin %s: the %s model alone is worse than persistence on its validation part "
                    "(skill %.3f); the persistence blend (alpha=%.3f) resolves it (skill %.3f)", basin, kept,
                    fit.skill_model, fit.alpha, fit.skill_blend)
    else:
        log.info("basin %s: persistence blend alpha=%.3f for the %s model (validation skill vs persistence "
                 "%.3f raw, %.3f blended)", basin, fit.alpha, kept, fit.skill_model, fit.skill_blend)
    return fit.as_dict()
