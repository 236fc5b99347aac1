"""Which precipitation a forecast reads: a weather forecast's rain mapped to the station's, resolved per basin.

The mapping itself is :mod:`sca2lstm.weather.mapping` (pure arrays). This module decides, for one basin and model
(:class:`~sca2lstm.evaluation.context.BasinContext`), what a forecast's precipitation is ranked among and whether it
is mapped at all, in one place that single forecasts, reforecasts and the service share:

- an **archive** given as the weather forecast (several issue dates): each issue date's forecast is ranked among
  the archive's forecasts issued before it;
- **one forecast** (a fetched Open-Meteo answer, a table of the lead days) for a station with an archive of its
  own (``DATA_DIR/weather_archive/<id>.csv``, the one training reads): ranked among that archive's forecasts
  issued before the issue date, so today's forecast is mapped as the reforecast that verified the station was;
- a model whose weights trained on this station's archive learned its rain as the archive gives it: ``auto``
  leaves that station's forecasts unmapped (mapping them would correct a drizzly archive twice: by the mapping
  and by what the model learned).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError, StationFileError
from ..notes import PHRASES, Note, note_value
from ..weather.files import WeatherForecast, forecast_dates
from .context import BasinContext


class ArchiveRain(WeatherForecast):
    """A station's archive of past forecasts, its precipitation only, with what ranking one forecast among it
    derives, kept for the next forecast: its issue dates, and per issue date ranked the forecast samples of its
    leads (:func:`~sca2lstm.weather.mapping.forecast_samples`; every date after the archive's last issue date has
    the same ones). The mapping itself is :func:`~sca2lstm.weather.mapping.map_precipitation`'s, as without them."""

    #: Issue dates whose samples one archive keeps (the most recently ranked).
    SAMPLES_KEPT = 8

    def __init__(self, wf: WeatherForecast):
        super().__init__(wf.table, wf.source, wf.location)
        self._dates: pd.DatetimeIndex | None = None
        self._ensemble: tuple | None = None
        self._samples: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def __getstate__(self):  # sent to another process: the table, not what was derived from it (nor the lock)
        return {"table": self.table, "source": self.source, "location": self.location}

    def __setstate__(self, state):
        self.__init__(WeatherForecast(state["table"], state["source"], state["location"]))

    @property
    def issue_dates(self) -> pd.DatetimeIndex:
        if self._dates is None:
            self._dates = super().issue_dates
        return self._dates

    @property
    def ensemble_why(self) -> str | None:
        """Why the archive is an ensemble its runs are not combined from
        (:func:`~sca2lstm.weather.lagged.ensemble_why`; None: it is not), worked out once: a service's every
        forecast of the station asks."""
        from ..weather.lagged import ensemble_why, runs_per_date

        if self._ensemble is None:
            self._ensemble = (ensemble_why(runs_per_date(self.table)),)
        return self._ensemble[0]

    def samples(self, t0) -> dict:
        """The forecast samples a forecast issued on ``t0`` is ranked among (its forecasts issued before ``t0``)."""
        from ..weather.mapping import forecast_samples

        t0 = pd.Timestamp(t0).normalize()
        dates = self.issue_dates
        key = min(t0, dates[-1] + pd.Timedelta(days=1)) if len(dates) else t0  # after the last: all of them
        with self._lock:
            hit = self._samples.get(key)
            if hit is not None:
                self._samples.move_to_end(key)
                return hit
        found = forecast_samples(self.table, key)
        with self._lock:
            self._samples[key] = found
            while len(self._samples) > self.SAMPLES_KEPT:
                self._samples.popitem(last=False)
        return found


#: The stations' archives this process has read, by file (path, modification time in ns, size): a service's worker
#: ranks each forecast of a station among its archive as read once, without the archive sent with every forecast.
_ARCHIVES: OrderedDict = OrderedDict()
_ARCHIVES_LOCK = threading.Lock()
#: Archives a process keeps (the most recently used); a forecast of another is sent its archive again.
ARCHIVES_KEPT = 8


