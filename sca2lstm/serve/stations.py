"""The stations' daily data as the service sees it: each station's file, with the days posted to it laid over.

A posted value replaces the file's value for that day and column; columns not posted keep the file's
value; days after the file's end are appended. A posted PET goes into every PET column the file holds
(``pet``, ``peti``): the model reads whichever it was trained on. A file without one gives no PET column: its
history's PET is derived from temperature (Oudin PET, :func:`sca2lstm.data.dataset.pet_source`), and a PET column
holding a few posted days would switch the kind its models and weather forecasts read, so such a post is refused
(:meth:`StationData.pet_columns`) and a PET an earlier version stored for it is kept in the database, not read.

Every answer is named by ``(data version, fingerprint)``: the version counts the posts, the fingerprint is
the basin context's (:func:`sca2lstm.evaluation.context.fingerprint`: the timeseries file's sha256, the
attribute and metadata files). A file changed on disk is read again at the next request (the files'
sizes and modification times are checked on each), so a corrected file never brings back an old forecast.
The service itself writes one file: a station's metadata file, with the warning levels a token holder sets
(:meth:`StationData.set_levels`).
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass

import pandas as pd
from fastapi import HTTPException

from ..data import reader
from ..data.pet import PET_COLUMNS
from ..data.station_meta import StationMeta, check_level_flows, meta_path, read_station_meta, write_station_meta
from ..data.station_options import check_stage_levels, parse_levels
from ..errors import DataError, UsageError
from ..evaluation.context import fingerprint
from ..fileio import file_sha256
from .messages import Message
from .store import Store

log = logging.getLogger(__name__)

# Posted name -> the data file's column (PET: see :func:`_pet_columns`).
FILE_COLUMN = {"precipitation": "precipitation", "temperature": "temperature", "pet": "pet",
               "discharge": "discharge_vol"}


def _pet_columns(df: pd.DataFrame) -> list[str]:
    """The PET columns a posted PET is written to: every one the file's data ``df`` has (none: it is not read)."""
    return [c for c in PET_COLUMNS if c in df.columns]


def pet_column(df: pd.DataFrame) -> str | None:
    """The column the ``pet`` of an observation is read from."""
    return next((c for c in PET_COLUMNS if c in df.columns), None)


@dataclass
class StationState:
    """A station's overlaid data at one (data version, fingerprint)."""

    version: int
    fingerprint: str
    timeseries: pd.DataFrame
    meta: StationMeta
    posted_dates: frozenset


@dataclass
class _Files:
    stat: tuple           # the timeseries and metadata files' (modification time, size)
    sha256: str           # of the timeseries file
    timeseries: pd.DataFrame
    meta: StationMeta


def _stat(path) -> tuple:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return (None,)
    return (st.st_mtime_ns, st.st_size)


def _sha(path) -> str:
    try:
        return file_sha256(path)
    except FileNotFoundError:
        return ""


