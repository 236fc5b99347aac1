"""One typed configuration, validated at load.

The defaults live in ``default_config.yaml`` beside this module (documented there). A user file only
overrides the keys it names. Unknown keys, wrong types and out-of-range values raise
:class:`~sca2lstm.errors.ConfigError` naming the key, the value and what is allowed. Nothing is ever
``exec``-ed or ``eval``-ed: YAML is parsed with ``yaml.safe_load``.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as _dt
import itertools
import math
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Optional

import yaml

from .errors import ConfigError

DEFAULT_CONFIG_PATH = Path(__file__).with_name("default_config.yaml")
USER_CONFIG_NAME = "sca2lstm.yaml"

KNOWN_DYNAMIC = ("precipitation", "pet", "peti", "temperature", "humidity", "shortwave_rad",
                 "longwave_rad", "windspeed")


def _positive(v):
    return v > 0


def _non_negative(v):
    return v >= 0


def _open_unit(v):
    return 0 < v < 1


def _unit_closed_open(v):
    return 0 <= v < 1


@dataclass
class DataConfig:
    data_dir: Optional[str] = None
    cache_dir: Optional[str] = None
    synthetic_basins: int = 12
    synthetic_seed: int = 42
    basins: Optional[list] = None
    dynamic_inputs: list = field(default_factory=list)
    derived_features: bool = True
    high_precip_mm: float = 10.0
    low_precip_mm: float = 1.0
    ssi_window: int = 30
    use_discharge_input: bool = True
    lead_days: int = 1
    static_attributes: list = field(default_factory=list)
    target: str = "discharge_vol"
    pet_from_temperature: str = "missing"
    min_train_flows: int = 365
    train_start: str = ""
    train_end: str = ""
    val_start: str = ""
    val_end: str = ""
    test_start: str = ""
    test_end: str = ""


@dataclass
class ModelConfig:
    hidden_size: int = 64
    attention_hidden_size: int = 32
    embedding_size: int = 16
    dropout: float = 0.1
    initial_forget_bias: float = 3.0
    persistence_skip: bool = False
    cell_readout: bool = True
    persistence_blend: bool = True
    quantiles: list = field(default_factory=lambda: [0.05, 0.25, 0.5, 0.75, 0.95])


@dataclass
class TrainingConfig:
    seq_len: int = 270
    spinup: int = 90
    epochs: int = 60
    batch_size: int = 32
    learning_rate: float = 2e-3
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    patience: int = 10
    lr_factor: float = 0.5
    lr_patience: int = 3
    epoch_coverage: float = 1.0
    windows_per_epoch: Optional[int] = None
    max_windows_per_epoch: Optional[int] = 8192
    max_bad_batches: int = 5
    seed: int = 42
    device: str = "auto"
    compile: bool = False
    mixed_precision: bool = False
    discharge_dropout: float = 0.1
    forecast_leads: int = 7
    forecast_fraction: float = 0.5
    forecast_weather_known: float = 0.5
    forecast_emulated: float = 0.0


@dataclass
class FinetuneConfig:
    epochs: int = 20
    batch_size: int = 16
    learning_rate: float = 1e-4
    weight_decay: float = 1e-5
    patience: int = 8
    fine_tune_ratio: float = 0.8
    min_records: int = 5000
    epoch_coverage: float = 4.0
    unfreeze_embedding: bool = False
    unfreeze_lstm1: bool = False
    unfreeze_weight_head: bool = False


# (section, key) -> (predicate, description of the allowed values)
_RULES = {
    ("data", "synthetic_basins"): (_positive, "an integer >= 1"),
    ("data", "high_precip_mm"): (_positive, "a number > 0"),
    ("data", "low_precip_mm"): (_positive, "a number > 0"),
    ("data", "ssi_window"): (_positive, "an integer >= 1"),
    ("data", "lead_days"): (_positive, "an integer >= 1"),
    ("data", "pet_from_temperature"): (lambda v: v in ("missing", "always", "never"),
                                       "one of missing, always, never"),
    ("data", "min_train_flows"): (lambda v: v >= 2, "an integer >= 2"),
    ("model", "hidden_size"): (_positive, "an integer >= 1"),
    ("model", "attention_hidden_size"): (_positive, "an integer >= 1"),
    ("model", "embedding_size"): (_positive, "an integer >= 1"),
    ("model", "dropout"): (_unit_closed_open, "a number in [0, 1)"),
    ("training", "seq_len"): (lambda v: v >= 2, "an integer >= 2"),
    ("training", "spinup"): (_non_negative, "an integer >= 0"),
    ("training", "epochs"): (_non_negative, "an integer >= 0"),
    ("training", "batch_size"): (_positive, "an integer >= 1"),
    ("training", "learning_rate"): (_positive, "a number > 0"),
    ("training", "weight_decay"): (_non_negative, "a number >= 0"),
    ("training", "grad_clip"): (_positive, "a number > 0"),
    ("training", "patience"): (_positive, "an integer >= 1"),
    ("training", "lr_factor"): (_open_unit, "a number in (0, 1)"),
    ("training", "lr_patience"): (_non_negative, "an integer >= 0"),
    ("training", "epoch_coverage"): (_positive, "a number > 0"),
    ("training", "windows_per_epoch"): (_positive, "null or an integer >= 1"),
    ("training", "max_windows_per_epoch"): (_positive, "null or an integer >= 1"),
    ("training", "max_bad_batches"): (_positive, "an integer >= 1"),
    ("training", "discharge_dropout"): (_unit_closed_open, "a number in [0, 1)"),
    ("training", "forecast_leads"): (_non_negative, "an integer >= 0"),
    ("training", "forecast_fraction"): (lambda v: 0 <= v <= 1, "a number in [0, 1]"),
    ("training", "forecast_weather_known"): (lambda v: 0 <= v <= 1, "a number in [0, 1]"),
    ("training", "forecast_emulated"): (lambda v: 0 <= v <= 1, "a number in [0, 1]"),
    ("training", "device"): (lambda v: v in ("auto", "cpu", "cuda"), "one of auto, cpu, cuda"),
    ("finetune", "epochs"): (_non_negative, "an integer >= 0"),
    ("finetune", "batch_size"): (_positive, "an integer >= 1"),
    ("finetune", "learning_rate"): (_positive, "a number > 0"),
    ("finetune", "weight_decay"): (_non_negative, "a number >= 0"),
    ("finetune", "patience"): (_positive, "an integer >= 1"),
    ("finetune", "fine_tune_ratio"): (_open_unit, "a number in (0, 1)"),
    ("finetune", "min_records"): (_non_negative, "an integer >= 0"),
    ("finetune", "epoch_coverage"): (_positive, "a number > 0"),
}

_SECTIONS = {"data": DataConfig, "model": ModelConfig, "training": TrainingConfig,
             "finetune": FinetuneConfig}


@dataclass
class Config:
    """The whole configuration: four sections, each a dataclass."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)

    def to_dict(self) -> dict:
        """Plain nested dict (only str/int/float/bool/None/list), safe for ``weights_only`` loads."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict, source: str = "config") -> "Config":
        """Validate a full or partial nested dict on top of the project defaults."""
        base = _default_dict()
        _merge(base, d, source)
        return _build(base, source)

    def replace(self, **sections_updates: dict) -> "Config":
        """A validated copy with ``section={key: value}`` updates, e.g. ``replace(training={'epochs': 3})``."""
        d = self.to_dict()
        _merge(d, sections_updates, "override")
        return _build(d, "override")

    # Derived quantities used across modules -------------------------------------------------------
    @property
    def predict_steps(self) -> int:
        """Number of steps at the end of each window that carry a loss (and are reported)."""
        return self.training.seq_len - self.training.spinup


def _default_dict() -> dict:
    with open(DEFAULT_CONFIG_PATH, encoding="utf-8") as f:
        return yaml.safe_load(f)


def _merge(base: dict, upd: Any, source: str) -> None:
    if upd is None:
        return
    if not isinstance(upd, dict):
        raise ConfigError(f"{source}: expected a mapping of sections {sorted(_SECTIONS)}, got {type(upd).__name__}")
    for section, values in upd.items():
        if section not in _SECTIONS:
            raise ConfigError(f"{source}: unknown section {section!r}; allowed: {', '.join(_SECTIONS)}")
        if values is None:
            continue
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: section {section!r} must be a mapping")
        allowed = [f.name for f in fields(_SECTIONS[section])]
        for key, value in values.items():
            if key not in allowed:
                raise ConfigError(f"{source}: unknown key {section}.{key}; allowed keys: {', '.join(allowed)}")
            base.setdefault(section, {})[key] = value


def _check_type(section: str, f: dataclasses.Field, value: Any, source: str) -> Any:
    name = f"{section}.{f.name}"
    default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
    tp = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    if value is None:
        if "Optional" in tp:
            return None
        raise ConfigError(f"{source}: {name} must not be null")
    if isinstance(default, bool) or tp == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{source}: {name}={value!r} must be true or false")
        return value
    if tp in ("int", "Optional[int]"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{source}: {name}={value!r} must be an integer")
        return value
    if tp == "float":
        if isinstance(value, str):  # YAML 1.1 reads 1e-3 (no dot) as a string: accept plain numbers
            try:
                value = float(value.strip())
            except ValueError:
                raise ConfigError(f"{source}: {name}={value!r} must be a number") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{source}: {name}={value!r} must be a number")
        if not math.isfinite(value):
            raise ConfigError(f"{source}: {name}={value!r} must be a finite number")
        return float(value)
    if "list" in tp:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{source}: {name}={value!r} must be a list")
        if name == "model.quantiles":  # the one list of numbers
            if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in value):
                raise ConfigError(f"{source}: {name}={value!r} must be a list of numbers")
            return [float(v) for v in value]
        return [str(v) for v in value]
    if isinstance(value, (_dt.date,)):
        return value.isoformat()
    if not isinstance(value, (str, int)):
        raise ConfigError(f"{source}: {name}={value!r} must be a string")
    return str(value)


def _build(d: dict, source: str) -> Config:
    sections = {}
    for section, cls in _SECTIONS.items():
        values = dict(d.get(section) or {})
        kwargs = {}
        for f in fields(cls):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            v = _check_type(section, f, values.get(f.name, default), source)
            rule = _RULES.get((section, f.name))
            if rule is not None and v is not None and not rule[0](v):
                raise ConfigError(f"{source}: {section}.{f.name}={v!r} is out of range; expected {rule[1]}")
            kwargs[f.name] = v
        sections[section] = cls(**kwargs)
    cfg = Config(**sections)
    _check_consistency(cfg, source)
    return cfg


def _check_consistency(cfg: Config, source: str) -> None:
    t, dc = cfg.training, cfg.data
    if t.spinup >= t.seq_len:
        raise ConfigError(f"{source}: training.spinup={t.spinup} must be smaller than training.seq_len={t.seq_len}")
    if t.forecast_leads >= t.seq_len:  # the window must hold the issue date
        raise ConfigError(f"{source}: training.forecast_leads={t.forecast_leads} must be smaller than "
                          f"training.seq_len={t.seq_len}")
    qs = cfg.model.quantiles
    if qs and (any(not 0 < q < 1 for q in qs) or any(a >= b for a, b in itertools.pairwise(qs)) or 0.5 not in qs):
        raise ConfigError(f"{source}: model.quantiles={qs} must be empty or increasing numbers in (0, 1) "
                          "that include 0.5 (the median)")
    if dc.lead_days >= t.seq_len - t.spinup:
        raise ConfigError(f"{source}: data.lead_days={dc.lead_days} must be smaller than training.seq_len - "
                          f"training.spinup = {t.seq_len} - {t.spinup} = {t.seq_len - t.spinup}")
    bad = [c for c in dc.dynamic_inputs if c not in KNOWN_DYNAMIC]
    if bad:
        raise ConfigError(f"{source}: unknown data.dynamic_inputs {bad}; allowed: {', '.join(KNOWN_DYNAMIC)}")
    if not dc.dynamic_inputs:
        raise ConfigError(f"{source}: data.dynamic_inputs must name at least one column")
    dates = {}
    for k in ("train_start", "train_end", "val_start", "val_end", "test_start", "test_end"):
        v = getattr(dc, k)
        try:
            dates[k] = _dt.date.fromisoformat(str(v))
        except ValueError:
            raise ConfigError(f"{source}: data.{k}={v!r} is not a date; expected YYYY-MM-DD") from None
    for p in ("train", "val", "test"):
        if dates[f"{p}_start"] > dates[f"{p}_end"]:
            raise ConfigError(f"{source}: data.{p}_start={dates[p + '_start']} is after data.{p}_end={dates[p + '_end']}")
    for end, start in (("train_end", "val_start"), ("val_end", "test_start")):
        if not dates[end] < dates[start]:
            raise ConfigError(f"{source}: data.{end}={dates[end]} must be before data.{start}={dates[start]}; "
                              f"periods must be in order and not overlap: train < val < test")


def read_config_file(path: str | os.PathLike | None = None) -> tuple[str | None, dict]:
    """The keys a user config file names, validated on top of the defaults.

    Parameters
    ----------
    path : str or Path, optional
        A YAML file. Without it, ``./sca2lstm.yaml`` when it exists, else no file.

    Returns
    -------
    (source, sections) : (str or None, dict)
        The file read (None: none) and its nested ``{section: {key: value}}`` exactly as written, so
        a caller can tell a key the file sets from a default.
    """
    if path is None and Path(USER_CONFIG_NAME).is_file():
        path = USER_CONFIG_NAME
    if path is None:
        return None, {}
    source = str(path)
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {source} does not exist")
    try:
        with open(p, encoding="utf-8") as f:
            user = yaml.safe_load(f)
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {source} is not valid YAML: {str(e).splitlines()[0]}") from None
    base = _default_dict()
    _merge(base, user, source)
    _build(base, source)  # unknown keys and bad values fail here, naming the file
    return source, {k: dict(v) for k, v in (user or {}).items() if v}


def load_config(path: str | os.PathLike | None = None, overrides: dict | None = None) -> Config:
    """Load and validate the configuration.

    Precedence: ``overrides`` (command-line flags that were given) > the config file > the project
    defaults of ``default_config.yaml``.

    Parameters
    ----------
    path : str or Path, optional
        A YAML file. Without it, ``./sca2lstm.yaml`` is used when it exists, else the project defaults.
    overrides : dict, optional
        Nested ``{section: {key: value}}`` applied last (e.g. from command-line flags).

    Returns
    -------
    Config
    """
    base = _default_dict()
    source, user = read_config_file(path)
    source = source or "defaults"
    _merge(base, user, source)
    if overrides:
        _merge(base, copy.deepcopy(overrides), "override")
    return _build(base, source)