def _file_key(path) -> tuple | None:
    """``(path, modification time in ns, size)`` of a file, or None where it cannot be read."""
    try:
        st = Path(path).stat()
    except OSError:
        return None
    return (str(path), st.st_mtime_ns, st.st_size)


def _keep_archive(key: tuple, archive: WeatherForecast) -> ArchiveRain:
    """The archive of the file ``key`` as this process keeps it (the one it holds for that key, else ``archive``)."""
    with _ARCHIVES_LOCK:
        hit = _ARCHIVES.get(key)
        if hit is None:
            hit = _ARCHIVES[key] = archive if isinstance(archive, ArchiveRain) else ArchiveRain(archive)
        _ARCHIVES.move_to_end(key)
        while len(_ARCHIVES) > ARCHIVES_KEPT:
            _ARCHIVES.popitem(last=False)
        return hit


class ArchiveNotHere(Exception):
    """A station's archive that a forecast names by its file (:meth:`StationRain.by_file`) is not kept in this
    process: the forecast is to be sent again with it."""


def unrecorded_spans(ctx: BasinContext) -> tuple:
    """The checkpoint's training spans of the basin, (first, last) ISO days, where the checkpoint is older than its
    record of the archives it trained on (``weather_archives``): it cannot say whether it learned one (``()``: it
    can)."""
    return () if "weather_archives" in ctx.ckpt else tuple(
        (sp["start"], sp["end"]) for sp in ctx.trained_on if sp["role"] == "train" and ctx.basin in sp["basins"])


def unrecorded_values(basin: str, spans, issue_dates) -> dict | None:
    """The values of the caution that a model may have learned an archive's rain as given (sca2lstm/notes.py): the
    first of the :func:`unrecorded_spans` ``spans`` in which some of ``issue_dates`` fall, and how many (None:
    none falls in one)."""
    d = pd.DatetimeIndex(list(issue_dates))
    for first, last in spans:
        n = int(((d >= pd.Timestamp(first)) & (d <= pd.Timestamp(last))).sum())
        if n:
            return {"basin": basin, "first": str(first), "last": str(last), "n": n}
    return None