class StationData:
    """Each station's file data (read again when a file changes) overlaid with its posted days."""

    def __init__(self, data_dir, store: Store):
        self.data_dir = data_dir
        self.store = store
        self.ids = reader.list_basins(data_dir)
        self._known = set(self.ids)
        self._files: dict[str, _Files] = {}
        self._states: dict[str, StationState] = {}
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()  # one change of a station's metadata file at a time

    def check(self, station: str) -> None:
        if station not in self._known:
            shown = ", ".join(self.ids[:10]) + (" ..." if len(self.ids) > 10 else "")
            raise HTTPException(404, Message("unknown_station", station=station, shown=shown))

    def _paths(self, station: str):
        return reader.timeseries_file(self.data_dir, station), meta_path(self.data_dir, station)

    def _stats(self, station: str) -> tuple:
        ts_file, meta_file = self._paths(station)
        return _stat(ts_file) + _stat(meta_file)

    def peek(self, station: str) -> StationState | None:
        """The station's current state if it is built and its files are unchanged (never reads a file)."""
        state = self._states.get(station)
        files = self._files.get(station)
        if state is None or files is None or state.version != self.store.data_version(station):
            return None
        if files.stat != self._stats(station) or state.fingerprint != fingerprint(self.data_dir, station,
                                                                                    files.sha256):
            return None
        return state

    def _read_files(self, station: str) -> _Files:
        stat = self._stats(station)
        hit = self._files.get(station)
        if hit is not None and hit.stat == stat:
            return hit
        ts_file, _ = self._paths(station)
        digest = _sha(ts_file)
        try:
            meta = read_station_meta(self.data_dir, station)
            df = hit.timeseries if hit is not None and hit.sha256 == digest else reader.read_timeseries(
                self.data_dir, station)
        except DataError as e:
            raise HTTPException(503, Message("station_unreadable", station=station, reason=str(e))) from None
        files = _Files(stat, digest, df, meta)
        self._files[station] = files
        return files

    def meta(self, station: str) -> StationMeta:
        """The station's metadata file as read with its data (its rating curve, levels, ...)."""
        with self._lock:
            return self._read_files(station).meta

    def pet_columns(self, station: str) -> list[str]:
        """The PET columns of the station's file (``pet``, ``peti``) a posted PET is written to; empty where it has
        none (its PET is derived from temperature, and a posted PET is refused)."""
        with self._lock:
            return _pet_columns(self._read_files(station).timeseries)

    def record_max(self, station: str, column: str) -> float | None:
        """The largest value of ``column`` in the station's file (None: no such value)."""
        with self._lock:
            df = self._read_files(station).timeseries
        if column not in df.columns:
            return None
        v = pd.to_numeric(df[column], errors="coerce").max()
        return float(v) if pd.notna(v) else None

    def gap_refusal(self, station: str, dates, back: int) -> str | None:
        """Why a post of the days ``dates`` for ``station`` is refused, on one line, or None (not refused).

        A post whose latest day lies after the station's record (its file's days and those posted before) makes
        that day the one its forecasts are issued on by default. Where none of the ``back`` days such a forecast
        reads before it (:func:`~sca2lstm.evaluation.operational.history_days`) is a day of the record or of the
        post (a reading of today for a file that ends decades ago), the model would have nothing to read: the
        forecast could not be issued until the post was taken back, so the post is refused instead."""
        with self._lock:
            file_end = self._read_files(station).timeseries.index[-1]
        end = self.state(station).timeseries.index[-1]
        after = sorted({pd.Timestamp(d) for d in dates if pd.Timestamp(d) > end})
        if not after:
            return None
        last = after[-1]
        first_read = last - pd.Timedelta(days=back)
        if end >= first_read or any(d >= first_read for d in after[:-1]):
            return None
        what = "the end of its file" if end == file_end else f"a day posted before; its file ends {file_end.date()}"
        return (f"observations: {last.date()} is {(last - end).days} days after the last day of station {station}'s "
                f"record, {end.date()} ({what}); a forecast issued on it reads the {back} days before it "
                f"({first_read.date()}..{(last - pd.Timedelta(days=1)).date()}), which would hold no data. Post "
                "those days with it, or add the days up to it to the station's file")

    def state(self, station: str) -> StationState:
        """The station's data now: the file's days (date index, the file's columns) with every posted day
        laid over."""
        with self._lock:
            hit = self.peek(station)
            if hit is not None:
                return hit
            files = self._read_files(station)
            df = files.timeseries
            # The version and the rows in one read: a post landing meanwhile gets the next version.
            version, rows = self.store.observations_at_version(station)
            posted_dates: frozenset = frozenset()
            if rows:
                posted = pd.DataFrame(rows)
                posted.index = pd.DatetimeIndex(pd.to_datetime(posted.pop("date")), name="date")
                start = min(df.index[0], posted.index[0])
                end = max(df.index[-1], posted.index[-1])
                df = df.reindex(pd.date_range(start, end, freq="D", name="date"))
                for name, col in FILE_COLUMN.items():
                    vals = posted[name].dropna()
                    if not len(vals):
                        continue
                    targets = _pet_columns(df) if name == "pet" else [col]
                    if not targets:  # stored before posts of PET to such a file were refused: kept apart
                        log.warning("station %s: %d posted pet value(s) (%s..%s) not read: its file has no PET "
                                    "column, its PET is derived from its temperature", station, len(vals),
                                    vals.index[0].date(), vals.index[-1].date())
                    for c in targets:
                        if c not in df.columns:
                            df[c] = float("nan")
                        df.loc[vals.index, c] = vals.to_numpy(dtype=float)
                posted_dates = frozenset(posted.index)
            state = StationState(version, fingerprint(self.data_dir, station, files.sha256), df, files.meta,
                                 posted_dates)
            self._states[station] = state
            return state

    def set_levels(self, station: str, levels: dict, levels_in: str = "flow",
                   probabilities: dict | None = None) -> StationMeta:
        """Replace the station's named warning levels (``levels``: name -> value in m3/s, or in m with
        ``levels_in`` 'stage'; ``probabilities``: name -> warning probability; empty: none) in its metadata file,
        checked as ``sca2lstm station import`` checks them; the metadata as written.

        The levels are refused (a one-line UsageError or DataError, nothing written) where the import refuses them:
        a bad name (or a return-period level's, q2y ..), a value that is not a positive number, a probability
        outside (0, 1) or of no level given, water levels without the station's rating curve or that it cannot
        convert, a level more than 10 times the record's highest daily flow (the file's days and the posted ones)
        or below its lowest. The file is written by :func:`~sca2lstm.data.station_meta.write_station_meta`
        (atomically: the earlier file stays whole if the write fails; every other key as it was), and the
        station's data is read again at its next request: its fingerprint, which names every cached and stored
        forecast, follows the file's contents.
        """
        unit = "m" if levels_in == "stage" else "m3/s"
        with self._write_lock:
            flows = self.state(station).timeseries.get("discharge_vol", pd.Series(dtype="float64"))
            try:
                meta = read_station_meta(self.data_dir, station)
            except DataError as e:
                raise HTTPException(503, Message("station_unreadable", station=station, reason=str(e))) from None
            checked = parse_levels(levels, unit, "levels", probabilities, "warn_probability")
            if checked and unit == "m" and meta.rating_curve is None:
                raise UsageError(f'levels_in: "stage" (water levels in m) needs the station\'s rating curve, and '
                                 f'station {station} has none; give the levels in m3/s ("levels_in": "flow"), or '
                                 "import the station with --rating")
            check_stage_levels(checked, meta.rating_curve, "levels")
            check_level_flows(flows, checked, meta.rating_curve, "levels", '"levels_in": "stage"')
            meta.warning_levels = checked
            try:
                write_station_meta(self.data_dir, meta)
            except OSError as e:
                raise HTTPException(503, Message("meta_unwritable", station=station, reason=str(e))) from None
            finally:
                with self._lock:  # read again (a rewrite within one tick of the file clock keeps size and time)
                    self._files.pop(station, None)
                    self._states.pop(station, None)
            return meta
