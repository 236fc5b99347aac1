"""Multi-basin pretraining as an importable function (the CLI ``sca2lstm.py`` is a thin layer over it)."""

from __future__ import annotations

import logging
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..checkpoint import build_checkpoint
from ..config import Config
from ..data import reader
from ..data.dataset import (SequenceData, check_period_inputs, empty_inputs, load_basins,
                            load_static, recorded_data, resolve_data_dir, spec_kinds)
from ..data.scaling import Scalers
from ..errors import DataError, TrainingError, UsageError
from ..evaluation.context import basin_places
from ..evaluation.evaluate import evaluate
from ..evaluation.calibration import calibrate_after_training
from ..evaluation.persistence import fit_forecasts, summary_line
from ..fileio import atomic_write_text
from ..logs import RESULT
from ..models.sca2lstm import SCA2LSTM
from .outputs import metrics_frame, save_calibrated, write_training_artifacts
from .runtime import seed_everything
from ..weather.archive import load_archives
from ..weather.windows import LeadWeather
from .trainer import Trainer, TrainSettings, resumable_interrupt, state_data

log = logging.getLogger(__name__)

#: The subfolder of a run folder where a run started beside an earlier run's files keeps its state and log
#: until it completes (:func:`work_dir`): a failed or stopped run leaves the earlier run's as they were.
UNFINISHED = "unfinished"


@dataclass
class PreparedData:
    """Everything the trainer needs, fitted on the training period only.

    ``basins`` are the basins used (training, and validation where ``val_periods`` is not empty);
    ``skipped`` lists ``{"basin", "period", "reason"}`` for each basin left out of a period.
    """

    data: SequenceData
    scalers: Scalers
    basins: list
    train_periods: list
    val_periods: list
    data_dir: Path
    skipped: list = field(default_factory=list)


def _skip(skipped: list, basin: str, period: str, reason: str) -> None:
    skipped.append({"basin": basin, "period": period, "reason": reason})
    log.warning("basin %s left out of %s: %s", basin, period, reason)