@dataclass
class StationRain:
    """What one station's forecast precipitation is mapped with, for one model, taken from its whole record
    (:meth:`of`): the service builds it once per station and forecasts from a recent part of the record, whose
    context has no training years.

    ``observed`` [days]: the station's observed precipitation of its training part (None where there is none:
    ``missing`` says why); ``observed_days``: that part, ``first..last``; ``archive``: the station's own archive of
    past forecasts, its precipitation only (None: none); ``learned``: what the checkpoint recorded of that archive where the model's
    weights trained on it (None: they did not).
    """

    basin: str
    observed: np.ndarray | None
    observed_days: str
    archive: WeatherForecast | None = None
    learned: dict | None = None
    missing: str | None = None
    archive_error: str | None = None   # the station's archive could not be read: refused where it is needed
    # The checkpoint's training spans of this basin, (first, last) ISO days, where the checkpoint is older than its
    # record of the archives it trained on (``weather_archives``): it cannot say whether it learned one.
    unrecorded_spans: tuple = ()
    # The archive's file as read, (path, modification time in ns, size): what a process keeps it under (_ARCHIVES)
    archive_file: tuple | None = None
    # The station's observed daily precipitation (mm/d) by date, of its whole record from the archive's first issue
    # date on (None: no archive, or no precipitation input): what one forecast's runs are combined by
    # (:func:`lagged_weather`); the days before the archive's runs are never read by the combination
    rainfall: pd.Series | None = None

    def by_file(self) -> StationRain:
        """This rain with its archive named by its file only (:attr:`archive_file`), to send to a process that keeps
        the archive (:meth:`in_process`): ten years of an ensemble's forecasts are some 16 MB to pickle."""
        return replace(self, archive=None) if self.archive_file is not None and self.archive is not None else self

    def in_process(self) -> StationRain:
        """This rain with its archive as this process keeps it, where :meth:`by_file` left only its file's name.

        Raises
        ------
        ArchiveNotHere
            This process does not keep that archive (another read it, or it was pushed out).
        """
        if self.archive is not None or self.archive_file is None:
            return self
        with _ARCHIVES_LOCK:
            hit = _ARCHIVES.get(self.archive_file)
            if hit is not None:
                _ARCHIVES.move_to_end(self.archive_file)
        if hit is None:
            raise ArchiveNotHere(self.archive_file[0])
        return replace(self, archive=hit)

    @classmethod
    def of(cls, ctx: BasinContext, with_archive: bool = True) -> StationRain:
        """The station's rain as its context (built from its whole record) resolves it (``with_archive``: False
        leaves the station's archive unread, where the forecast to map is an archive itself)."""
        try:
            observed, missing = ctx.training_precipitation(), None
        except DataError as e:   # a model without precipitation, or none observed: refused only if mapping is asked
            observed, missing = None, note_value(e.args[0] if e.args else e)  # a note: said in Chinese too
        i0, i1 = ctx.training_days()
        days = f"{ctx.record.dates[i0]}..{ctx.record.dates[i1 - 1]}" if i1 > i0 else "none"
        archive, archive_error, archive_file = None, None, None
        if with_archive:
            from ..weather.archive import archive_path

            path = archive_path(ctx.data_dir, ctx.basin)
            before = _file_key(path) if path is not None else None
            try:
                archive = ctx.station_archive()
                if archive is not None and "precipitation" in archive.table.columns:
                    # its rain only, kept by this process under its file (a service's worker ranks every forecast of
                    # the station among it, and is not sent it again: by_file)
                    archive = ArchiveRain(WeatherForecast(
                        archive.table[["issue_date", "valid_date", "member", "precipitation"]], archive.source,
                        archive.location))
                    if before is not None and _file_key(path) == before:  # not replaced while it was read
                        archive, archive_file = _keep_archive(before, archive), before
            except DataError as e:  # a forecast without weather never reads it: refused only when mapping needs it
                archive_error = str(e)
        rainfall = None
        if archive is not None and len(archive.issue_dates):
            whole = ctx.observed_precipitation()
            rainfall = whole[whole.index >= archive.issue_dates[0]] if whole is not None else None
        return cls(ctx.basin, observed, days, archive, ctx.learned_archive, missing, archive_error,
                   unrecorded_spans(ctx), archive_file, rainfall)

    def unrecorded_values(self, issue_dates) -> dict | None:
        """The values of the caution (``may_have_learned``, sca2lstm/notes.py) for a forecast whose rain was mapped by
        ranking it among forecasts issued on ``issue_dates``, where the checkpoint predates ``weather_archives`` and
        trained on this basin's days when some of them were issued: it may have learned that archive's rain as given
        (None: it cannot have, or it would say)."""
        return unrecorded_values(self.basin, self.unrecorded_spans, issue_dates)

    def unrecorded_note(self, issue_dates) -> str | None:
        """The caution of :meth:`unrecorded_values` as a mapping's record keeps it (``may_have_learned``): the note's
        sentence, without its capital and full stop (None: none)."""
        values = self.unrecorded_values(issue_dates)
        if values is None:
            return None
        text = str(Note("may_have_learned", **values))
        return text[0].lower() + text[1:-1]

    def observed_rain(self) -> np.ndarray:
        """:attr:`observed`, or the one-line DataError saying why there is none."""
        if self.observed is None:
            raise DataError(self.missing or f"basin {self.basin}: no observed precipitation to map forecasts to")
        return self.observed


