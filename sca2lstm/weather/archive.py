"""Archives of past weather forecasts: a station's forecasts by issue date and lead, for training and reforecasts.

An archive is a long table (CSV) ``issue_date, lead_days, valid_date[, member], <inputs>`` with the
model's input names (``precipitation``, ``temperature``, and ``pet``/``peti`` if given): the forecast
issued for issue date t0 (the last day with observations; the forecast is used the morning after it)
for the valid days t0 + 1 ... It lives at ``DIR/weather_archive/<id>.csv`` (``sca2lstm weather archive
--out`` writes it there), where pretraining, fine-tuning and reforecasts find it:

* training and fine-tuning (:class:`ArchiveLookup`): a weather-known issue-time window whose issue date
  the archive holds takes the archived forecast for its lead days instead of the observed weather (one
  member drawn at random where there are several), so the model learns the real forecasts' errors;
* reforecasts (:func:`weather_for_issue`): the weather of (issue date, lead) as the forecaster had it.

An archive without PET gets PET the way the model's config derives it
(:func:`sca2lstm.weather.files.complete_pet`), never another kind, each run as that run alone would get it
(:func:`sca2lstm.weather.files.pet_ways`).
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError
from ..notes import Note
from ..data.dataset import basin_pet_source
from ..words import Said
from .files import (PetRule, WeatherForecast, check_location, complete_pet, gauge_latitude, note_oudin_pet, pet_input,
                    pet_rule, pet_way_counts, pet_ways, pet_ways_text, read_forecast_file, station_pet)

log = logging.getLogger(__name__)
ARCHIVE_DIR = "weather_archive"


def archive_candidates(data_dir, basin: str) -> list[Path]:
    """The paths a station's archive may have: ``DIR/weather_archive/<id>.csv`` and ``.csv.gz`` (none without a
    folder)."""
    if data_dir is None:
        return []
    return [Path(data_dir) / ARCHIVE_DIR / name for name in (f"{basin}.csv", f"{basin}.csv.gz")]


def archive_path(data_dir, basin: str) -> Path | None:
    """``DIR/weather_archive/<id>.csv`` (or ``.csv.gz``) if it exists, else None."""
    return next((p for p in archive_candidates(data_dir, basin) if p.is_file()), None)


def read_archive(path, cfg, lat: float, rule: PetRule | None = None) -> WeatherForecast:
    """An archive with the model's weather inputs (PET completed as the config derives it, and as a reforecast
    reads it: :func:`with_model_pet`).

    Raises a one-line DataError for a file that is not an archive (no ``issue_date``/``lead_days``) or
    lacks an input the model reads. A day without the temperature the model derives its PET from gets no
    PET: its member is incomplete there and left out of that issue date (:class:`ArchiveLookup`), as a
    reforecast leaves it out (:func:`with_model_pet`), rather than the whole archive refused. ``rule``: the
    station's :class:`~sca2lstm.weather.files.PetRule` (PET of the kind of its history; None: the config's).
    """
    wf = read_forecast_file(path)
    src = Note("weather_archive", path=str(path))  # a note's value too: said in the reader's language
    if wf is None or wf.table["issue_date"].isna().any():
        raise DataError(f"{src}: expected columns issue_date, lead_days, valid_date[, member], <inputs>")
    # as a reforecast reads it: a gap leaves its member incomplete on that day, no more
    wf = with_model_pet(WeatherForecast(wf.table, src, wf.location), cfg, lat, rule)
    missing = [c for c in cfg.data.dynamic_inputs if c not in wf.table.columns]
    if missing:
        raise DataError(f"{src}: lacks the model input(s) {missing}; it has {list(wf.table.columns)}")
    return wf


class IssueTable:
    """One archive's forecasts as arrays, by issue day: what the trainer and the reforecasts index.

    Built in one pass over the table (ten years of 20-member forecasts are some 73 000 runs; a loop over
    them took half a minute). ``days`` [n] are the issue days (days since ``first_date``), ascending;
    ``values`` [n, M, leads, len(inputs)] the forecast of lead k of each run at ``[..., k - 1, :]`` (NaN where
    the archive has no value), the runs of an issue day in the order of their member numbers and ``M`` the
    most members an issue day holds; ``members`` [n] how many of them each issue day holds; ``complete``
    [n, M] which runs have every lead and input (False at the places of runs a day does not hold).
    """

    def __init__(self, table: pd.DataFrame, inputs, first_date, leads: int):
        first = pd.Timestamp(first_date)
        day = (table["issue_date"] - first).dt.days.to_numpy(np.int64)
        lead = (table["valid_date"] - table["issue_date"]).dt.days.to_numpy(np.int64)
        member = table["member"].to_numpy(np.int64)
        self.days, d = np.unique(day, return_inverse=True)
        runs = pd.DataFrame({"d": d, "m": member}).drop_duplicates().sort_values(["d", "m"])
        slot_of_run = runs.groupby("d").cumcount().to_numpy()
        slot = slot_of_run[pd.MultiIndex.from_frame(runs).get_indexer(pd.MultiIndex.from_arrays([d, member]))]
        self.members = np.bincount(runs["d"].to_numpy(), minlength=len(self.days))
        M = int(self.members.max()) if len(self.days) else 0
        self.values = np.full((len(self.days), M, int(leads), len(inputs)), np.nan)
        ok = (lead >= 1) & (lead <= leads)
        self.values[d[ok], slot[ok], lead[ok] - 1] = table[list(inputs)].to_numpy(np.float64)[ok]
        self.complete = np.isfinite(self.values).all(axis=(2, 3))

    def __len__(self) -> int:
        return len(self.days)

    def index(self, day) -> int | None:
        """Position of issue day ``day`` in :attr:`days`, None where the archive lacks it."""
        i = int(np.searchsorted(self.days, day))
        return i if i < len(self.days) and self.days[i] == day else None


class ArchiveLookup:
    """Archived forecasts by (basin index, basin-local issue day), for the trainer.

    Parameters
    ----------
    records : list of BasinRecord
        The training data's basins, in order (their ``dates`` map issue dates to day indices).
    archives : dict of basin id -> WeatherForecast
        From :func:`read_archive`.
    inputs : list of str
        The weather inputs to return (the model's, :attr:`sca2lstm.weather.windows.LeadWeather.inputs`).
    leads : int
        The most lead days looked up (``training.forecast_leads``).
    """

    def __init__(self, records, archives: dict, inputs, leads: int):
        self.inputs = list(inputs)
        #: basin id -> what a checkpoint records of the archive its weights trained on (:func:`load_archives`)
        self.sources: dict = {}
        self.basins = [rec.basin for rec in records]
        self.by_basin = [IssueTable(archives[rec.basin].table, self.inputs, rec.dates[0], leads)
                         if rec.basin in archives else None for rec in records]
        for rec, table in zip(records, self.by_basin):
            if table is None or not len(table):
                continue
            complete = table.complete.sum(axis=1)   # [days] complete members
            left = table.members - complete
            if left.any():
                log.info("Basin %s: %d archived member forecast(s) on %d issue date(s) incomplete on their lead "
                         "days (a gap, or no temperature for the PET) left out of its windows; %d issue date(s) "
                         "with no complete member have no archived forecast", rec.basin, int(left.sum()),
                         int((left > 0).sum()), int((complete == 0).sum()))

    def __bool__(self) -> bool:
        return any(t is not None and len(t) for t in self.by_basin)

    def trained_sources(self, periods) -> dict:
        """:attr:`sources` of the basins whose archive holds a forecast complete on every lead issued within their
        training days ``periods`` (``[(i0, i1)]`` per record, as the trainer gets them): an archive of other years
        (one of 2024 on, beside training years that end earlier) fed no training window, and the weights did not
        learn its rain."""
        counts = self.trained_issue_dates(periods)
        return {basin: self.sources[basin] for basin, n in counts.items() if n}

    def trained_issue_dates(self, periods) -> dict:
        """Per basin with an archive, how many of its issue dates within the training days ``periods`` hold a
        forecast complete on every lead: those the training windows can read (the log says how many of the
        archive's issue dates that is, not only that it is read)."""
        out = {}
        for basin, table, (i0, i1) in zip(self.basins, self.by_basin, periods):
            if table is None or basin not in self.sources:
                continue
            inside = (table.days >= i0) & (table.days < i1)
            out[basin] = int((inside & table.complete.any(axis=1)).sum())
        return out

    def lookup(self, basin_idx, issue_day, leads: int, rng):
        """(forecast name -> [B, leads] (NaN where the archive lacks a day), found [B]) for each window.

        A window is found when its basin's archive holds its issue day with a member complete on every
        lead 1..leads of every input; with several complete members one is drawn (an incomplete member is
        left out of that issue day, as a reforecast leaves it out).
        """
        B = len(basin_idx)
        out = np.full((B, leads, len(self.inputs)), np.nan)
        found = np.zeros(B, dtype=bool)
        for i, (b, t) in enumerate(zip(np.asarray(basin_idx), np.asarray(issue_day))):
            table = self.by_basin[int(b)]
            j = table.index(int(t)) if table is not None else None
            if j is None:
                continue
            runs = table.values[j, :int(table.members[j]), :leads]
            ok = np.flatnonzero(np.isfinite(runs).all(axis=(1, 2))) if runs.shape[1] == leads else []
            if len(ok):  # all complete: the draw is the one made before incomplete members were left out
                out[i], found[i] = runs[ok[int(rng.integers(len(ok)))] if len(ok) > 1 else ok[0]], True
        return {n: out[:, :, j] for j, n in enumerate(self.inputs)}, found


def load_archives(data_dir, records, cfg, inputs, periods=None) -> ArchiveLookup | None:
    """The archives of the training basins found under ``DIR/weather_archive/`` (None if there are none); its
    ``sources`` say which file each basin's came from (a checkpoint records them: ``weather_archives``).
    ``periods``: the training days, ``[(i0, i1)]`` per record (None: not known), for the log line of each
    archive: whether a training window reads it (:meth:`ArchiveLookup.trained_sources`)."""
    archives, sources, paths = {}, {}, {}
    for rec in records:
        p = archive_path(data_dir, rec.basin)
        if p is not None:
            # each run's PET of the kind the basin's history read (Oudin PET derived for it: never ET0)
            rule = pet_rule(cfg, basin_pet_source(data_dir, rec.basin, cfg))
            archives[rec.basin] = read_archive(p, cfg, gauge_latitude(data_dir, rec.basin), rule)
            check_location(archives[rec.basin], data_dir, rec.basin)  # one fetched for another station: refused
            dates = archives[rec.basin].issue_dates
            sources[rec.basin] = {"file": str(p.expanduser().absolute()), "issue_dates": len(dates),
                                  "first": str(dates[0].date()), "last": str(dates[-1].date()),
                                  "precipitation": "as given"}
            # each run's PET as a forecast of its date reads it: a fetched run's ET0 and a posted run's Oudin PET
            ways = pet_way_counts(archives[rec.basin].pet_runs)
            if ways:
                sources[rec.basin]["pet"] = ways
            if len(ways) > 1:  # runs that differ in PET: said (one way for all is the rule of docs/weather.md)
                log.info("Basin %s: %s: %s", rec.basin, p, pet_ways_text(ways, pet_input(cfg), column=rule.column))
            paths[rec.basin] = p
    if not archives:
        return None
    lookup = ArchiveLookup(records, archives, inputs, cfg.training.forecast_leads)
    lookup.sources = sources
    # per basin, the issue dates its training windows can read (None: the training days are not known)
    counts = lookup.trained_issue_dates(periods) if periods is not None else None
    for j, rec in enumerate(records):
        src = sources.get(rec.basin)
        if src is None:
            continue
        i0, i1 = periods[j] if periods is not None else (0, 0)
        days = f"{rec.dates[i0]}..{rec.dates[i1 - 1]}" if i1 > i0 else "none"
        if counts is None:
            log.info("Basin %s: weather forecast archive %s (%d issue dates) feeds its issue-time windows",
                     rec.basin, paths[rec.basin], src["issue_dates"])
        elif counts.get(rec.basin):
            # the count, not the file's size: an archive of 2024 on feeds only the training days it overlaps
            log.info("Basin %s: weather forecast archive %s (%d issue dates, %d of them complete and issued in its "
                     "training days %s) feeds its issue-time windows", rec.basin, paths[rec.basin],
                     src["issue_dates"], counts[rec.basin], days)
        else:  # an archive of 2024 on beside training days that end earlier: named, not claimed to be learned
            log.info("Basin %s: weather forecast archive %s (%d issue dates, %s..%s) holds no complete forecast "
                     "issued in its training days (%s): training reads none of it", rec.basin, paths[rec.basin],
                     src["issue_dates"], src["first"], src["last"], days)
    return lookup


def weather_for_issue(archive: WeatherForecast, issue_date, leads: int, inputs) -> pd.DataFrame:
    """The archived weather of ``issue_date`` for leads 1..``leads``: ``member, date, <inputs>`` (the long
    table ``forecast --weather_forecast`` and :func:`sca2lstm.evaluation.operational.issue_forecast` read;
    a one-line DataError if the archive lacks that issue date or a lead day)."""
    members = archive.members(issue_date, leads, inputs)
    return pd.concat([m.assign(member=i) for i, m in enumerate(members)], ignore_index=True)[
        ["member", "date", *inputs]]


def with_model_pet(wf: WeatherForecast, cfg, lat: float, rule: PetRule | None = None) -> WeatherForecast:
    """``wf`` with the PET the model reads (:func:`sca2lstm.weather.files.complete_pet`; one line naming the file).

    Each run (an issue date's member) gets its PET as that run alone, the forecast of its date, would get it
    (:func:`sca2lstm.weather.files.pet_ways`): an archive of fetched runs (with ET0) and posted ones (temperature
    only) feeds both, each with its PET, and ``pet_runs`` of the result says which run got it which way.
    A day without temperature gets no PET where PET is derived from it: its member is incomplete on that day,
    as it is without a value of an input, and left out of that issue date (not the whole archive refused).
    ``rule``: the basin's :class:`~sca2lstm.weather.files.PetRule` (PET of the kind its history read, as the
    single forecast of the basin gets it; None: the config's rule)."""
    rule = rule or pet_rule(cfg)
    t = station_pet(wf.table.rename(columns={"valid_date": "date"}), rule)
    pet, mode = pet_input(cfg), rule.mode
    note_oudin_pet(t, pet, mode, wf.source, rule)
    runs = None
    if pet is not None:
        runs = (pd.DataFrame({"issue_date": t["issue_date"].to_numpy(), "member": t["member"].to_numpy(),
                              "way": pet_ways(t, pet, mode, et0=rule.et0)})
                .drop_duplicates(["issue_date", "member"]).reset_index(drop=True))
    try:
        t = complete_pet(t, pet, mode, lat, gaps=True, et0=rule.et0)
    except DataError as e:
        raise DataError(f"{wf.source}: {e}") from None
    return WeatherForecast(t.rename(columns={"date": "valid_date"}), wf.source, wf.location, runs)


class ArchivedForecast:
    """An archive's forecasts put into batches of windows, for batched reforecasts.

    Called as ``f(x, miss, b, t, pos)`` like :class:`sca2lstm.weather.windows.EmulatedForecast`: one (x, miss)
    per member, each window with the archived forecast of its issue day (``first_date`` + ``t``) for the
    lead days; an issue day the archive lacks gets missing weather (:meth:`available` tells which).

    An issue date is used as a single forecast uses it (:meth:`sca2lstm.weather.files.WeatherForecast.members`):
    a member that lacks a lead day or a value is left out where at least half of the date's members are
    complete, so issue dates may hold different numbers of members (:meth:`absent` says which of the
    ``members`` runs of each window are left out of its mixture). An ensemble's date left with one complete
    member is issued from it as a single forecast issues it, as one weather run (:meth:`used` says which dates,
    :meth:`alone` gives their runs). An archive whose dates hold one forecast on some and an ensemble on others
    is refused, except one of one run a day with a few dates of several (fewer than half of them; a run fetched
    twice): those dates are left out (:meth:`why_unavailable`).
    """

    def __init__(self, lead_weather, archive: WeatherForecast, first_date, leads: int, width: int | None = None):
        # leads: the lead days read from the archive; width: the model's lead days (training.forecast_leads),
        # those beyond the leads asked for get no weather, as a single forecast of fewer leads gives them none
        self.lw, self.leads = lead_weather, int(leads)
        self.width = self.leads if width is None else int(width)
        missing = [c for c in lead_weather.inputs if c not in archive.table.columns]
        if missing:
            raise DataError(f"{archive.source}: lacks the model input(s) {missing}")
        self.table = IssueTable(archive.table, lead_weather.inputs, first_date, self.leads)
        held = self.table.members
        # an archive of one run a day with a few dates of several (a run fetched twice): which of a date's runs is the
        # day's run is not known, so those dates are left out (why_unavailable), as the lagged combination leaves
        # them as given (sca2lstm.weather.lagged); a span of as many dates of several runs as of one (an archive
        # switched to an ensemble) is still refused: it is not known which kind the span is
        self.several = (held > 1) if len(held) and 2 * int((held > 1).sum()) < len(held) else np.zeros(len(held), bool)
        if len(held) and held.min() == 1 < held.max() and not self.several.any():
            one = pd.Timestamp(first_date) + pd.Timedelta(days=int(self.table.days[np.argmax(held == 1)]))
            raise DataError(f"{archive.source}: issue date {one.date()} holds one forecast and others an ensemble (up "
                            f"to {int(held.max())} members); a reforecast issues its dates alike: give every date "
                            "its members, or reforecast the spans apart")
        self.members = 1 if self.several.any() else int(held.max()) if len(held) else 1
        self.complete = self.table.complete                                     # [days, members]
        n = self.complete.sum(axis=1)
        # the rule of a single forecast (WeatherForecast.members): at least one member, and half of those held
        self.usable = (n >= 1) & (2 * n >= held) & ~self.several

    def available(self, issue_days) -> np.ndarray:
        """[n] bool: the archive holds each issue day with enough complete members (every lead, every input)."""
        return np.array([self._day(int(t)) is not None for t in np.asarray(issue_days)], dtype=bool)

    def absent(self, issue_days) -> np.ndarray:
        """[n, members] bool: the runs left out of each issue day's mixture (its incomplete members, and the
        places of the members it does not hold); none for an issue day that is not :meth:`available`."""
        out = np.zeros((len(np.asarray(issue_days)), self.members), dtype=bool)
        for i, t in enumerate(np.asarray(issue_days)):
            j = self._day(int(t))
            if j is not None:
                out[i, int(self.complete[j].sum()):] = True
        return out

    def used(self, issue_days) -> np.ndarray:
        """[n] int: the complete members each issue day is issued from (0 where it is not :meth:`available`)."""
        out = np.zeros(len(np.asarray(issue_days)), dtype=np.int64)
        for i, t in enumerate(np.asarray(issue_days)):
            j = self._day(int(t))
            if j is not None:
                out[i] = int(self.complete[j].sum())
        return out

    def alone(self) -> ArchivedForecast:
        """This archive as one weather run per issue date (its first complete member): the runs of an ensemble's
        dates left with one complete member, which a single forecast issues as one weather forecast (flagged as
        a forecast, with the forecast spread), not as an ensemble of one."""
        one = copy.copy(self)
        one.members = 1
        return one

    def why_unavailable(self, issue_day) -> str | None:
        """Why issue day ``issue_day`` is not :meth:`available`, in a few words; None where it is."""
        j = self.table.index(int(issue_day))
        if j is None:
            return Said("no_archive_forecast")
        if self.several[j]:
            return Said("several_runs_on_date", runs=int(self.table.members[j]))
        if self.usable[j]:
            return None
        # fewer than half its members complete on every lead and input: how many, where some are (a forecaster
        # who sees "no complete forecast" looks for a gap in every member)
        used, held = int(self.complete[j, :self.table.members[j]].sum()), int(self.table.members[j])
        return (Said("few_complete_archive_members", used=used, held=held) if used
                else Said("no_complete_archive_forecast"))

    def partial(self, issue_days) -> list:
        """``(issue day, members used, members held)`` of each available issue day with members left out."""
        out = []
        for t in np.asarray(issue_days):
            j = self._day(int(t))
            if j is not None and not self.complete[j, :self.table.members[j]].all():
                out.append((int(t), int(self.complete[j].sum()), int(self.table.members[j])))
        return out

    def _day(self, t):
        j = self.table.index(t)
        return j if j is not None and self.usable[j] else None

    def __call__(self, x, miss, b, t, pos):
        B = x.shape[0]
        fc = np.full((self.members, B, self.width, len(self.lw.inputs)), np.nan)
        for i, day in enumerate(np.asarray(t)):
            j = self._day(int(day))
            if j is not None:  # the complete members first, in the order of their numbers (absent() the rest)
                rows = self.table.values[j][self.complete[j]][:self.members]
                fc[:len(rows), i, :self.leads] = rows
        return [self.lw.put(x, miss, pos, {n: fc[m, :, :, j] for j, n in enumerate(self.lw.inputs)})
                for m in range(self.members)]
