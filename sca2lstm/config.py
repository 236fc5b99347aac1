"""One typed configuration, validated at load.

The defaults live in ``default_config.yaml`` beside this module (documented there). A user file only
overrides the keys it names. Unknown keys, wrong types and out-of-range values raise
:class:`~sca2lstm.errors.ConfigError` in one line naming the key, the value and what is allowed. Nothing
is ever ``exec``-ed or ``eval``-ed: YAML is parsed with ``yaml.safe_load``.

Each section is a pydantic (v2) model in strict mode. Pydantic rather than typed dataclasses: the type
of each field is checked against the real annotation at runtime (``int`` refuses ``True`` and ``270.5``,
``list[str]`` refuses a string, ``Literal`` names its values), bounds are declared beside the field
(``Field(ge=1)``) instead of in a parallel table, and a maintained library does the checking instead of
code matching annotation strings. The validation errors are rewritten here into the project's one-line
form.

Fine-tuning runs the training loop with the ``training`` settings, except the keys the ``finetune``
section names (:meth:`Config.finetune_training`): the defaults name the user's guide's fine-tuning
values there, and a user file may override any other training key the same way, except those listed in
:data:`FINETUNE_FIXED`.
"""

from __future__ import annotations

import copy
import datetime as _dt
import itertools
import os
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, get_args, get_origin

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from .errors import ConfigError

DEFAULT_CONFIG_PATH = Path(__file__).with_name("default_config.yaml")
USER_CONFIG_NAME = "sca2lstm.yaml"

TUNE_SAMPLERS = ("sca", "tpe", "random", "pso")
#: The largest random seed: NumPy's generators refuse a negative seed, and torch a seed beyond 64 bits (the
#: trainer seeds each epoch with seed * 1000 + epoch); 2**53 - 1 keeps that inside 64 bits, and every seed a
#: model was trained with before this bound.
MAX_SEED = 2 ** 53 - 1
KNOWN_DYNAMIC = ("precipitation", "pet", "peti", "temperature", "humidity", "shortwave_rad",
                 "longwave_rad", "windspeed")
#: What the model forecasts. Every output is labelled m3/s, so only discharge in m3/s is allowed (the
#: reader derives it from ``discharge_spec`` x area when a file has only that).
TARGETS = ("discharge_vol",)
#: Training keys a ``finetune`` section may not override: the window and horizon the pretrained model was
#: built for (seq_len, spinup, forecast_leads), and run settings with their own flags (seed, device, compile).
FINETUNE_FIXED = ("seq_len", "spinup", "forecast_leads", "seed", "device", "compile")


def yaml_number(v):
    """YAML 1.1 reads ``1e-3`` (no dot) as a string: a number setting accepts a numeric string."""
    if isinstance(v, str):
        try:
            return float(v.strip())
        except ValueError:
            return v
    return v


def _ids(v):
    """Gauge ids written as YAML integers (``[32006, 10002]``) are ids all the same: strings."""
    if isinstance(v, (list, tuple)):
        return [str(x) if isinstance(x, int) and not isinstance(x, bool) else x for x in v]
    return v


def _day(v):
    """YAML reads an unquoted ``1980-10-01`` as a date: keep it as the ISO string."""
    return v.isoformat() if isinstance(v, _dt.date) else v


Number = Annotated[float, BeforeValidator(yaml_number)]
Ids = Annotated[list[str], BeforeValidator(_ids)]
Day = Annotated[str, BeforeValidator(_day)]


class _Section(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, allow_inf_nan=False)


class DataConfig(_Section):
    data_dir: Optional[str] = None
    cache_dir: Optional[str] = None
    synthetic_basins: int = Field(12, ge=1)
    synthetic_seed: int = Field(42, ge=0, le=MAX_SEED)
    basins: Optional[Ids] = Field(None, min_length=1)  # [] would read as every basin
    dynamic_inputs: list[Literal[KNOWN_DYNAMIC]] = Field(default_factory=list, min_length=1)
    derived_features: bool = True
    forecast_flag: bool = False
    high_precip_mm: Number = Field(10.0, gt=0)
    low_precip_mm: Number = Field(1.0, gt=0)
    # A state of the last weeks to months; longer is a climatology, and the history a forecast must read
    # grows with it.
    ssi_window: int = Field(30, ge=1, le=365)
    use_discharge_input: bool = True
    lead_days: int = Field(1, ge=1)
    static_attributes: list[str] = Field(default_factory=list)
    target: Literal[TARGETS] = "discharge_vol"
    pet_from_temperature: Literal["missing", "always", "never"] = "missing"
    min_train_flows: int = Field(365, ge=2)
    station_test_fraction: Number = Field(0.2, gt=0, le=0.5)
    train_start: Day = ""
    train_end: Day = ""
    val_start: Day = ""
    val_end: Day = ""
    test_start: Day = ""
    test_end: Day = ""