@dataclass
class MappedWeather:
    """A weather forecast as the model reads it. ``weather``: the forecast with its precipitation mapped (or as
    given); ``note``: the sentence naming leads left unmapped, or that the model may have learned the rain mapped
    (a :class:`~sca2lstm.notes.Note`; None: none); ``record``: what the forecast's outputs record of the mapping
    (:func:`mapping_record`; None where there was nothing to map)."""

    weather: object
    note: str | None = None
    record: dict | None = None


def is_archive(wf) -> bool:
    """Whether a weather forecast is an archive of past forecasts (several issue dates), whose precipitation a
    mapping ranks among its earlier forecasts."""
    return isinstance(wf, WeatherForecast) and len(wf.issue_dates) > 1


def mapped_weather(station: BasinContext | StationRain, wf, issue_dates,
                   precip_mapping: str = "auto", leads: int | None = None, ranked_among=None) -> MappedWeather:
    """The weather forecast ``wf`` with the precipitation of its forecasts issued on ``issue_dates`` mapped as
    ``precip_mapping`` says (``quantile``: per lead, to the basin's observed precipitation of its training years;
    ``auto``: only leads whose earlier forecasts are drizzly with damped storms; ``none``: as given).

    ``station``: the basin's context, or its :class:`StationRain` where the context holds part of its record. An
    archive is ranked among its own earlier forecasts; one forecast (a single issue date, ``issue_dates`` its one
    date) among the station's archive's (:attr:`StationRain.archive`), where it has one. ``auto`` maps nothing for
    a basin whose weights learned its archive (:attr:`StationRain.learned`). ``leads``: the lead days one forecast
    is read for (None: all its days after the issue date); its later days are neither mapped nor named as left
    unmapped. ``ranked_among``: an archive's precipitation as issued, row by row, where ``wf``'s was combined with
    its earlier runs (:func:`lagged_weather`): what its forecasts are ranked among. A one-line DataError where
    ``quantile`` has nothing to rank among (:func:`sca2lstm.weather.mapping.check_mappable`).
    """
    from ..weather.mapping import check_mappable, map_precipitation, unmapped_text

    if precip_mapping == "none" or wf is None:
        check_mappable(wf, precip_mapping)
        return MappedWeather(wf)
    single = not is_archive(wf)
    rain = station if isinstance(station, StationRain) else StationRain.of(station, with_archive=single)
    learned = precip_mapping == "auto" and rain.learned   # ranks nothing: an archive it cannot read refuses nothing
    if single and rain.archive_error and not learned:
        raise StationFileError(rain.archive_error)
    check_mappable(wf, precip_mapping, station_archive=rain.archive is not None or rain.archive_error is not None)
    if single and rain.archive is None and rain.archive_error is None:
        return MappedWeather(wf)
    if learned:
        return MappedWeather(wf, record=mapping_record(rain, precip_mapping, mapped=False,
                                                       why="the model's weights trained on this station's archive "
                                                           "of forecasts, its rain as given"))
    if precip_mapping == "auto" and rain.observed is None:  # nothing to map to: the default uses it as given
        return MappedWeather(wf, record=mapping_record(rain, precip_mapping, mapped=False, why=rain.missing))
    if single:
        (t0,) = pd.DatetimeIndex(list(issue_dates))
        out, short, changed = _map_one(wf, rain.archive, t0, rain.observed_rain(), precip_mapping, leads)
        sample = Note("ranked_among", archive=note_value(rain.archive.source), day=str(t0.date()))
        ranked = rain.archive.issue_dates[rain.archive.issue_dates < t0]
    else:
        table, short = map_precipitation(wf.table, rain.observed_rain(), issue_dates, method=precip_mapping,
                                         ranked_among=ranked_among)
        out = WeatherForecast(table, wf.source, wf.location)
        sample = "the archive's forecasts issued before each issue date"
        changed = _changed(wf.table, table, issue_dates)
        ranked = wf.issue_dates[wf.issue_dates <= max(pd.DatetimeIndex(list(issue_dates)))]
    # one forecast's leads without enough earlier forecasts in the station's archive keep the forecast's own rain
    note = unmapped_text(short, given="the forecast" if single else "the archive",
                         source=note_value(getattr(wf, "source", "the weather forecast")))
    record = mapping_record(rain, precip_mapping, mapped=changed, sample=sample, unmapped=note)
    caution = rain.unrecorded_values(ranked) if changed and precip_mapping == "auto" else None
    if caution:
        record["may_have_learned"] = rain.unrecorded_note(ranked)
        # one note: the leads left unmapped, then the caution (sca2lstm/notes.py)
        note = (Note(f"{note.kind}_may_have_learned", **note.values, **caution) if note
                else Note("may_have_learned", **caution))
    return MappedWeather(out, note, record)