def prepare_pretraining_data(cfg: Config, data_dir, basins=None, parallel: bool = False,
                             progress: bool = False) -> PreparedData:
    """Load basins, fit scalers on the training period, and build the scaled sequences.

    One bad basin never stops the others: a basin whose file cannot be used, or with fewer than
    ``data.min_train_flows`` observed discharge days in the training period, is left out of the run;
    a basin without observed discharge in the validation period is left out of validation. Each says
    so in one line. No usable basin at all, or a configured input without a value in any used basin,
    is a DataError. ``progress``: a bar over the basins read on a terminal (:func:`load_basins`).
    """
    d = cfg.data
    listed = [str(b) for b in (basins or d.basins or reader.list_basins(data_dir))]
    # A basin listed twice (two lists joined) would be trained on twice as often and counted twice in the
    # validation median: each basin is used once.
    basins = list(dict.fromkeys(listed))
    repeated = sorted({b for b in listed if listed.count(b) > 1})
    if repeated:
        log.warning("basin(s) %s listed more than once; each is used once", ", ".join(repeated))
    if not basins:
        raise DataError("no basins to train on")
    t0 = time.time()
    loaded = load_basins(data_dir, basins, cfg, parallel=parallel, skip_bad=True, progress=progress)
    read = [r for r in loaded if not isinstance(r, DataError)]
    if read and all(r.period(d.train_start, d.train_end)[1] <= r.period(d.train_start, d.train_end)[0] for r in read):
        # the config's period, not each basin, is wrong: one line, not one per basin (598 on the large sample)
        first, last = min(r.dates[0] for r in read), max(r.dates[-1] for r in read)
        raise DataError(f"the training period {d.train_start}..{d.train_end} is outside the data of every basin "
                        f"(their records span {first}..{last}); choose data.train_start/train_end inside them")
    names, kinds = spec_kinds(cfg)
    skipped: list = []
    records, basin_scalers, x_trains, train_periods, val_periods = [], {}, [], [], []
    for b, r in zip(basins, loaded):
        if isinstance(r, DataError):
            _skip(skipped, b, "the run", str(r))
            continue
        i0, i1 = r.period(d.train_start, d.train_end)
        n_train = int(np.isfinite(r.y[i0:i1]).sum())
        if i1 <= i0:
            _skip(skipped, b, "the run", f"the training period {d.train_start}..{d.train_end} is outside its "
                                         f"data ({r.dates[0]}..{r.dates[-1]})")
            continue
        if n_train < d.min_train_flows:
            what = "no observed discharge" if n_train == 0 else f"only {n_train} days of observed discharge"
            _skip(skipped, b, "the run", f"{what} in the training period {d.train_start}..{d.train_end} "
                                         f"(data.min_train_flows: {d.min_train_flows})")
            continue
        try:
            basin_scalers[r.basin] = Scalers.fit_basin(r.basin, r.x[i0:i1], r.y[i0:i1], kinds)
        except DataError as e:  # e.g. a constant discharge record
            _skip(skipped, b, "the run", str(e))
            continue
        v0, v1 = r.period(d.val_start, d.val_end)
        if int(np.isfinite(r.y[v0:v1]).sum()) == 0:
            _skip(skipped, b, "validation", f"no observed discharge in the validation period "
                                            f"{d.val_start}..{d.val_end}")
            v0 = v1 = i1
        check_period_inputs(r, cfg, d.train_start, d.train_end, "training")
        records.append(r)
        x_trains.append(r.x[i0:i1])
        train_periods.append((i0, i1))
        val_periods.append((v0, v1))
    if not records:
        shown = "; ".join(f"{s['basin']}: {s['reason']}" for s in skipped[:3])
        raise DataError(f"no basin is usable for pretraining ({len(skipped)} left out; {shown}"
                        f"{' ...' if len(skipped) > 3 else ''})")
    n_in = len(d.dynamic_inputs)  # the first columns of x (features.feature_spec)
    has_value = np.zeros(n_in, dtype=bool)
    for x in x_trains:
        has_value |= np.isfinite(x[:, :n_in]).any(axis=0)
    empty = [c for c, ok in zip(d.dynamic_inputs, has_value) if not ok]
    if empty:
        raise DataError(f"input column(s) {empty} have no values in the training period {d.train_start}.."
                        f"{d.train_end} in any of the {len(records)} basins; fill them or remove them from "
                        f"data.dynamic_inputs")
    used = [r.basin for r in records]
    static_raw = load_static(data_dir, used, cfg)
    scalers = Scalers.fit(names, kinds, x_trains, d.static_attributes, static_raw, basin_scalers)
    data = SequenceData(records, static_raw, scalers, pad=cfg.training.seq_len)
    n_days = sum(len(r.dates) for r in records)
    n_val = sum(1 for v0, v1 in val_periods if v1 > v0)
    log.info("Prepared %d basins (%d days, %d features) in %.1f s", len(records), n_days, len(names),
             time.time() - t0)
    if n_val == 0:
        raise DataError(f"no basin has observed discharge in the validation period {d.val_start}..{d.val_end}; "
                        f"choose data.val_start/val_end inside the records")
    prep = PreparedData(data, scalers, used, train_periods, val_periods, Path(data_dir), skipped)
    log.info("%s", basin_counts(prep))
    return prep


def basin_counts(prep: PreparedData) -> str:
    """``Basins: training N used, M left out; validation ...`` for the log."""
    n_all = len(prep.basins) + sum(1 for s in prep.skipped if s["period"] != "validation")
    n_val = sum(1 for v0, v1 in prep.val_periods if v1 > v0)
    return (f"Basins: training {len(prep.basins)} used, {n_all - len(prep.basins)} left out; "
            f"validation {n_val} used, {n_all - n_val} left out")


def weather_archives(cfg: Config, data_dir, data, periods=None):
    """The basins' archives of past weather forecasts (DIR/weather_archive/<id>.csv) for the issue-time
    windows, or None (sca2lstm/weather/archive.py); ``periods``: the training days per record, which the log
    line of each archive says it feeds or not."""
    if cfg.training.forecast_leads <= 0 or data_dir is None:
        return None
    sc = data.scalers
    return load_archives(data_dir, data.records, cfg, LeadWeather(sc.feature_names, sc.x_mean, sc.x_std).inputs,
                         periods)


