"""Which days of a basin fine-tuning may read and which days are its test part.

Rule (one place, used by fine-tuning and prediction alike):

- **configured**: a basin with at least ``data.min_train_flows`` observed flows in the configured training
  period, and observed flows in the configured validation and test periods, keeps the configured
  periods (every CAMELS-GB basin: unchanged behaviour). Fine-tuning reads train_start..val_end,
  prediction scores test_start..test_end.
- **station**: any other basin (a station of its own, 2010-2024, say), any station written by
  ``sca2lstm station import`` (whatever years it covers: the configured periods are CAMELS-GB's water
  years, not the station's), or any basin given an explicit ``--test_start``, follows its own record. Its test part is the last ``data.station_test_fraction`` of its observed
  discharge days (or ``--test_start``..its last observed day); fine-tuning reads the days before it,
  split by ``--fine_tune_ratio`` in time order, and its discharge scale is fitted on its own training
  part. For an imported station the 20 % are of the days it was imported with: days appended later join
  the test part, so a forecast of a past issue date does not change as new observations arrive. The
  record needs at least ``MIN_OBSERVED_DAYS`` (two years) of observed discharge.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import numpy as np

from ..config import Config
from ..errors import DataError, UsageError
from .station import MIN_OBSERVED_DAYS, WARN_OBSERVED_DAYS

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class BasinPeriods:
    """``rule`` ('configured' or 'station'); fine-tuning reads [fit_start, fit_end], the test is
    [test_start, test_end] (all ``numpy.datetime64[D]``, inclusive)."""

    rule: str
    fit_start: np.datetime64
    fit_end: np.datetime64
    test_start: np.datetime64
    test_end: np.datetime64

    def to_dict(self) -> dict:
        return {"rule": self.rule, "fine_tune": [str(self.fit_start), str(self.fit_end)],
                "test": [str(self.test_start), str(self.test_end)]}

    @classmethod
    def from_dict(cls, d: dict) -> BasinPeriods:
        f, t = [np.datetime64(str(v), "D") for v in d["fine_tune"]], [np.datetime64(str(v), "D") for v in d["test"]]
        return cls(str(d["rule"]), f[0], f[1], t[0], t[1])


def parse_day(value, flag: str):
    """A day given by a user: text ``YYYY-MM-DD`` (a time after it, ``T12:00``, is dropped), ``YYYYMMDD``, or
    ``YYYY/MM/DD`` and ``YYYY.MM.DD`` (year first: read so in every table too), or a date object.

    Other text is refused, never guessed: ``01/09/2015`` is 9 January to pandas and 1 September to a British
    or Chinese reader, and ``19760109`` is the year 19760109 to numpy.

    Returns
    -------
    pandas.Timestamp
        Midnight of the day.

    Raises
    ------
    UsageError
        ``"<flag> '<value>' is not a date; expected YYYY-MM-DD"``.
    """
    import datetime as dt

    import pandas as pd

    try:
        if isinstance(value, str):
            s = value.strip()
            m = re.fullmatch(r"(\d{4})([/.])(\d{1,2})\2(\d{1,2})", s)
            if m:  # year first, so unambiguous: 2012/11/20 as the tables read it
                s = f"{m.group(1)}-{int(m.group(3)):02d}-{int(m.group(4)):02d}"
            return pd.Timestamp(dt.date.fromisoformat(s) if len(s) == 10 else dt.datetime.fromisoformat(s).date())
        return pd.Timestamp(value).normalize()
    except (ValueError, TypeError):
        raise UsageError(f"{flag} {value!r} is not a date; expected YYYY-MM-DD") from None


def parse_day64(value, flag: str) -> np.datetime64:
    """:func:`parse_day` as a ``datetime64[D]``."""
    return np.datetime64(parse_day(value, flag).date(), "D")


def covers_configured(rec, cfg: Config) -> bool:
    """Whether ``rec`` has enough observed flows in the configured train, validation and test periods."""
    d = cfg.data
    min_flows = d.min_train_flows

    def n_obs(start, end) -> int:
        i0, i1 = rec.period(start, end)
        return int(np.isfinite(rec.y[i0:i1]).sum())
    return (n_obs(d.train_start, d.train_end) >= min_flows and n_obs(d.val_start, d.val_end) > 0
            and n_obs(d.test_start, d.test_end) > 0)


def basin_periods(rec, cfg: Config, test_start=None, own_record: bool = False, split_until=None) -> BasinPeriods:
    """The periods of ``rec`` by the module's rule; ``test_start`` (that day) or ``own_record`` (an imported
    station) force the station rule.

    ``split_until`` (a date; an imported station's last imported day): the test start is the last
    ``station_test_fraction`` of the observed days up to it, so days observed later (the service appends
    them) join the test part and never move the days fine-tuning, the scale and the blend are fitted on.
    """
    d = cfg.data
    if test_start is None and not own_record and covers_configured(rec, cfg):
        return BasinPeriods("configured", *(np.datetime64(v, "D") for v in (d.train_start, d.val_end, d.test_start,
                                                                             d.test_end)))
    rec.require_flows()
    every = np.flatnonzero(np.isfinite(rec.y))
    obs = every if split_until is None else every[rec.dates[every] <= np.datetime64(str(split_until)[:10], "D")]
    n = len(obs)
    if n < MIN_OBSERVED_DAYS:
        span = f" ({rec.dates[obs[0]]}..{rec.dates[obs[-1]]})" if n else ""
        raise DataError(f"basin {rec.basin}: {n} days of observed discharge{span}; the minimum is "
                        f"{MIN_OBSERVED_DAYS} days (2 years) when the record does not cover the configured "
                        f"periods ({d.train_start}..{d.test_end})")
    first, last = rec.dates[obs[0]], rec.dates[every[-1]]
    fraction = d.station_test_fraction
    if test_start is None:
        ts = rec.dates[obs[min(int(np.ceil(n * (1 - fraction))), n - 1)]]
    else:
        ts = parse_day64(test_start, "--test_start")
        if ts > last:
            raise UsageError(f"--test_start {ts} is after the end of basin {rec.basin}'s record (last observed "
                             f"discharge {last}); choose a day in {first}..{last}")
        if ts <= first:
            raise UsageError(f"--test_start {ts} leaves no days before it to fine-tune on (basin {rec.basin}'s "
                             f"record starts {first}); choose a day in {first}..{last}")
    n_before = int((rec.dates[obs] < ts).sum())
    if n_before < MIN_OBSERVED_DAYS * (1 - fraction):
        raise DataError(f"basin {rec.basin}: {n_before} observed days before the test start {ts}; at least "
                        f"{int(MIN_OBSERVED_DAYS * (1 - fraction))} are needed to fine-tune (train and "
                        "validation); choose a later --test_start")
    if n < WARN_OBSERVED_DAYS:
        log.warning("basin %s: only %d days (%.1f years) of observed discharge; it works, but the test part "
                    "is short and its scores uncertain", rec.basin, n, n / 365.25)
    return BasinPeriods("station", first, ts - np.timedelta64(1, "D"), ts, last)


def require_usable(rec, cfg: Config, own_record: bool = False, split_until=None) -> None:
    """A one-line DataError where no command can use ``rec``: pretraining leaves it out (fewer than
    ``data.min_train_flows`` observed flows in the configured training period) and fine-tuning and prediction
    refuse it (:func:`basin_periods`: it neither covers the configured periods nor has ``MIN_OBSERVED_DAYS``
    of its own). The message names the days it has and the days each needs. ``own_record``, ``split_until``:
    as for :func:`basin_periods`."""
    d = cfg.data
    i0, i1 = rec.period(d.train_start, d.train_end)
    n_train = int(np.isfinite(rec.y[i0:i1]).sum())
    if n_train >= d.min_train_flows:
        return  # pretraining trains on it, whatever its other periods hold
    try:
        basin_periods(rec, cfg, own_record=own_record, split_until=split_until)
    except DataError as e:
        raise DataError(f"{e}; nor can pretraining use it: {n_train} days of observed discharge in the training "
                        f"period {d.train_start}..{d.train_end}, where it needs {d.min_train_flows} "
                        "(data.min_train_flows)") from None


def fit_split(rec, periods: BasinPeriods, ratio: float) -> tuple[int, int, int]:
    """Indices ``(i0, i_split, i1)`` of ``rec``'s fine-tuning days: [i0, i_split) trains, [i_split, i1)
    validates; the first ``ratio`` of [fit_start, fit_end] in time order, never random."""
    i0, i1 = rec.period(periods.fit_start, periods.fit_end)
    if i1 - i0 < 2:
        raise DataError(f"basin {rec.basin}: no data in the fine-tuning period {periods.fit_start}..{periods.fit_end} "
                        f"(its record covers {rec.dates[0]}..{rec.dates[-1]})")
    return i0, i0 + int(np.floor((i1 - i0) * ratio)), i1