def _map_one(wf, station: WeatherForecast, t0: pd.Timestamp, observed, method: str, leads: int | None = None):
    """One forecast issued on ``t0`` (a :class:`WeatherForecast` or a table ``date, <inputs>``), its lead days'
    precipitation ranked among the station archive's forecasts issued before ``t0`` (their samples kept by an
    :class:`ArchiveRain`): (mapped forecast, unmapped leads, whether any amount changed). ``leads``: the lead days
    read (None: every day after ``t0``)."""
    from ..weather.mapping import forecast_samples, map_precipitation

    plain = not isinstance(wf, WeatherForecast)
    if "precipitation" not in (wf.columns if plain else wf.table.columns):
        return wf, {}, False
    # dated by the one date parser of weather files: a day that is no date is refused in one line, as it is unmapped
    t = (pd.DataFrame({"valid_date": forecast_dates(wf["date"], "date", "weather forecast"), "member": 0,
                       "precipitation": pd.to_numeric(wf["precipitation"], errors="coerce")})
         if plain else wf.table[["valid_date", "member", "precipitation"]].copy())
    lead_days = t["valid_date"] > t0                    # the days before and on t0 are no forecast of t0
    if leads is not None:  # a fetched forecast runs two days past the leads, which no archive lead ranks
        lead_days &= t["valid_date"] <= t0 + pd.Timedelta(days=int(leads))
    if not lead_days.any():
        return wf, {}, False
    ours = t.loc[lead_days].assign(issue_date=t0)
    samples = station.samples(t0) if isinstance(station, ArchiveRain) else forecast_samples(station.table, t0)
    mapped, short = map_precipitation(ours[["issue_date", "valid_date", "member", "precipitation"]], observed, [t0],
                                      method=method, samples=samples)
    values = mapped["precipitation"].to_numpy(np.float64)
    before = ours["precipitation"].to_numpy(np.float64)
    changed = not np.allclose(before, values, equal_nan=True)
    # as floats: rain written in whole millimetres reads as an integer column, which refuses the mapped amounts
    if plain:
        out = wf.copy()
        out["precipitation"] = pd.to_numeric(out["precipitation"], errors="coerce").astype(np.float64)
        out.loc[ours.index, "precipitation"] = values
        return out, short, changed
    table = wf.table.copy()
    table["precipitation"] = table["precipitation"].astype(np.float64)
    table.loc[ours.index, "precipitation"] = values
    return WeatherForecast(table, wf.source, wf.location), short, changed


def _changed(original: pd.DataFrame, mapped: pd.DataFrame, issue_dates) -> bool:
    on = original["issue_date"].isin(pd.DatetimeIndex(list(issue_dates)))
    return not np.allclose(original.loc[on, "precipitation"].to_numpy(np.float64),
                           mapped.loc[on, "precipitation"].to_numpy(np.float64), equal_nan=True)