def train_settings(cfg: Config, finetune: bool = False) -> TrainSettings:
    """The trainer's settings: ``cfg.training``, or for fine-tuning ``cfg.finetune_training()``."""
    t = cfg.finetune_training() if finetune else cfg.training
    return TrainSettings(
        epochs=t.epochs, batch_size=t.batch_size, learning_rate=t.learning_rate,
        weight_decay=t.weight_decay, patience=t.patience, lr_factor=t.lr_factor,
        lr_patience=t.lr_patience, grad_clip=t.grad_clip, coverage=t.epoch_coverage,
        max_bad_batches=t.max_bad_batches, seed=t.seed, seq_len=t.seq_len, spinup=t.spinup,
        lead_days=cfg.data.lead_days, mixed_precision=t.mixed_precision,
        discharge_dropout=t.discharge_dropout, ssi_window=cfg.data.ssi_window,
        windows_per_epoch=t.windows_per_epoch, max_windows_per_epoch=t.max_windows_per_epoch,
        forecast_leads=t.forecast_leads, forecast_fraction=t.forecast_fraction,
        forecast_weather_known=t.forecast_weather_known, peak_weight=t.peak_weight, lead_weight=t.lead_weight,
        optimizer=t.optimizer,
        forecast_emulated=t.forecast_emulated, forecast_emulator=tuple(t.forecast_emulator),
        high_precip_mm=cfg.data.high_precip_mm,
        low_precip_mm=cfg.data.low_precip_mm,
        validation_loss=t.validation_loss)


def pretrain(cfg: Config, output, data_dir=None, basins=None, parallel: bool = False, resume: bool = False,
             device="cpu", progress: bool = True, model_factory=None, state_dir=None) -> dict:
    """Pretrain on many basins and write ``output`` (checkpoint) plus a run folder beside it.

    The run folder ``<output stem>_run/`` holds the training curve, history, per-basin validation
    metrics, the resolved config, the log, the report and the resumable state ``last_state.pth``.
    The checkpoint is written only when training completes, atomically: a failed run never replaces an
    earlier good model.

    ``model_factory(cfg)`` builds the model to train (default :class:`SCA2LSTM`); the benchmark uses it
    to train a baseline with the same pipeline. ``load_model`` only rebuilds SCA2LSTM checkpoints.
    ``state_dir`` is where the resumable state is written (default the run folder; :func:`work_dir`).

    Returns
    -------
    dict with ``checkpoint``, ``run_dir``, ``val`` (EvalResult of the best weights) and ``history``.
    """
    from ..distributed import ddp_wrap, is_main_process

    output = Path(output)
    run_dir = output.with_name(f"{output.stem}_run")
    if parallel:
        torch.set_num_threads(os.cpu_count() or 1)
    # before the data is read (minutes, or the synthetic basins generated): nothing to resume is said at once
    state = resume_state(output) if resume else None
    # --resume reads the data folder of the run it continues, as fine-tuning and prediction read a model's, so the
    # guide's command with --resume added continues a run started with --data_dir
    recorded = state_data(state) if resume else None
    data_dir, builtin = resolve_data_dir(data_dir, cfg, recorded=recorded)
    keep_real_model(output, builtin)
    prep = prepare_pretraining_data(cfg, data_dir, basins, parallel=parallel, progress=progress and is_main_process())
    seed_everything(cfg.training.seed)
    model = (model_factory or SCA2LSTM)(cfg).to(device)
    net = ddp_wrap(model, device)
    if cfg.training.compile:
        net = torch.compile(net)
    n_par = sum(p.numel() for p in model.parameters())
    main_proc = is_main_process()
    if main_proc:
        log.info("%s: %d parameters; %d basins; device %s", type(model).__name__, n_par, len(prep.basins),
                 device)
    meta = {"config": cfg.to_dict(), "scalers": prep.scalers.to_dict(), "basins": prep.basins,
            "data_sha256": {r.basin: r.source_hash for r in prep.data.records},
            "data_dir": str(Path(data_dir).expanduser().absolute()), "builtin_data": builtin}
    archives = weather_archives(cfg, data_dir, prep.data, prep.train_periods)
    trainer = Trainer(model, prep.data, prep.train_periods, prep.data, prep.val_periods, train_settings(cfg),
                      device, Path(state_dir or run_dir) / "last_state.pth", meta, progress=progress and main_proc,
                      ddp_model=net,
                      weather_archive=archives)
    if resume:
        trainer.load_state(state)
    # a resume after the last epoch trains nothing: its training time is the interrupted run's
    result, wall, trained = trainer.timed_fit()
    try:
        took = (f"{wall:.1f} s" if not resume else
                f"{wall:.1f} s of training before the resume (resumed after training)" if not trained
                else f"{wall:.1f} s (with the run it resumed)")
        check_learned(result["history"], output, cfg.training.learning_rate)
        ev = evaluate(model, prep.data, prep.val_periods, cfg.training.seq_len, cfg.training.spinup,
                      cfg.data.lead_days, device)
        out = {"checkpoint": output, "run_dir": run_dir, "val": ev, "history": result["history"], "seconds": wall,
               "prepared": prep, "model": model, "persistence_blend": {}}
        if not main_proc:
            return out
        val_metrics = {b: m for b, m in ev.per_basin.items()}
        blend = {}
        if cfg.model.persistence_blend:  # per-basin weight of the model against persistence, validation days only
            fits = fit_forecasts(prep.data, ev.forecasts, cfg.data.lead_days)
            blend = {b: f.alpha for b, f in fits.items()}
            for b, f in fits.items():
                val_metrics[b] = {**val_metrics[b], "persistence_blend": f.as_dict()}
            log.info("%s", summary_line(fits))
        ckpt = build_checkpoint(model, cfg, prep.scalers, prep.basins, trainer.best_epoch, trainer.optimizer,
                                val_metrics, history=result["history"], data_dir=str(data_dir),
                                builtin_data=builtin, train_seconds=wall, persistence_blend=blend,
                                basin_places=basin_places(data_dir, prep.basins),
                                weather_archives=archives.trained_sources(prep.train_periods) if archives else {})
        out["persistence_blend"] = blend
        med, pers = ev.median("model", "nse"), ev.median("persistence", "nse")
        log.info("Validation median NSE %.3f (persistence %.3f on the same days) | KGE %.3f | %s", med, pers,
                 ev.median("model", "kge"), took)
        # issue-time blend per lead and warning probabilities, on validation days, beside the checkpoint; the
        # model replaces an earlier one only with its calibration
        save_calibrated(ckpt, output, lambda staged: calibrate_after_training(staged, data_dir, prep.basins,
                                                                              shown_as=output))
        log.log(RESULT, "saved %s", output)
        # The run folder describes the model at `output`: its record is rewritten only once that model is in place,
        # so a run stopped during the calibration (minutes) leaves the earlier model's history and metrics beside it.
        write_training_artifacts(run_dir, result["history"], cfg.to_dict(), metrics_frame(ev.per_basin),
                                 "val_metrics.csv",   # the title says which model, as a mailed curve must
                                 f"Pretraining {Path(output).name} on {len(prep.basins)} "
                                 f"basin{'' if len(prep.basins) == 1 else 's'}")
        atomic_write_text(run_dir / "data_summary.csv", _data_summary(prep, cfg).to_csv(index=False))
        # pointed to once written: a run stopped while calibrating leaves the earlier run's file there
        log.info("%s (data_summary.csv in %s)", basin_counts(prep), run_dir)
        from ..evaluation.report import build_report
        build_report(run_dir, title="SCA2LSTM pretraining")
        return out
    except KeyboardInterrupt as e:
        # after the last epoch (evaluation, blend, the minutes of calibration) --resume completes the run
        raise (resumable_interrupt(e, trainer.state_path) if main_proc else e) from None


