"""Multi-basin pretraining as an importable function (the CLI ``sca2lstm.py`` is a thin layer over it)."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..checkpoint import atomic_torch_save, build_checkpoint
from ..config import Config
from ..data import camels_gb
from ..data.dataset import (SequenceData, check_period_has_target, check_period_inputs, load_basins,
                            load_static, resolve_data_dir, spec_kinds)
from ..data.scaling import Scalers
from ..errors import DataError
from ..evaluation.evaluate import evaluate
from ..fileio import atomic_write_text
from ..models.sca2lstm import SCA2LSTM
from .outputs import metrics_frame, write_training_artifacts
from .runtime import seed_everything
from .trainer import Trainer, TrainSettings

log = logging.getLogger(__name__)


@dataclass
class PreparedData:
    """Everything the trainer needs, fitted on the training period only."""

    data: SequenceData
    scalers: Scalers
    basins: list
    train_periods: list
    val_periods: list
    data_dir: Path


def prepare_pretraining_data(cfg: Config, data_dir, basins=None, parallel: bool = False) -> PreparedData:
    """Load basins, fit scalers on the training period, and build the scaled sequences."""
    d = cfg.data
    basins = [str(b) for b in (basins or d.basins or camels_gb.list_basins(data_dir))]
    if not basins:
        raise DataError("no basins to train on")
    t0 = time.time()
    records = load_basins(data_dir, basins, cfg, parallel=parallel)
    names, kinds = spec_kinds(cfg)
    basin_scalers, x_trains, train_periods, val_periods = {}, [], [], []
    for r in records:
        check_period_has_target(r, d.train_start, d.train_end, "training")
        check_period_has_target(r, d.val_start, d.val_end, "validation")
        check_period_inputs(r, cfg, d.train_start, d.train_end, "training")
        i0, i1 = r.period(d.train_start, d.train_end)
        basin_scalers[r.basin] = Scalers.fit_basin(r.basin, r.x[i0:i1], r.y[i0:i1], kinds)
        x_trains.append(r.x[i0:i1])
        train_periods.append((i0, i1))
        val_periods.append(r.period(d.val_start, d.val_end))
    static_raw = load_static(data_dir, basins, cfg)
    scalers = Scalers.fit(names, kinds, x_trains, d.static_attributes, static_raw, basin_scalers)
    data = SequenceData(records, static_raw, scalers, pad=cfg.training.seq_len)
    n_days = sum(len(r.dates) for r in records)
    log.info("Prepared %d basins (%d days, %d features) in %.1f s", len(records), n_days, len(names),
             time.time() - t0)
    return PreparedData(data, scalers, basins, train_periods, val_periods, Path(data_dir))


def train_settings(cfg: Config, section: str = "training") -> TrainSettings:
    t = cfg.training
    src = getattr(cfg, section)
    return TrainSettings(
        epochs=src.epochs, batch_size=src.batch_size, learning_rate=src.learning_rate,
        weight_decay=src.weight_decay, patience=src.patience, lr_factor=t.lr_factor,
        lr_patience=t.lr_patience, grad_clip=t.grad_clip, coverage=src.epoch_coverage,
        max_bad_batches=t.max_bad_batches, seed=t.seed, seq_len=t.seq_len, spinup=t.spinup,
        lead_days=cfg.data.lead_days, mixed_precision=t.mixed_precision,
        discharge_dropout=t.discharge_dropout, ssi_window=cfg.data.ssi_window, forecast_leads=t.forecast_leads,
        forecast_fraction=t.forecast_fraction, forecast_weather_known=t.forecast_weather_known)


def pretrain(cfg: Config, output, data_dir=None, basins=None, parallel: bool = False, resume: bool = False,
             device="cpu", progress: bool = True, model_factory=None) -> dict:
    """Pretrain on many basins and write ``output`` (checkpoint) plus a run folder beside it.

    The run folder ``<output stem>_run/`` holds the training curve, history, per-basin validation
    metrics, the resolved config, the log, the report and the resumable state ``last_state.pth``.
    The checkpoint is written only when training completes, atomically: a failed run never replaces an
    earlier good model.

    ``model_factory(cfg)`` builds the model to train (default :class:`SCA2LSTM`); the benchmark uses it
    to train a baseline with the same pipeline. ``load_model`` only rebuilds SCA2LSTM checkpoints.

    Returns
    -------
    dict with ``checkpoint``, ``run_dir``, ``val`` (EvalResult of the best weights) and ``history``.
    """
    from ..distributed import ddp_wrap, is_main_process

    output = Path(output)
    run_dir = output.with_name(f"{output.stem}_run")
    if parallel:
        torch.set_num_threads(os.cpu_count() or 1)
    data_dir, builtin = resolve_data_dir(data_dir, cfg)
    prep = prepare_pretraining_data(cfg, data_dir, basins, parallel=parallel)
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
    meta = {"config": cfg.to_dict(), "scalers": prep.scalers.to_dict(), "basins": prep.basins}
    trainer = Trainer(model, prep.data, prep.train_periods, prep.data, prep.val_periods, train_settings(cfg),
                      device, run_dir / "last_state.pth", meta, progress=progress and main_proc, ddp_model=net)
    if resume:
        state = run_dir / "last_state.pth"
        if not state.is_file():
            raise DataError(f"--resume: no resumable state at {state}; start without --resume")
        trainer.load_state(state)
    t0 = time.time()
    result = trainer.fit()
    wall = time.time() - t0
    ev = evaluate(model, prep.data, prep.val_periods, cfg.training.seq_len, cfg.training.spinup,
                  cfg.data.lead_days, device)
    out = {"checkpoint": output, "run_dir": run_dir, "val": ev, "history": result["history"], "seconds": wall,
           "prepared": prep, "model": model}
    if not main_proc:
        return out
    val_metrics = {b: m for b, m in ev.per_basin.items()}
    ckpt = build_checkpoint(model, cfg, prep.scalers, prep.basins, trainer.best_epoch, trainer.optimizer,
                            val_metrics, history=result["history"], data_dir=str(data_dir),
                            builtin_data=builtin, train_seconds=wall)
    write_training_artifacts(run_dir, result["history"], cfg.to_dict(), metrics_frame(ev.per_basin),
                             "val_metrics.csv", "Pretraining")
    atomic_write_text(run_dir / "data_summary.csv", _data_summary(prep).to_csv(index=False))
    atomic_torch_save(ckpt, output)
    med, pers = ev.median("model", "nse"), ev.median("persistence", "nse")
    log.info("Validation median NSE %.3f (persistence %.3f on the same days) | KGE %.3f | %.1f s | saved %s",
             med, pers, ev.median("model", "kge"), wall, output)
    from ..evaluation.report import build_report
    build_report(run_dir, title="SCA2LSTM pretraining")
    return out


def _data_summary(prep: PreparedData):
    import pandas as pd
    rows = []
    for r, (t0, t1), (v0, v1) in zip(prep.data.records, prep.train_periods, prep.val_periods):
        rows.append({"basin": r.basin, "first_day": str(r.dates[0]), "last_day": str(r.dates[-1]),
                     "train_days": t1 - t0, "train_observed": int(np.isfinite(r.y[t0:t1]).sum()),
                     "val_days": v1 - v0, "val_observed": int(np.isfinite(r.y[v0:v1]).sum()),
                     "q_mean_train": prep.scalers.basins[r.basin].q_mean})
    return pd.DataFrame(rows)