def mapping_record(rain: StationRain, precip_mapping: str, mapped: bool | None = None, sample: str | None = None,
                   why: str | None = None, unmapped: str | None = None) -> dict:
    """What a forecast records of its precipitation mapping: the method, the least earlier issue dates a lead is
    mapped from, the training days of the observed climatology, what the forecasts were ranked among
    (``sample``), whether any amount changed (``mapped``; ``auto`` maps only drizzly forecasts), where nothing was
    mapped for a reason of the model's, ``why``, and the sentence naming leads left as given (``unmapped``)."""
    from ..weather.mapping import MIN_ISSUE_DATES

    out = {"method": precip_mapping, "min_issue_dates": MIN_ISSUE_DATES, "observed": rain.observed_days}
    if sample is not None:
        out["ranked_among"] = sample
    if mapped is not None:
        out["mapped"] = bool(mapped)
    if why is not None:
        out["not_mapped_because"] = why
    if unmapped is not None:
        out["unmapped"] = unmapped      # the leads left as given for too few earlier forecasts
    return out


def mapping_line(record: dict | None, source: str) -> str | None:
    """The line a forecast or reforecast prints (and the service notes) of its precipitation mapping (``record``:
    :func:`mapping_record`; None: nothing to say): a :class:`~sca2lstm.notes.Note`, said in Chinese too, where its
    parts are known (what the rain was ranked among, why it was not mapped), else its English text."""
    if not record:
        return None
    why, method = record.get("not_mapped_because"), record.get("method")
    if why:
        # a reason of the model's or the station's (a Note, or a phrase): said in Chinese too
        return Note("precip_not_mapped", source=note_value(source), method=method, why=note_value(why))
    if not record.get("mapped", True):
        return None
    among, observed = record.get("ranked_among"), record.get("observed")
    if isinstance(among, Note) and among.kind == "ranked_among":  # one forecast, ranked among the station's archive
        return Note("precip_mapped", source=source, method=method, observed=observed, **among.values)
    if among in PHRASES:  # an archive, ranked among its own earlier forecasts
        return Note("precip_mapped_among", source=source, method=method, observed=observed, among=among)
    if among:
        return Note("precip_mapped_among", source=note_value(source), method=method, observed=observed,
                    among=note_value(among))
    return Note("precip_mapped_plain", source=note_value(source), method=method, observed=observed)


def lagged_weather(station: BasinContext | StationRain, wf, issue_dates,
                   weather_lags: str = "auto") -> tuple[object, dict | None]:
    """An archive ``wf`` with the precipitation of its forecasts issued on ``issue_dates`` combined with the same
    days' forecasts issued on the days before (:func:`sca2lstm.weather.lagged.combine_lagged`), against the basin's
    observed rain of its whole record (each issue date's weights only from the days observed before its month); or
    one deterministic forecast (``issue_dates`` its one date) combined with the station's own archive's earlier runs
    (:func:`_lagged_one`), as a reforecast of its issue date through that archive with its run in it would be.

    ``station``: the basin's context, or its :class:`StationRain` where the context holds part of its record (the
    service: one forecast only). ``weather_lags``: ``auto`` combines where the archive holds one run per issue date
    and the model's weights did not train on this station's archive (they learned its runs' errors as given);
    ``none`` reads the forecast as given. An ensemble forecast, one forecast of a station without an archive and a
    model without precipitation are left as given.

    Returns
    -------
    (weather, record)
        The weather forecast as the model reads it, and what its outputs record of the combination (None:
        nothing was looked at); its ``may_have_learned``: the caution (a :class:`~sca2lstm.notes.Note`) where the
        checkpoint is too old to say whether its weights learned the archive's runs, and trained on the basin's days
        when some of the runs read were issued; for one forecast, ``runs``: the archive whose runs it was combined
        with (or why not).
    """
    from ..weather.lagged import WEATHER_LAGS, combine_lagged

    if weather_lags not in WEATHER_LAGS:
        raise ValueError(f"weather_lags {weather_lags!r}: expected one of {list(WEATHER_LAGS)}")
    if weather_lags == "none" or wf is None:
        return wf, None
    if not is_archive(wf):
        asked = pd.DatetimeIndex(list(issue_dates))
        if len(asked) != 1:   # a reforecast whose span holds no date of the one forecast: it says what it lacks
            return wf, None
        return _lagged_one(station, wf, asked[0], weather_lags)
    if isinstance(station, StationRain) or "precipitation" not in wf.table.columns:
        return wf, None   # the service takes one forecast at a time, never an archive
    ctx = station
    observed = ctx.observed_precipitation()
    if observed is None:   # a model without a precipitation input: nothing to weight the runs by
        return wf, None
    if ctx.learned_archive:
        return wf, {"method": weather_lags, "issue_dates": 0, "why": LEARNED_RUNS}
    table, record = combine_lagged(wf.table, observed, issue_dates)
    record = {"method": weather_lags, **record}
    if record.get("issue_dates"):
        # as the mapping cautions (StationRain.unrecorded_values): a checkpoint older than its record of learned
        # archives may have learned these runs as given, and then reads a combined forecast it never saw
        read = wf.issue_dates[wf.issue_dates <= max(pd.DatetimeIndex(list(issue_dates)))]
        caution = unrecorded_values(ctx.basin, unrecorded_spans(ctx), read)
        if caution:
            record["may_have_learned"] = Note("may_have_learned_runs", **caution)
    return WeatherForecast(table, wf.source, wf.location), record