def work_dir(output, resume: bool) -> Path:
    """The folder a pretraining run of ``output`` writes its resumable state and its log into while it runs.

    The run folder ``<output stem>_run/`` itself for a first run (and the resume of a first run); beside an
    earlier run's files, its subfolder :data:`UNFINISHED`, so that a run that fails or is stopped leaves the
    earlier run's log and state as they were (its ``--resume`` continues there). A completed run's state and
    log are moved into the run folder (:func:`complete_work`).
    """
    run_dir = Path(output).with_name(f"{Path(output).stem}_run")
    staged = run_dir / UNFINISHED
    if resume:
        return staged if (staged / "last_state.pth").is_file() else run_dir
    earlier = run_dir.is_dir() and any(p.name != UNFINISHED for p in run_dir.iterdir())
    return staged if earlier else run_dir


def complete_work(output, work: Path) -> None:
    """Move a completed run's state and log from ``work`` (:func:`work_dir`) into its run folder: the state
    replaces the earlier run's, the log is appended to the run folder's ``train.log``, ``work`` is removed."""
    run_dir = Path(output).with_name(f"{Path(output).stem}_run")
    if Path(work) == run_dir:
        return
    if (work / "last_state.pth").is_file():
        os.replace(work / "last_state.pth", run_dir / "last_state.pth")
    if (work / "train.log").is_file():
        with open(run_dir / "train.log", "ab") as f:
            f.write((work / "train.log").read_bytes())
    shutil.rmtree(work, ignore_errors=True)


