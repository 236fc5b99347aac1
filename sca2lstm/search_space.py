"""The hyper-parameter search space of ``sca2lstm tune``, read from the config's ``tune.space``.

Each entry names a config key as ``section.key`` and its range::

    tune:
      space:
        training.learning_rate: {low: 1.0e-4, high: 1.0e-2, log: true}   # float, log scale
        model.hidden_size: {low: 16, high: 128, step: 16}               # int (the key is an integer)
        training.batch_size: {choices: [16, 32, 64]}                    # categorical
        model.dropout: {low: 0.0, high: 0.5}                            # float, linear

The kind follows the key's type in the config: an integer key gets integer ranges, a number key float
ranges, and a true/false or text key needs ``choices``. ``low``/``high`` must both be given with
``low < high``; ``log`` needs ``low > 0``; with ``step``, ``high - low`` must be a whole number of steps;
``choices`` must not be empty; every bound and choice must itself be a valid value of the key
(``model.dropout`` up to 1.5 is refused). Each mistake is one :class:`~sca2lstm.errors.ConfigError` line
naming the entry.

This module only parses; it imports neither Optuna nor torch, so the config can check a space at load.
"""

from __future__ import annotations

import difflib
import math
from decimal import Decimal
from dataclasses import dataclass
from typing import Any, Callable

from .config import yaml_number
from .errors import ConfigError

ENTRY_KEYS = ("low", "high", "log", "step", "choices")


@dataclass(frozen=True)
class Dimension:
    """One searched key. ``kind``: ``float``, ``int`` or ``categorical``."""

    key: str          # "section.key"
    kind: str
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple = ()

    @property
    def section(self) -> str:
        return self.key.split(".", 1)[0]

    @property
    def name(self) -> str:
        return self.key.split(".", 1)[1]


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def parse_space(space: Any, key_types: dict[str, str], check_value: Callable[[str, Any], None] | None = None,
                source: str = "config") -> list[Dimension]:
    """Validate ``tune.space`` and return its dimensions in the order written.

    Parameters
    ----------
    space : dict
        ``{"section.key": {low, high, log, step} or {choices}}``.
    key_types : dict
        ``{"section.key": "int" | "float" | "bool" | "str" | "list" | ...}``: the keys that may be
        searched and their types (from the config's dataclasses).
    check_value : callable, optional
        ``check_value(key, value)`` raises ConfigError when ``value`` is not valid for ``key``
        (out of range); bounds and choices are passed through it.

    Raises
    ------
    ConfigError
        One line naming the bad entry and what is allowed.
    """
    where = f"{source}: tune.space"
    if space is None:
        return []
    if not isinstance(space, dict):
        raise ConfigError(f"{where} must be a mapping of section.key to a range, got {type(space).__name__}")
    dims = []
    for key, spec in space.items():
        key = str(key)
        searchable = [k for k, t in key_types.items() if t != "list"]
        if key not in key_types:
            # the key meant: the same name in another section, or a typo of a whole key (training.learning_rat)
            close = sorted(k for k in searchable if k.split(".")[-1] == key.split(".")[-1])
            close = close or difflib.get_close_matches(key, searchable, n=2, cutoff=0.8)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise ConfigError(f"{where}: unknown key {key!r}{hint}; name a config key as section.key, "
                              f"e.g. training.learning_rate")
        tp = key_types[key]
        if tp == "list":
            raise ConfigError(f"{where}.{key}: the key holds a list, which cannot be searched; search keys of one "
                              f"value, e.g. training.learning_rate")
        if not isinstance(spec, dict):
            raise ConfigError(f"{where}.{key}: expected a mapping with low/high (log, step) or choices, got {spec!r}")
        bad = [k for k in spec if k not in ENTRY_KEYS]
        if bad:
            raise ConfigError(f"{where}.{key}: unknown field(s) {bad}; allowed: {', '.join(ENTRY_KEYS)}")
        if "choices" in spec:
            dims.append(_categorical(key, spec, tp, check_value, where))
        else:
            dims.append(_numeric(key, spec, tp, check_value, where))
    return dims