#: Why a model's forecasts are not combined with the station archive's runs: its weights learned them as given.
LEARNED_RUNS = "the model's weights trained on this station's archive of forecasts, its runs as given"


def _lagged_one(station: BasinContext | StationRain, wf, t0: pd.Timestamp, weather_lags: str):
    """One deterministic forecast ``wf`` (a :class:`WeatherForecast` of one issue date, or a table ``date,
    <inputs>`` issued on ``t0``) whose precipitation is combined with the same days' runs of the station's own archive
    issued up to :data:`~sca2lstm.weather.lagged.MAX_LAG` days before it: the forecast is put into the archive as the
    run of ``t0`` (its days after ``t0``) and that date combined as a reforecast of ``t0`` through the archive would
    be, bit for bit. Where the archive holds a run of ``t0`` too, the forecast takes its place: it is the one the flow
    forecast reads (an archive's run of the same date is the same forecast fetched earlier, or another model's).
    ``(weather, record)`` as :func:`lagged_weather`'s; None where the station has no archive (nothing to say).

    The forecast is the archive's run of ``t0`` where it was issued on ``t0`` (a table of the lead days) or fetched
    on the morning after (an Open-Meteo answer of ``t0 + 1``, its lead 0 the day ``t0 + 1``): an archive's run of
    ``t0`` is the forecast there was on that morning (docs/weather.md), and its days ``t0 + 1 ..`` are the days the
    flow forecast reads, its leads 1 ... An older forecast is left as given (its days are later leads of another
    run)."""
    from ..weather.lagged import MAX_LAG, combine_lagged, ensemble_why, runs_per_date

    plain = not isinstance(wf, WeatherForecast)
    if "precipitation" not in (wf.columns if plain else wf.table.columns):
        return wf, None
    if isinstance(station, StationRain):
        if station.archive_error:   # the mapping refuses it where it reads it
            return wf, None
        archive, observed, learned = station.archive, station.rainfall, station.learned
        basin, spans = station.basin, station.unrecorded_spans
    else:
        try:
            archive = station.station_archive()
        except DataError:   # the mapping names the file it cannot read, where it needs it
            return wf, None
        observed, learned = station.observed_precipitation(), station.learned_archive
        basin, spans = station.basin, unrecorded_spans(station)
    if archive is None or observed is None or "precipitation" not in archive.table.columns:
        return wf, None
    # the archive as a note names it: said in the reader's language too (the service's notes)
    record = {"method": weather_lags, "max_lag": MAX_LAG, "issue_dates": 0, "runs": note_value(archive.source)}
    if learned:
        return wf, {**record, "why": LEARNED_RUNS}
    if not plain and wf.n_members > 1:
        return wf, {**record, "why": Note("lags_ensemble_forecast", n=int(wf.n_members))}
    # an ensemble archive is never combined (combine_lagged says so too): said before the archive is copied
    ensemble = (archive.ensemble_why if isinstance(archive, ArchiveRain)
                else ensemble_why(runs_per_date(archive.table)))
    if ensemble:
        return wf, {**record, "why": ensemble}
    t0 = t0.normalize()
    own = wf.issue_dates[0] if not plain and len(wf.issue_dates) else t0
    record["issue_date"] = str(t0.date())
    if own < t0:   # an older forecast read for t0: its days are later leads of another date's run
        return wf, {**record, "why": Note("lags_older_forecast", issued=str(own.date()), day=str(t0.date()))}
    issued = t0
    dates = archive.issue_dates
    if not len(dates) or dates[0] >= issued:
        return wf, {**record, "why": (Note("lags_runs_begin", first=str(dates[0].date()), day=str(issued.date()))
                                      if len(dates) else Note("lags_no_runs", day=str(issued.date())))}
    valid = (pd.Series(forecast_dates(wf["date"], "date", "weather forecast"), index=wf.index) if plain
             else wf.table["valid_date"])
    rain = pd.to_numeric((wf if plain else wf.table)["precipitation"], errors="coerce").astype(np.float64)
    after = valid > issued   # the days the run forecasts: lead 1 on
    run = pd.DataFrame({"issue_date": issued, "valid_date": valid[after], "member": 0,
                        "precipitation": rain[after]})
    runs = archive.table[["issue_date", "valid_date", "member", "precipitation"]]
    replaced = bool((runs["issue_date"] == issued).any())
    if replaced:
        record["replaced"] = True
    table = pd.concat([runs[runs["issue_date"] != issued], run], ignore_index=True)
    combined, found = combine_lagged(table, observed, [issued])
    record = {**record, **found}
    if not record["issue_dates"]:
        return wf, record
    read = pd.DatetimeIndex([*dates[dates < issued], issued])
    caution = unrecorded_values(basin, spans, read)
    if caution:
        record["may_have_learned"] = Note("may_have_learned_runs", **caution)
    values = combined["precipitation"].to_numpy(np.float64)[len(table) - len(run):]
    # as floats: rain written in whole millimetres reads as an integer column, which refuses the combined amounts
    out = (wf if plain else wf.table).copy()
    out["precipitation"] = rain
    out.loc[run.index, "precipitation"] = values
    return (out if plain else WeatherForecast(out, wf.source, wf.location)), record