class ModelConfig(_Section):
    hidden_size: int = Field(64, ge=1)
    attention_hidden_size: int = Field(32, ge=1)
    embedding_size: int = Field(16, ge=1)
    dropout: Number = Field(0.1, ge=0, lt=1)
    initial_forget_bias: Number = 3.0
    persistence_skip: bool = False
    cell_readout: bool = True
    persistence_blend: bool = True
    quantiles: list[Number] = Field(default_factory=lambda: [0.05, 0.25, 0.5, 0.75, 0.95])
    head: Literal["quantile", "cmal"] = "quantile"
    cmal_components: int = Field(3, ge=1)


class TrainingConfig(_Section):
    seq_len: int = Field(270, ge=2)
    spinup: int = Field(90, ge=0)
    epochs: int = Field(60, ge=0)
    batch_size: int = Field(32, ge=1)
    learning_rate: Number = Field(2e-3, gt=0)
    weight_decay: Number = Field(0.0, ge=0)
    grad_clip: Number = Field(1.0, gt=0)
    patience: int = Field(10, ge=1)
    lr_factor: Number = Field(0.5, gt=0, lt=1)
    lr_patience: int = Field(3, ge=0)
    epoch_coverage: Number = Field(1.0, gt=0)
    windows_per_epoch: Optional[int] = Field(None, ge=1)
    max_windows_per_epoch: Optional[int] = Field(8192, ge=1)
    max_bad_batches: int = Field(5, ge=1)
    seed: int = Field(42, ge=0, le=MAX_SEED)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    compile: bool = False
    mixed_precision: bool = False
    discharge_dropout: Number = Field(0.1, ge=0, lt=1)
    forecast_leads: int = Field(7, ge=0)
    forecast_fraction: Number = Field(0.5, ge=0, le=1)
    forecast_weather_known: Number = Field(0.5, ge=0, le=1)
    validation_loss: Literal["training_mixture", "hindcast"] = "training_mixture"
    peak_weight: Number = Field(0.0, ge=0)
    lead_weight: Number = Field(1.0, gt=0)
    forecast_emulated: Number = Field(0.0, ge=0, le=1)
    forecast_emulator: list[Literal["swap", "amount"]] = Field(default_factory=lambda: ["swap"], min_length=1)
    optimizer: Literal["adamw", "sca"] = "adamw"


FINETUNE_OVERRIDABLE = tuple(k for k in TrainingConfig.model_fields if k not in FINETUNE_FIXED)


class FinetuneConfig(_Section):
    """Fine-tuning's own keys, plus overrides of training keys (:data:`FINETUNE_OVERRIDABLE`).

    An override is any training key the section names, checked by the training field's own type and
    bounds; :meth:`Config.finetune_training` applies them.
    """

    model_config = ConfigDict(strict=True, extra="allow", frozen=True, allow_inf_nan=False)

    fine_tune_ratio: Number = Field(0.8, gt=0, lt=1)
    min_records: int = Field(5000, ge=0)
    unfreeze_embedding: bool = False
    unfreeze_lstm1: bool = False
    unfreeze_weight_head: bool = False

    @model_validator(mode="after")
    def _overrides_are_training_keys(self):
        extra = self.__pydantic_extra__ or {}
        bad = [k for k in extra if k not in FINETUNE_OVERRIDABLE]
        if bad:  # _merge names these first; this guards direct construction
            raise ValueError(f"unknown key {bad[0]}")
        if extra:
            checked = TrainingConfig.model_validate(extra)
            for k in extra:
                extra[k] = getattr(checked, k)
        return self

    @property
    def overrides(self) -> dict:
        """The training keys this section sets: ``{key: value}``."""
        return dict(self.__pydantic_extra__ or {})


