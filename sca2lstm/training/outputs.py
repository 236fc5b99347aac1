"""Run artefacts shared by pretraining and fine-tuning: history, metrics tables, curves, config."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..evaluation.plots import plot_loss_curves
from ..fileio import atomic_write_text, json_text


def metrics_frame(per_basin: dict) -> pd.DataFrame:
    """One row per basin: model metrics and persistence metrics (``persistence_`` prefix), same days."""
    rows = []
    for basin, m in per_basin.items():
        row = {"basin": basin, "n_days": m["n_days"]}
        row.update({k: v for k, v in m["model"].items() if k != "n_days"})
        row.update({f"persistence_{k}": v for k, v in m["persistence"].items() if k != "n_days"})
        rows.append(row)
    return pd.DataFrame(rows)


def write_training_artifacts(run_dir, history: list[dict], config: dict, metrics: pd.DataFrame,
                             metrics_name: str, title: str) -> None:
    """history.csv, training_curve.png, config.json and the per-basin metrics CSV."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "history.csv", pd.DataFrame(history).to_csv(index=False))
    plot_loss_curves(history, run_dir / "training_curve.png", title=title)
    # strict JSON, as val_metrics.json: a fine-tune's keep-or-discard score that could not be computed is null, not
    # NaN (which jq, R's jsonlite and browsers refuse)
    atomic_write_text(run_dir / "config.json", json_text(config, default=str))
    # Six decimals: report.html shows this table at three beside the same scores from val_metrics.json, and a value
    # written at four (0.94949 as 0.9495) rounded the other way there (0.950 beside 0.949)
    atomic_write_text(run_dir / metrics_name, metrics.to_csv(index=False, float_format="%.6f"))


def save_calibrated(ckpt: dict, output, calibrate) -> Path:
    """Write the checkpoint ``ckpt`` to ``output`` together with its forecast calibration.

    The checkpoint is written under a hidden staging name of its own beside ``output``
    (``.<stem>.staged.<pid>.<random>.pth``) and ``calibrate(staged_path)`` fits its calibration there (a minute
    or two); then the calibration and, last, the checkpoint are moved
    into place. A run stopped before that (Ctrl-C during calibration), or whose model fails to move after its
    calibration did, leaves the earlier model and its calibration as they were, and no new model a glob could pick
    up without its calibration.
    """
    import os
    import uuid

    from ..checkpoint import atomic_torch_save
    from ..evaluation.calibration import calibration_path

    output = Path(output)
    # this process's own name (pid and a random part): two runs writing the same output at once shared one
    # staged file, so one overwrote the other's model mid-calibration and then failed to find it to move in
    staged = output.with_name(f".{output.stem}.staged.{os.getpid()}.{uuid.uuid4().hex[:8]}{output.suffix}")
    calibration, staged_calibration = calibration_path(output), calibration_path(staged)
    # the earlier model's calibration, moved aside while the new one takes its name, and back should the new model not
    # follow (a failed rename, or Ctrl-C between the two): the earlier model is never left with another's calibration
    aside = calibration.with_name(f".{calibration.name}.{os.getpid()}.old")
    try:
        atomic_torch_save(ckpt, staged)
        calibrate(staged)
        if staged_calibration.is_file():
            if calibration.is_file():
                os.replace(calibration, aside)
            os.replace(staged_calibration, calibration)
        os.replace(staged, output)
    except BaseException:
        if aside.exists() and staged.exists():   # the new model is not in place: the earlier one keeps its own
            os.replace(aside, calibration)
        raise
    finally:
        for p in (staged, staged_calibration, aside):
            if p.exists():
                p.unlink()
    return output