def _categorical(key, spec, tp, check_value, where) -> Dimension:
    extra = [k for k in spec if k != "choices"]
    if extra:
        raise ConfigError(f"{where}.{key}: give either choices or low/high, not both (also got {extra})")
    choices = spec["choices"]
    if not isinstance(choices, (list, tuple)):
        raise ConfigError(f"{where}.{key}: choices must be a list, got {choices!r}")
    if not choices:
        raise ConfigError(f"{where}.{key}: choices is empty; give at least one value")
    if any(isinstance(c, (list, dict)) for c in choices):
        raise ConfigError(f"{where}.{key}: choices must be plain values (numbers, true/false, text), got {choices!r}")
    if len(set(map(repr, choices))) != len(choices):
        raise ConfigError(f"{where}.{key}: choices {choices!r} repeat a value")
    if check_value is not None:
        for c in choices:
            check_value(key, c)
    return Dimension(key, "categorical", choices=tuple(choices))


def _numeric(key, spec, tp, check_value, where) -> Dimension:
    if tp not in ("int", "float"):
        raise ConfigError(f"{where}.{key}: the key is {tp}, not a number; search it with choices: [...]")
    missing = [k for k in ("low", "high") if k not in spec]
    if missing:
        raise ConfigError(f"{where}.{key}: missing {' and '.join(missing)}; give low and high, or choices")
    low, high = yaml_number(spec["low"]), yaml_number(spec["high"])
    for name, v in (("low", low), ("high", high)):
        if not _number(v):
            raise ConfigError(f"{where}.{key}: {name}={spec[name]!r} must be a finite number")
        if tp == "int" and not float(v).is_integer():
            raise ConfigError(f"{where}.{key}: {name}={v!r} must be an integer (the key is an integer)")
    if not low < high:
        raise ConfigError(f"{where}.{key}: low={low!r} must be smaller than high={high!r}")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise ConfigError(f"{where}.{key}: log={log!r} must be true or false")
    if log and low <= 0:
        raise ConfigError(f"{where}.{key}: log: true needs low > 0, got low={low!r}")
    step = yaml_number(spec.get("step"))
    if step is not None:
        if not _number(step) or step <= 0:
            raise ConfigError(f"{where}.{key}: step={spec['step']!r} must be a number > 0")
        if log:
            raise ConfigError(f"{where}.{key}: step and log: true cannot be combined")
        if tp == "int" and not float(step).is_integer():
            raise ConfigError(f"{where}.{key}: step={step!r} must be an integer (the key is an integer)")
    if tp == "int":
        low, high = int(low), int(high)
        step = int(step) if step is not None else 1
    else:
        low, high = float(low), float(high)
        step = float(step) if step is not None else None
    if step is not None:
        # Optuna would search low..(the last step below high) instead, with a warning per trial on stderr.
        # Decimal on the written numbers, as Optuna does: 0.3 - 0.1 is no float multiple of 0.1.
        span, size = Decimal(str(high)) - Decimal(str(low)), Decimal(str(step))
        if span % size != 0:
            last = Decimal(str(low)) + (span // size) * size
            last = int(last) if tp == "int" else float(last)
            raise ConfigError(f"{where}.{key}: high={high!r} is not low={low!r} plus a whole number of steps of "
                              f"{step!r}; e.g. high: {last!r}")
    if check_value is not None:
        check_value(key, low)
        check_value(key, high)
    return Dimension(key, tp, low, high, log, step)


def nested_values(values: dict) -> dict:
    """``{"training.learning_rate": 1e-3}`` -> ``{"training": {"learning_rate": 1e-3}}``."""
    out: dict = {}
    for k, v in values.items():
        section, name = k.split(".", 1)
        out.setdefault(section, {})[name] = v
    return out