def lagged_line(record: dict | None, source: str) -> str | None:
    """The line a forecast or reforecast prints (and the service notes) of an archive's runs combined (``record``:
    :func:`lagged_weather`; None where none was looked at); where none was combined, why not (a short archive, an
    ensemble, a model trained on the station's archive): else the user of an archive cannot tell the option did
    nothing. A :class:`~sca2lstm.notes.Note`, said in Chinese too (``sca2lstm forecast --language zh``, the
    service's page)."""
    if not record:
        return None
    several = record.get("several_runs")
    left = (Note("several_runs_left", n=several["issue_dates"], first=several["first"]) if several else "")
    runs = record.get("runs")   # one forecast: the station archive's runs it was combined with
    source = note_value(source)
    if not record.get("issue_dates"):
        if not record.get("why"):
            return None
        why, method = note_value(record["why"]), record.get("method", "auto")
        if runs:
            return Note("runs_not_combined_one", source=source, runs=note_value(runs), method=method, why=why,
                        left=left)
        return Note("runs_not_combined", source=source, method=method, why=why, left=left)
    if runs:
        kind = "runs_combined_replaced" if record.get("replaced") else "runs_combined"
        return Note(kind, source=source, runs=note_value(runs), day=record["issue_date"],
                    max_lag=int(record["max_lag"]))
    return Note("archive_runs_combined", source=source, max_lag=record["max_lag"], n=record["issue_dates"],
                first=record["first"], left=left)