def resume_state(output) -> Path:
    """The resumable state of the pretraining run of ``output`` (``<output stem>_run/unfinished/last_state.pth``
    where a run stopped beside an earlier one, else ``<output stem>_run/last_state.pth``).

    Raises
    ------
    DataError
        There is none: one line saying so, before any data is read.
    """
    output = Path(output)
    run_dir = output.with_name(f"{output.stem}_run")
    state = run_dir / UNFINISHED / "last_state.pth"
    if not state.is_file():  # no later run stopped beside a completed one: the run folder's own
        state = run_dir / "last_state.pth"
    if not state.is_file():
        # a run started with --output elsewhere is resumed only with that --output: say which run was looked for
        raise DataError(f"--resume: no resumable state at {state} (the run of --output {output}); give the "
                        "interrupted run's --output, or start without --resume")
    return state


def keep_real_model(output: Path, builtin: bool) -> None:
    """Refuse (UsageError, before any training) to replace a model trained on real data with one trained on
    the built-in synthetic basins: the guide's first command run without a data folder would do that."""
    if not builtin or not output.is_file():
        return
    try:
        recorded = recorded_data(torch.load(output, map_location="cpu", weights_only=True))
    except Exception:  # not a checkpoint we can read: the run's own checks name it, or it is replaced
        return
    if recorded is not None and recorded[1] is False:
        raise UsageError(f"{output} holds a model trained on real data ({recorded[0]}); this run would train on "
                         "synthetic basins and replace it (none of --data_dir, $SCA2LSTM_DATA_DIR and data.data_dir "
                         "names real data); give the real data folder, or --output another file")


#: A validation (or training) loss this many times the untrained weights' validation loss, with no epoch better
#: than those: training diverged. (A short run that has not yet improved stays far below it.)
DIVERGED_FACTOR = 10.0


def check_learned(history: list, output, learning_rate: float) -> None:
    """Refuse a pretraining that diverged (TrainingError); warn about one that did not learn.

    Epoch 0 of the history scores the random starting weights. If no training epoch beat them on validation
    and the losses of the last epoch grew to :data:`DIVERGED_FACTOR` times that score (or are not finite),
    training diverged (a learning rate far too high): the best weights are the untrained ones, and writing them
    would replace a good earlier model at ``output`` with noise. If no epoch beat them but nothing diverged
    (a run of one or two epochs on little data), the untrained weights are written, with a warning. A fine-tune
    may keep its starting weights (the pretrained model); this check is for training from scratch only.
    """
    trained = [r for r in history if r["epoch"] > 0]
    if not trained or history[0]["epoch"] != 0:
        return
    start = history[0]["val_loss"]
    losses = [r["val_loss"] for r in trained]
    if not math.isfinite(start) or any(math.isfinite(v) and v < start for v in losses):
        return
    last = trained[-1]
    grown = [v for v in (last["val_loss"], last["train_loss"]) if not math.isfinite(v) or v > DIVERGED_FACTOR * start]
    finite = [v for v in losses if math.isfinite(v)]
    best = f"{min(finite):.4g}" if finite else "not finite"
    what = (f"loss {start:.4g} at epoch 0, best of epochs 1-{last['epoch']} {best}; last training loss "
            f"{last['train_loss']:.4g}")
    if grown:
        raise TrainingError(f"training diverged: no epoch beat the untrained weights on validation ({what}), so "
                            f"{output} was not written; lower --learning_rate (now {learning_rate:g})")
    log.warning("no epoch beat the untrained weights on validation (%s): the model written is the untrained one; "
                "train for more epochs", what)


def _data_summary(prep: PreparedData, cfg: Config):
    """One row per basin considered: its days, observed discharge per period, and whether it was used
    in training and validation (with the reason when not)."""
    import pandas as pd
    rows = []
    for r, (t0, t1), (v0, v1) in zip(prep.data.records, prep.train_periods, prep.val_periods):
        rows.append({"basin": r.basin, "first_day": str(r.dates[0]), "last_day": str(r.dates[-1]),
                     "train_days": t1 - t0, "train_observed": int(np.isfinite(r.y[t0:t1]).sum()),
                     "val_days": v1 - v0, "val_observed": int(np.isfinite(r.y[v0:v1]).sum()),
                     "q_mean_train": prep.scalers.basins[r.basin].q_mean,
                     "used_training": True, "used_validation": v1 > v0, "reason": "",
                     "empty_inputs": " ".join(empty_inputs(r, cfg))})
    for s in prep.skipped:
        if s["period"] == "validation":
            row = next(x for x in rows if x["basin"] == s["basin"])
            row["reason"] = s["reason"]
        else:
            rows.append({"basin": s["basin"], "used_training": False, "used_validation": False,
                         "reason": s["reason"]})
    return pd.DataFrame(rows)