class TuneConfig(_Section):
    """``sca2lstm tune``: the study's settings and its search space (:mod:`sca2lstm.search_space`)."""

    sampler: Literal[TUNE_SAMPLERS] = "tpe"
    trials: int = Field(24, ge=1)
    objective: Literal["val_loss", "val_nse"] = "val_loss"
    pruner: Literal["median", "hyperband", "none"] = "median"
    population: int = Field(6, ge=2)
    space: dict[str, Any] = Field(default_factory=dict)


_SECTIONS = {"data": DataConfig, "model": ModelConfig, "training": TrainingConfig,
             "finetune": FinetuneConfig, "tune": TuneConfig}


def _allowed_keys(section: str) -> list[str]:
    keys = list(_SECTIONS[section].model_fields)
    return keys + list(FINETUNE_OVERRIDABLE) if section == "finetune" else keys


class Config(BaseModel):
    """The whole configuration: five sections, each a validated model."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    finetune: FinetuneConfig = Field(default_factory=FinetuneConfig)
    tune: TuneConfig = Field(default_factory=TuneConfig)

    def to_dict(self) -> dict:
        """Plain nested dict (only str/int/float/bool/None/list), safe for ``weights_only`` loads."""
        return self.model_dump()

    @classmethod
    def from_dict(cls, d: dict, source: str = "config") -> Config:
        """Validate a full or partial nested dict on top of the project defaults."""
        base = _default_dict()
        _merge(base, d, source)
        return _build(base, source)

    def replace(self, **sections_updates: dict) -> Config:
        """A validated copy with ``section={key: value}`` updates, e.g. ``replace(training={'epochs': 3})``."""
        d = self.to_dict()
        _merge(d, sections_updates, "override")
        return _build(d, "override")

    # Derived quantities used across modules -------------------------------------------------------
    @property
    def predict_steps(self) -> int:
        """Number of steps at the end of each window that carry a loss (and are reported)."""
        return self.training.seq_len - self.training.spinup

    def finetune_training(self) -> TrainingConfig:
        """The training settings of fine-tuning: ``training`` with the ``finetune`` section's overrides."""
        return self.training.model_copy(update=self.finetune.overrides)


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
        allowed = _allowed_keys(section)
        for key, value in values.items():
            if key not in allowed:
                raise ConfigError(f"{source}: unknown key {section}.{key}; allowed keys: {', '.join(allowed)}")
            base.setdefault(section, {})[key] = value


def _allowed_range(section: str, key: str) -> str:
    """``an integer >= 1``, ``a number in [0, 1)``, ``null or an integer >= 1``: the bounds of a field."""
    cls = TrainingConfig if section == "finetune" and key in FINETUNE_OVERRIDABLE else _SECTIONS[section]
    f = cls.model_fields[key]
    b = {k: getattr(m, k) for m in f.metadata for k in ("ge", "gt", "le", "lt") if hasattr(m, k)}
    kind = "an integer" if "int" in str(f.annotation) else "a number"
    def num(v) -> str:  # an integer bound in full (4294967295, not 4.29497e+09)
        return str(v) if isinstance(v, int) else f"{v:g}"

    lo = (f"[{num(b['ge'])}" if "ge" in b else f"({num(b['gt'])}") if {"ge", "gt"} & set(b) else None
    hi = (f"{num(b['le'])}]" if "le" in b else f"{num(b['lt'])})") if {"le", "lt"} & set(b) else None
    if lo and hi:
        text = f"{kind} in {lo}, {hi}"
    elif lo:
        text = f"{kind} {'>=' if lo[0] == '[' else '>'} {lo[1:]}"
    else:
        text = f"{kind} {'<=' if hi[-1] == ']' else '<'} {hi[:-1]}"
    return f"null or {text}" if "Optional" in str(f.annotation) or f.default is None else text


def _literal_values(tp) -> list[str]:
    """The values of the ``Literal`` inside an annotation (``list[Literal[...]]`` included)."""
    if get_origin(tp) is Literal:
        return [str(v) for v in get_args(tp)]
    return [v for a in get_args(tp) for v in _literal_values(a)]


_TYPE_WORDS = {"int_type": "an integer", "float_type": "a number", "bool_type": "true or false",
               "list_type": "a list", "string_type": "a string", "finite_number": "a finite number",
               "dict_type": "a mapping of key: value lines"}


