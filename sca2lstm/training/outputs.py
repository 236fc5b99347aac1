"""Run artefacts shared by pretraining and fine-tuning: history, metrics tables, curves, config."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..evaluation.plots import plot_loss_curves
from ..fileio import atomic_write_text


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
    atomic_write_text(run_dir / "config.json", json.dumps(config, indent=2, default=str))
    atomic_write_text(run_dir / metrics_name, metrics.to_csv(index=False, float_format="%.4f"))
