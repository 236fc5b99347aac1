"""Helpers shared by the failure-mode tests: tiny configs as YAML, damaged copies of the tiny data,
and the checks every error must pass (one stderr line, no traceback, nothing left behind)."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from conftest import TINY_MODEL, TINY_PERIODS, TINY_TRAINING

BASIN = "32006"


def tiny_yaml(path: Path, **sections) -> Path:
    """The conftest tiny settings (periods, model, training) as a partial YAML config for ``--config``."""
    cfg = {"data": dict(TINY_PERIODS), "training": dict(TINY_TRAINING), "model": dict(TINY_MODEL)}
    for k, v in sections.items():
        cfg.setdefault(k, {}).update(v)
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


def copy_data(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def ts_file(data_dir: Path, basin: str = BASIN) -> Path:
    (hit,) = sorted((Path(data_dir) / "timeseries").glob(f"CAMELS_GB_hydromet_timeseries_{basin}_*.csv"))
    return hit


FEW_RECORDS = "valid training records ("  # fine-tuning's warning on the tiny basins (stderr under --quiet)


def one_line(err: str, ignore: tuple = ()) -> str:
    """The single non-empty stderr line of a failed command (no traceback, no second line).

    ``ignore``: substrings of expected log warnings (``--quiet`` sends warnings to stderr) to leave out.
    """
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.strip() and not any(i in ln for i in ignore)]
    assert len(lines) == 1, f"expected one stderr line, got {len(lines)}:\n{err}"
    return lines[0]


def snapshot(folder: Path) -> dict:
    """Relative path -> bytes of every file under ``folder`` (empty dict when it does not exist)."""
    folder = Path(folder)
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def everything_under(folder: Path) -> list:
    return sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*"))