def _error_line(section: str, err: dict, values: dict, source: str) -> str:
    """One pydantic error as ``source: section.key=value must be ...``."""
    loc = [str(x) for x in err["loc"] if not str(x).startswith(("function-", "constrained-"))]
    key = loc[0] if loc else "?"
    name = f"{section}.{key}" + "".join(f"[{i}]" for i in loc[1:] if i.isdigit())
    value = err.get("input", values.get(key))
    kind = err["type"]
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return f"{source}: {name}={value!r} is out of range; expected {_allowed_range(section, key)}"
    if kind == "literal_error":
        allowed = ", ".join(_literal_values(_SECTIONS[section].model_fields[key].annotation))
        return f"{source}: {name}={value!r} is not allowed; expected one of {allowed}"
    if kind == "too_short" and isinstance(value, list):
        field = _SECTIONS[section].model_fields.get(key)
        return f"{source}: {name} must name at least one value" + (
            ", or be null" if field is not None and field.default is None else "")
    if value is None:
        return f"{source}: {name} must not be null"
    if kind in _TYPE_WORDS:
        return f"{source}: {name}={value!r} must be {_TYPE_WORDS[kind]}"
    return f"{source}: {name}={value!r}: {err['msg']}"


def _build(d: dict, source: str) -> Config:
    sections = {}
    for section, cls in _SECTIONS.items():
        values = dict(d.get(section) or {})
        try:
            sections[section] = cls.model_validate(values)
        except ValidationError as e:
            err = e.errors(include_url=False)[0]
            if err["type"] == "value_error":  # a finetune override: checked as a training key
                err = _override_error(values)
            raise ConfigError(_error_line(section, err, values, source)) from None
    cfg = Config(**sections)
    _check_consistency(cfg, source)
    if cfg.tune.space:
        search_space(cfg, source)
    return cfg


def _value_kind(annotation) -> str:
    """``int``, ``float``, ``bool``, ``list`` or ``str`` (text and named values) of a field's type."""
    args = [a for a in get_args(annotation) if a is not type(None)]
    if get_origin(annotation) is not None and get_origin(annotation) not in (list, Literal) and len(args) == 1:
        annotation = args[0]  # Optional[int] -> int
    if get_origin(annotation) is list:
        return "list"
    return {bool: "bool", int: "int", float: "float"}.get(annotation, "str")


#: Keys of tune.space that `sca2lstm tune` refuses, and why: its trials pretrain, read the study's data folder and are
#: scored on one validation period; a searched value of these would change nothing, or the yardstick itself.
_NOT_SEARCHED = {
    "finetune.*": "the trials pretrain and never read the finetune section (fine_train.py --strategy search "
                  "searches fine-tuning)",
    "data.data_dir": "every trial reads the study's data folder (--data_dir)",
    "data.cache_dir": "it changes where prepared data is kept, not the model",
    "training.device": "it changes where a trial runs, not the model (--device)",
    **{f"data.{k}": "the trials would be scored on different periods, and their scores could not be compared"
       for k in ("val_start", "val_end", "test_start", "test_end")},
}


def search_space(cfg: Config, source: str = "config") -> list:
    """The validated dimensions of ``cfg.tune.space`` (:mod:`sca2lstm.search_space`): the keys of the
    data, model and training sections' own fields may be searched, but not those of :data:`_NOT_SEARCHED`
    (the finetune section, the data folders, the device, the validation and test periods); each bound and
    choice must itself be a valid value of its key, checked by building the config with it."""
    from .search_space import parse_space

    key_types = {f"{section}.{k}": _value_kind(f.annotation) for section, cls in _SECTIONS.items()
                 if section != "tune" for k, f in cls.model_fields.items()}
    for key in (cfg.tune.space or {}) if isinstance(cfg.tune.space, dict) else ():
        why = _NOT_SEARCHED.get(str(key)) or _NOT_SEARCHED.get(str(key).split(".", 1)[0] + ".*")
        if why is not None:
            raise ConfigError(f"{source}: tune.space.{key} cannot be searched: {why}")
    plain = cfg.to_dict()
    plain["tune"]["space"] = {}

    def check_value(key, value):
        section, name = key.split(".", 1)
        d = copy.deepcopy(plain)
        d[section][name] = value
        try:
            _build(d, source)
        except ConfigError as e:
            raise ConfigError(f"{source}: tune.space.{key}: the value {value!r} is not valid: "
                              f"{str(e).split(': ', 1)[-1]}") from None

    return parse_space(cfg.tune.space, key_types, check_value, source)


def _override_error(values: dict) -> dict:
    extra = {k: v for k, v in values.items() if k in FINETUNE_OVERRIDABLE}
    try:
        TrainingConfig.model_validate(extra)
    except ValidationError as e:
        return e.errors(include_url=False)[0]
    return {"loc": (), "type": "value_error", "msg": "invalid", "input": None}


def _check_consistency(cfg: Config, source: str) -> None:
    t, dc = cfg.training, cfg.data
    if t.spinup >= t.seq_len:
        raise ConfigError(f"{source}: training.spinup={t.spinup} must be smaller than training.seq_len={t.seq_len}")
    if t.forecast_leads >= t.seq_len:  # the window must hold the issue date
        raise ConfigError(f"{source}: training.forecast_leads={t.forecast_leads} must be smaller than "
                          f"training.seq_len={t.seq_len}")
    for key in ("dynamic_inputs", "static_attributes"):
        values = getattr(dc, key)
        twice = next((v for i, v in enumerate(values) if v in values[:i]), None)
        if twice is not None:  # a second column of the same input (a traceback for a static attribute)
            raise ConfigError(f"{source}: data.{key} lists {twice!r} twice; name each input once")
    qs = cfg.model.quantiles
    if qs and (any(not 0 < q < 1 for q in qs) or any(a >= b for a, b in itertools.pairwise(qs)) or 0.5 not in qs):
        raise ConfigError(f"{source}: model.quantiles={qs} must be empty or increasing numbers in (0, 1) "
                          "that include 0.5 (the median)")
    if dc.lead_days >= t.seq_len - t.spinup:
        raise ConfigError(f"{source}: data.lead_days={dc.lead_days} must be smaller than training.seq_len - "
                          f"training.spinup = {t.seq_len} - {t.spinup} = {t.seq_len - t.spinup}")
    dates = {}
    for k, v in dc.model_dump(include={"train_start", "train_end", "val_start", "val_end", "test_start",
                                       "test_end"}).items():
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


class _UserConfigLoader(yaml.SafeLoader):
    """Safe YAML where an unquoted date stays the text written: the config checks it and names a bad one
    (``data.train_start='1971-13-01' is not a date``), where PyYAML would raise a bare ValueError."""


_UserConfigLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}


def _mapping_without_repeats(loader, node, deep=False):
    """A key written twice in one mapping is an error: PyYAML would keep the last one, silently (two
    ``epochs:`` lines, or a section pasted twice, would each drop settings the user sees in the file)."""
    seen = {}
    for key_node, _ in node.value:
        key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
        if key is None or key == "<<":
            continue
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} is given twice (lines {seen[key]} and {key_node.start_mark.line + 1}); "
                            "keep one")
        seen[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node, deep)


_UserConfigLoader.add_constructor("tag:yaml.org,2002:map", _mapping_without_repeats)


def _yaml_problem(e: yaml.YAMLError) -> str:
    """What is wrong and where, in one line: PyYAML's first line is only the context ("while scanning for
    the next token"), the problem and its line come after it."""
    problem, mark = getattr(e, "problem", None), getattr(e, "problem_mark", None)
    if not problem:
        return " ".join(str(e).split())
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    tab = "; indent with spaces, not tabs" if "'\\t'" in problem else ""
    return f"{problem}{where}{tab}"


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
    if p.is_dir():
        raise ConfigError(f"config file {source} is a folder; expected a YAML file")
    if not p.is_file():
        raise ConfigError(f"config file {source} does not exist")
    try:
        with open(p, encoding="utf-8") as f:
            user = yaml.load(f, Loader=_UserConfigLoader)  # a SafeLoader: no Python objects
    except UnicodeDecodeError as e:
        raise ConfigError(f"config file {source} is not UTF-8 text (byte {e.object[e.start]:#04x} at offset "
                          f"{e.start}); save it as UTF-8") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {source} is not valid YAML: {_yaml_problem(e)}") from None
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
