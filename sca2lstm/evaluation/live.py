"""Issue-time forecasts for a long-running process (the service): models loaded once, run in worker
processes, on the recent part of each station's current data.

A service holds each station's daily data in memory (its file with the days posted to it laid over) and
asks for forecasts of it many times. Three things make that cheap without changing a single number:

- :func:`~sca2lstm.evaluation.operational.recent_part` cuts the record to the days a forecast can read
  (derived from the config), so the features of 45 years are not computed again for every request;
- what comes from a station's whole record is worked out once per version of its data
  (:func:`station_setup`): the discharge scale of a station the model was not trained on, the
  persistence blend per lead and the recession bound, and the station's warning levels;
- :class:`LiveForecaster` runs the model in worker processes (``workers >= 1``), so a forecast never
  holds the serving process's interpreter lock; ``workers=0`` runs in the calling thread (tests, scripts).

A forecast from the cut record with the setup equals :func:`~sca2lstm.evaluation.operational.issue_forecast`
on the whole record, and the issued one (:func:`issued_forecast`) equals
:func:`~sca2lstm.evaluation.reforecast.warned_forecast`, the forecast ``sca2lstm forecast`` issues (tested).
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import copy
import logging
import multiprocessing
import os
import stat
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from ..checkpoint import load_model
from ..data.dataset import absent_inputs, basin_pet_source, load_basin
from ..data.features import required_columns
from ..data.rating import add_stage_columns
from ..data.scaling import BasinScaler
from ..errors import CheckpointError, DataError, Sca2lstmError, UsageError
from ..fileio import file_sha256
from ..notes import Note
from ..weather.files import gauge_latitude, pet_input, pet_rule, require_inputs
from .context import BasinContext, days_within
from .rain_mapping import ArchiveNotHere, StationRain, lagged_line, mapping_line
from .calibration import calibration_identity, calibration_path, issue_setup, read_calibration
from .reforecast import (Warnings, add_exceedance, apply_issue_setup, in_sample_note, last_observation,
                         resolve_warnings, weather_setting)
from .warn import lead_warnings
from .operational import (OperationalForecast, check_recent_inputs, issue_forecast, members_note, recent_part,
                          stale_flow_note, weather_members)

log = logging.getLogger(__name__)


#: What a service's caller can do about an input missing from the days a forecast reads.
SERVICE_FIX = "post the missing days, or add them to the station's file"


def forecast_part(station: str, ts: pd.DataFrame, issue: pd.Timestamp, cfg) -> tuple[pd.DataFrame, list]:
    """:func:`~sca2lstm.evaluation.operational.recent_part` of ``station``'s record ``ts`` for ``issue``, refused in
    one line where it holds no value of an input the model cannot go without that the record holds
    (:func:`~sca2lstm.evaluation.operational.check_recent_inputs`, the check ``sca2lstm forecast`` makes: a
    service has no ``--allow_missing_inputs``), and the notes of the inputs it holds no value of that the model goes
    without (days posted without PET): the forecast, which reads the part alone, cannot tell them from inputs the
    record never had.

    Raises
    ------
    DataError
        ``station ...: no precipitation in the N days read for the forecast issued DAY (FIRST..LAST); its last
        value is on DAY ...``.
    """
    masked = check_recent_inputs(Note("station_named", station=station), ts, [issue], cfg, fix=SERVICE_FIX)
    return recent_part(ts, issue, cfg), masked


@dataclass
class StationSetup:
    """What a station's forecasts take from its whole record: ``scaler`` (its discharge scale where the
    model does not know it, else None), ``issue`` (per weather setting: the persistence blend per lead,
    the recession bound and the spread, :class:`~sca2lstm.evaluation.calibration.IssueSetup`) and ``warnings`` (its levels with their
    warning probabilities, :class:`~sca2lstm.evaluation.reforecast.Warnings`)."""

    scaler: BasinScaler | None
    issue: dict           # weather setting (none, forecast, ensemble) -> IssueSetup
    warnings: Warnings
    rating_curve: dict | None = None  # the station's curve (metadata file): forecasts carry stage_* columns
    notes: list = field(default_factory=list)  # warnings of its data checks (BasinContext.notes)
    rain: StationRain | None = None  # what a weather forecast's precipitation is mapped with (rain_mapping.py)
    seen: list = field(default_factory=list)  # the spans the model learned the station from (BasinContext.seen_spans)


def station_setup(bundle, station: str, ts: pd.DataFrame, data_dir, model_path=None,
                  calibration: dict | None = None) -> StationSetup:
    """The :class:`StationSetup` of ``station`` from its whole record ``ts``, as ``sca2lstm forecast`` works
    it out (:func:`~sca2lstm.evaluation.reforecast.warned_forecast`): the scale of a station the model was
    not trained on by the rule every command uses, the blend and the bound of its validation and training
    days, the levels of its training years and its metadata file, and the calibration stored beside the
    model (``model_path``; ``calibration``: that calibration as read before, where the file may have been
    replaced since)."""
    ctx = BasinContext.resolve(bundle, data_dir, station, timeseries=ts)
    scaler = None if ctx.in_checkpoint else ctx.scalers.basins[station]
    calib = read_calibration(model_path) if calibration is None else calibration
    leads = ctx.cfg.training.forecast_leads
    issue = {w: issue_setup(ctx, leads, calib, w) for w in ISSUE_WEATHER}  # "none" first: it fits the blend
    return StationSetup(scaler, issue, resolve_warnings(ctx, calib),
                        ctx.meta.rating_curve if ctx.meta is not None else None, list(ctx.notes), StationRain.of(ctx),
                        ctx.seen_spans())


def station_warnings(bundle, station: str, ts: pd.DataFrame, data_dir, calibration: dict | None) -> Warnings:
    """The levels of ``station`` and how they are warned on, as its :class:`StationSetup` holds them
    (:attr:`StationSetup.warnings`), without the rest of the setup (no model run): the return-period levels of
    its training years in its whole record ``ts``, its metadata file's named levels, and their warning
    probabilities from ``calibration`` (the model's, as read beside it)."""
    return resolve_warnings(BasinContext.resolve(bundle, data_dir, station, timeseries=ts), calibration)


#: The weather settings a live forecast can have: none, one weather forecast, an ensemble.
ISSUE_WEATHER = ("none", "forecast", "ensemble")


def weather_days(cfg, wf, leads: int, data_dir, station: str) -> tuple[pd.Timestamp, pd.Timestamp, int]:
    """The valid days ``(first, last)`` on which the weather forecast ``wf`` gives every member every input
    the model of config ``cfg`` reads, checked as a forecast reads it (PET completed as the config derives
    it, :func:`~sca2lstm.evaluation.operational.weather_members`), and how many members the forecast of the
    first issue date it serves reads (a member incomplete on its lead days is left out where at least half
    are complete: :meth:`~sca2lstm.weather.files.WeatherForecast.members`).

    Raises a one-line DataError naming ``wf.source`` where it lacks an input, or covers fewer than
    ``leads`` consecutive days. Inputs the station's record never had are not needed (they stay masked).
    """
    in_cols = [c for c in required_columns(cfg) if c != cfg.data.target]
    pet = pet_input(cfg)
    absent = absent_inputs(load_basin(data_dir, station, cfg), cfg)
    need = [c for c in in_cols if c != pet and c not in absent]
    require_inputs(wf.table.columns, need, wf.source)
    span = wf.covered_days(need)
    if span is None:
        raise DataError(f"{wf.source}: no day on which every member has a value of each of {need}")
    n = (span[1] - span[0]).days + 1
    if n < leads:
        gap = span[1] + pd.Timedelta(days=1)
        rows = wf.table[wf.table["valid_date"] == gap]
        lacking = [c for c in need if not len(rows) or rows[c].isna().any()]
        what = (f"{gap.date()} lacks {', '.join(lacking)}" + (" (for some member)" if wf.n_members > 1 else "")
                if len(rows) else f"it holds no {gap.date()}")
        raise DataError(f"{wf.source}: {what}, so only {n} day(s) {span[0].date()}..{span[1].date()} are complete; "
                        f"the model forecasts {leads} lead days")
    read = weather_members(wf, span[0] - pd.Timedelta(days=1), leads, in_cols, cfg, gauge_latitude(data_dir, station),
                           absent, pet_rule(cfg, basin_pet_source(data_dir, station, cfg)))
    return span[0], span[1], len(read)


@dataclass
class LiveForecast:
    """An issued forecast with its warnings: ``forecast`` (:class:`~sca2lstm.evaluation.operational.OperationalForecast`,
    its table blended, bounded and with ``p_exceed_<level>``/``warn_<level>`` columns), ``levels``
    (name -> Level), ``p_exceed`` (name -> [leads] P(Q > level)), ``warnings`` ([leads]: the highest
    level warned at each lead, or None; :mod:`sca2lstm.evaluation.warn`) and ``notes`` (the station's data checks,
    a stale flow, weather members left out)."""

    forecast: OperationalForecast
    levels: dict
    p_exceed: dict
    warnings: list
    notes: list = field(default_factory=list)  # what the station's data checks found (StationSetup.notes)
    seen: list = field(default_factory=list)   # [leads] bool: a valid day the model learned from (the in_sample note)

    def first(self, leads: int) -> LiveForecast:
        """The forecast of the first ``leads`` days: a lead's numbers do not depend on how many follow it; its
        in-sample note names the valid days of those leads."""
        fc = copy.copy(self.forecast)
        fc.table = fc.table.iloc[:leads].reset_index(drop=True)
        notes = [n for n in self.notes if getattr(n, "kind", None) != "in_sample"]
        said = next((n for n in self.notes if getattr(n, "kind", None) == "in_sample"), None)
        if said is not None:
            notes.append(in_sample_note(said.values["basin"], fc.table["valid_date"], self.seen[:leads]))
        return LiveForecast(fc, self.levels, {n: p[:leads] for n, p in self.p_exceed.items()}, self.warnings[:leads],
                            [n for n in notes if n], self.seen[:leads])


def issued_forecast(bundle, station: str, ts: pd.DataFrame, issue_date, leads: int, data_dir, setup: StationSetup,
                    weather_forecast=None, masked=()) -> LiveForecast:
    """The forecast ``sca2lstm forecast`` issues (:func:`~sca2lstm.evaluation.reforecast.warned_forecast`),
    from ``ts`` (the station's record, or its :func:`recent_part`) and its :class:`StationSetup`; ``masked``: the
    notes of the inputs the part lacks though the record holds them (:func:`forecast_part`)."""
    fc = forecast_station(bundle, station, ts, issue_date, leads, data_dir, setup.scaler, weather_forecast,
                          setup.rain)
    y = ts[bundle[1].data.target].loc[:fc.issue_date].to_numpy(np.float64)
    last, gap = last_observation(y, np.array([len(y) - 1]))
    issue = setup.issue[weather_setting(fc)]
    table = apply_issue_setup(fc.table, issue, float(last[0]), int(gap[0]))
    fc.calibration = issue.sources
    fc.table = add_stage_columns(add_exceedance(table, setup.warnings), setup.rating_curve)
    probs, highest = lead_warnings(fc.table, setup.warnings.levels)
    stale = stale_flow_note(station, ts[bundle[1].data.target], fc.issue_date)  # an issue date asked for by hand
    read = fc.data.get("weather_forecast")  # the members it read: some incomplete ones are left out
    left = (members_note(weather_forecast, fc.issue_date, read.get("members", 1), point_only=fc.point_only)
            if read else None)
    # whether its rain was mapped to the station's, as `sca2lstm forecast` prints it (the leads left as given, and
    # a caution, are among the issue's notes)
    mapping = mapping_line((read or {}).get("precip_mapping"), "the weather forecast")
    # whether its rain was combined with the station archive's earlier runs, as `sca2lstm forecast` prints it
    lagged = lagged_line((read or {}).get("lagged"), "the weather forecast")
    # the notes `sca2lstm forecast` writes: the station's checks (on its whole record: ``setup``), then the issue's
    # own (a record shorter than the model's window, an older weather forecast, ...), each once
    # a forecast of days the model learned from (an issue date asked for by hand): as `sca2lstm forecast` says it
    seen = days_within(setup.seen, fc.table["valid_date"])
    in_sample = in_sample_note(station, fc.table["valid_date"], seen)
    notes = [*setup.notes, *masked, *fc.issue_notes, *(n for n in (stale, left, lagged, mapping, in_sample) if n)]
    return LiveForecast(fc, setup.warnings.levels, probs, highest, list(dict.fromkeys(notes)), seen.tolist())


def forecast_station(bundle, station: str, ts: pd.DataFrame, issue_date, leads: int, data_dir,
                     scaler: BasinScaler | None = None, weather_forecast=None,
                     rain: StationRain | None = None) -> OperationalForecast:
    """:func:`~sca2lstm.evaluation.operational.issue_forecast` of ``station`` from ``ts`` (its record, or its
    :func:`recent_part`) with the station's discharge scale ``scaler`` where the model does not know it (or
    knows another basin under its id: :func:`~sca2lstm.evaluation.context.shares_id_only`), its weather forecast's
    precipitation mapped with ``rain`` (from its whole record; ``ts`` may hold no training years), as
    ``sca2lstm forecast`` maps it by default (``auto``)."""
    if scaler is not None:  # a station the model does not know (or knows only another river under its id)
        scalers = copy.copy(bundle[2])                      # never mutate the loaded bundle
        scalers.basins = {**bundle[2].basins, station: scaler}
        bundle = (bundle[0], bundle[1], scalers, bundle[3])
    return issue_forecast(bundle, station, data_dir=data_dir, issue_date=issue_date, leads=leads,
                          timeseries=ts, weather_forecast=weather_forecast, station_rain=rain)


# ----------------------------------------------------------------------------- the models
@dataclass(frozen=True)
class ModelRef:
    """A checkpoint the service forecasts with: its file (never shown to clients), its sha256, and
    what it is (``pretrained`` or ``fine-tuned``). A :class:`LiveForecaster` adds ``files``, the checkpoint's
    and its calibration's state when it read them (:func:`_files_state`: a file replaced in place is
    another version of the model), ``calibration``, the calibration it read then, and ``calibration_sha256``,
    that calibration's identity (:func:`~sca2lstm.evaluation.calibration.calibration_identity`): forecasts are
    cached and stored under it beside ``sha256``, so a recalibrated checkpoint's are new ones."""

    path: str
    sha256: str
    kind: str
    files: tuple = ()
    calibration: dict | None = field(default=None, compare=False, repr=False)
    calibration_sha256: str = ""


_PRETRAINED_NAMES = ("sca2lstm.pth",)
_FINE_TUNED = "best_model_basin_*.pth"


def station_models(model, stations) -> tuple[ModelRef, dict[str, ModelRef]]:
    """Which checkpoint forecasts each station.

    Parameters
    ----------
    model : path
        A checkpoint file: every station uses it. Or a folder (a training run's output): each station's
        own fine-tuned model where there is one (``**/best_model_basin_<id>.pth``, the newest by
        modification time), else the pretrained model of the folder (``sca2lstm.pth`` at its top, or
        the only ``*.pth`` there).
    stations : list of str

    Returns
    -------
    (ModelRef, dict)
        The pretrained (default) model, and the fine-tuned model of each station that has one.
    """
    path = Path(model).expanduser()
    if path.is_file():
        return ModelRef(str(path), file_sha256(path), "pretrained"), {}
    if not path.is_dir():
        raise UsageError(f"--model {path}: no such checkpoint file or folder")
    top = sorted(p for p in path.glob("*.pth") if p.is_file())
    named = [p for p in top if p.name in _PRETRAINED_NAMES]
    if named:
        default = named[0]
    elif len(top) == 1:
        default = top[0]
    else:
        shown = ", ".join(p.name for p in top) or "none"
        raise UsageError(f"--model {path}: expected the pretrained model as sca2lstm.pth (or the only .pth) at "
                         f"the folder's top; found {shown}")
    own = {s: ModelRef(str(f), file_sha256(f), "fine-tuned") for s, f in fine_tuned_files(path, stations).items()}
    return ModelRef(str(default), file_sha256(default), "pretrained"), own


def fine_tuned_files(folder, stations) -> dict[str, Path]:
    """Each station's newest fine-tuned checkpoint under ``folder`` (``**/best_model_basin_<id>.pth``, by
    modification time, then path), for the ``stations`` that have one.

    Only finished checkpoints match: they are written under hidden names (``.<name>.<pid>.tmp``,
    ``.<stem>.staged.<pid>.<random>.pth``) and renamed into place, and nothing under a hidden folder counts
    either. Lists names and stats files, reads none (the service calls it while serving).
    """
    folder = Path(folder)
    wanted = set(map(str, stations))
    newest: dict[str, tuple[int, str]] = {}
    for f in folder.rglob(_FINE_TUNED):
        sid = f.name[len("best_model_basin_"):-len(".pth")]
        if sid not in wanted or any(part.startswith(".") for part in f.relative_to(folder).parts):
            continue
        try:
            st = f.stat()
        except OSError:  # removed or renamed since it was listed
            continue
        if stat.S_ISREG(st.st_mode) and (st.st_mtime_ns, str(f)) > newest.get(sid, (-1, "")):
            newest[sid] = (st.st_mtime_ns, str(f))
    return {s: Path(f) for s, (_, f) in sorted(newest.items())}


# ----------------------------------------------------------------------------- worker processes
_BUNDLES: dict[tuple, tuple] = {}  # (path, sha256) -> the loaded checkpoint, the most recently used last
_BUNDLES_LOCK = threading.Lock()
#: Versions of one checkpoint file a process keeps loaded: the one in use and the one it replaced (requests
#: started before the switch still run it); older ones are dropped, so a file replaced night after night does
#: not keep every model it ever held in memory. A version held by a running daily issue
#: (:meth:`LiveForecaster.holding`) is kept besides these until the issue is over.
VERSIONS_KEPT = 2


def _files_state(path: str) -> tuple:
    """Size, modification time and inode of a checkpoint and of its calibration file (None where absent): a
    file copied over it or renamed onto its name changes one of them."""
    out = []
    for p in (Path(path), calibration_path(path)):
        try:
            st = p.stat()
            out.append((st.st_size, st.st_mtime_ns, st.st_ino))
        except OSError:
            out.append(None)
    return tuple(out)


def _bundle(path: str, sha256: str, keep=()):
    """The loaded checkpoint ``path`` whose bytes have ``sha256``, once per process. Kept by content, not
    by path: a file replaced in place is another model, and a process that had not loaded the old one yet
    refuses to load the new bytes under the old one's name (one line) rather than mix them. Of the other
    versions of ``path`` the process holds, the :data:`VERSIONS_KEPT` most recently used stay loaded, and those
    whose sha256 is in ``keep`` (the versions a running daily issue forecasts with)."""
    key = (path, sha256)
    with _BUNDLES_LOCK:
        hit = _BUNDLES.pop(key, None)
        if hit is not None:
            _BUNDLES[key] = hit  # the most recently used last
    if hit is None:
        hit = load_model(path, "cpu")
        if file_sha256(path) != sha256:  # read after loading: a file replaced meanwhile differs here
            raise CheckpointError(f"the model {Path(path).name} was replaced on disk before this process loaded it; "
                                  "the service uses the new one once it has settled (seconds), or at a restart")
        with _BUNDLES_LOCK:
            _BUNDLES[key] = hit
    with _BUNDLES_LOCK:
        for old in [k for k in _BUNDLES if k[0] == path and k[1] not in keep][:-VERSIONS_KEPT]:
            del _BUNDLES[old]
    return hit


def _forget(path: str, sha256: str) -> None:
    """Drop the loaded version ``sha256`` of ``path`` (one refused: it must not push out one in use)."""
    with _BUNDLES_LOCK:
        _BUNDLES.pop((path, sha256), None)


#: Seconds between a worker's checks that the process that started it is still its parent.
PARENT_POLL_SECONDS = 1.0


#: In a worker process: where :meth:`LiveForecaster.warm_up`'s pings wait for each other (None elsewhere).
_WARM_BARRIER = None


def _worker_start(threads: int, parent: int | None = None, barrier=None) -> None:
    global _WARM_BARRIER
    import torch

    torch.set_num_threads(threads)
    _WARM_BARRIER = barrier
    if parent is not None:
        threading.Thread(target=_exit_when_orphaned, args=(parent,), name="parent-watch", daemon=True).start()


def _exit_when_orphaned(parent: int, poll: float = PARENT_POLL_SECONDS) -> None:
    """End this worker process once ``parent`` is no longer its parent.

    A parent killed outright (SIGKILL, the OOM killer) runs no shutdown, and a worker blocks for ever on its task
    queue (it holds both ends of the pipe, so it never reads an end of file): it would live on under init with the
    models loaded. The dead parent's children are re-parented, so ``os.getppid()`` changes; then the worker exits
    (no task of it can be answered). Polled rather than ``prctl(PR_SET_PDEATHSIG)``: that signal follows the
    *thread* that started the worker, and a pool may start one from a thread that ends long before the server.
    Where a parent's death does not change ``getppid`` (Windows) this never fires and costs a sleeping thread.
    """
    while os.getppid() == parent:
        time.sleep(poll)
    log.warning("model worker %d: the service process %d is gone; exiting", os.getpid(), parent)
    os._exit(1)


def _task(path: str, sha256: str, station: str, ts: pd.DataFrame, issue_date, leads: int, data_dir, setup,
          fit: bool, weather_forecast=None, calibration: dict | None = None, keep=(), masked=()):
    """One forecast (in a worker, or in the caller's thread): ``(LiveForecast, StationSetup or None)``. With
    ``fit``, ``ts`` is the whole record: the station's setup is worked out on it (with ``calibration``, the
    model's as the service read it), then it is cut, and the setup is returned too. Without, ``setup``'s archive
    of forecasts may be named by its file only (:meth:`~sca2lstm.evaluation.rain_mapping.StationRain.by_file`): a
    one this process does not keep raises :class:`~sca2lstm.evaluation.rain_mapping.ArchiveNotHere`. ``keep``: the
    versions of ``path`` held loaded (:func:`_bundle`)."""
    bundle = _bundle(path, sha256, keep)
    if fit:
        setup = station_setup(bundle, station, ts, data_dir, path, calibration)
        ts, masked = forecast_part(station, ts, pd.Timestamp(issue_date), bundle[1])
    elif setup.rain is not None:  # its archive as this process keeps it (ArchiveNotHere: send it)
        setup = replace(setup, rain=setup.rain.in_process())
    # the setup goes back only where it was worked out here: the caller keeps it
    return issued_forecast(bundle, station, ts, issue_date, leads, data_dir, setup, weather_forecast, masked), (
        setup if fit else None)


def _ping(models: list[tuple[str, str]], timeout: float | None = None) -> int:
    for path, sha256 in models:
        _bundle(path, sha256, [s for p, s in models if p == path])
    if _WARM_BARRIER is not None:
        # Held until every worker holds a ping: no worker takes two while another takes none (the first worker
        # up took them all before), so each has loaded the models before a file of them can be replaced.
        _WARM_BARRIER.wait(timeout)
    return os.getpid()


#: Seconds between two looks for new fine-tuned models in a watched --model folder, and for checkpoints in use
#: replaced on disk (on requests).
RESCAN_SECONDS = 5.0
#: A new or replaced checkpoint (and its calibration) must have been left alone this long before it is used: a
#: writer that puts the calibration beside the model after it (or a copy by hand) has then finished.
SETTLE_SECONDS = 2.0


class LiveForecaster:
    """Forecasts of stations from their current data, by their models, in ``workers`` processes.

    Parameters
    ----------
    default : ModelRef
        The model of every station without its own.
    own : dict of str -> ModelRef
        Stations' own (fine-tuned) models.
    data_dir : path
        The stations' data folder (static attributes).
    workers : int
        Worker processes (each loads the models it is asked for once, one torch thread each); 0 runs each
        forecast in the calling thread.
    folder : path, optional
        The ``--model`` folder ``own`` was found in: :meth:`rescan` looks there again for the ``stations``'
        fine-tuned models (:func:`fine_tuned_files`), so one fine-tuned while the service runs is used
        without a restart. None: no new models are looked for (a checkpoint in use replaced on disk still is
        taken).
    stations : list of str, optional
        The stations whose fine-tuned models :meth:`rescan` looks for.
    rescan_every : float
        Seconds between two looks of :meth:`rescan` (unless forced).
    settle : float
        Seconds a new or replaced checkpoint and its calibration must have been unchanged before they are used.
    """

    def __init__(self, default: ModelRef, own: dict | None = None, data_dir=None, workers: int = 0, *,
                 folder=None, stations=(), rescan_every: float = RESCAN_SECONDS, settle: float = SETTLE_SECONDS):
        # Each model as read now (its files' state and calibration): what the workers load must be these bytes.
        self.default = self._read(default)
        self.own = {}  # filled below, with the checkpoints that load
        self.folder = Path(folder) if folder is not None else None
        self.stations = [str(s) for s in stations]
        self.rescan_every = rescan_every
        self.settle = settle
        self._next_scan = time.monotonic() + rescan_every
        self._scan_lock = threading.Lock()
        self._refused: dict[str, tuple] = {}  # checkpoint -> its files' state when it was refused
        self._held: dict[tuple, int] = {}  # (path, sha256) -> how many running daily issues hold it (holding)
        self.data_dir = data_dir
        self._setups: dict[tuple, StationSetup] = {}
        self._warnings: dict[tuple, Warnings] = {}  # levels worked out without a setup (:meth:`warnings`), by key
        self._fitting: dict[tuple, cf.Future] = {}  # setups being worked out, by key
        self._lock = threading.Lock()
        self.workers = workers
        if workers > 0:
            ctx = multiprocessing.get_context("spawn")  # no fork of a process holding threads and torch
            self._pool = cf.ProcessPoolExecutor(workers, mp_context=ctx, initializer=_worker_start,
                                                initargs=(1, os.getpid(), ctx.Barrier(workers)))
        else:
            self._pool = cf.ThreadPoolExecutor(1, thread_name_prefix="forecast")
        # A station's fine-tuned checkpoint that does not load (cut short by a failed copy, damaged), or whose
        # calibration cannot be read, costs that station its own model, not every station the service: the
        # pretrained model forecasts it, one line says so, and the files are looked at again once they change, as a
        # replacement that does not load (:meth:`_take`).
        for station, ref in (own or {}).items():
            state = _files_state(ref.path)
            try:
                ref = self._read(ref, state)
                self.config(ref)
            except (Sca2lstmError, OSError) as e:
                self._refused[ref.path] = state
                log.warning("station %s: the fine-tuned model %s is not used: %s; the station is forecast by the "
                            "pretrained model", station, ref.path, " ".join(str(e).split()))
                continue
            self.own[station] = ref
        for ref in self.refs():  # refuse a checkpoint that cannot forecast now, not at the first request
            cfg = self.config(ref)
            if cfg.training.forecast_leads < 1:
                raise UsageError(f"the {ref.kind} model {Path(ref.path).name} is hindcast-only "
                                 "(training.forecast_leads 0); the service needs one trained to forecast from "
                                 "an issue date (training.forecast_leads >= 1)")
        self._leads = self.max_leads()  # what the service answers; a model found later must forecast as many

    def refs(self) -> list[ModelRef]:
        return [self.default, *self.own.values()]

    def model(self, station: str) -> ModelRef:
        return self.own.get(station, self.default)

    def config(self, ref: ModelRef):
        return _bundle(ref.path, ref.sha256, self._kept(ref.path))[1]

    @contextlib.contextmanager
    def holding(self, refs):
        """Keep the model versions ``refs`` loaded, in this process and in the workers that load them, while the
        block runs (a daily issue, which forecasts every station with the versions it started with): a checkpoint
        replaced on disk again and again meanwhile, its replacements taken and loaded by requests, does not push
        them out (:data:`VERSIONS_KEPT`). :meth:`preload` loads them in every worker at the start."""
        keys = list(dict.fromkeys((r.path, r.sha256) for r in refs))
        with self._lock:
            for k in keys:
                self._held[k] = self._held.get(k, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                for k in keys:
                    self._held[k] -= 1
                    if not self._held[k]:
                        del self._held[k]

    def preload(self, refs) -> None:
        """Load the model versions ``refs`` in every worker now (:meth:`warm_up`), before their files can be
        replaced again: a version taken moments ago (a daily issue's) is then forecast by every worker. A worker
        that cannot load one (its file replaced in the moment since it was taken) is named in one warning line;
        the forecasts of it that land there are refused in one line (:func:`_bundle`)."""
        try:
            self.warm_up(models=list(dict.fromkeys((r.path, r.sha256) for r in refs)))
        except Exception as e:  # noqa: BLE001 - each forecast that lands there says why again, in one line
            log.warning("a model worker could not load the models to forecast with: %s",
                        " ".join(str(e).split()) or type(e).__name__)

    def _kept(self, path: str) -> tuple:
        """The sha256 of each version of checkpoint ``path`` held by :meth:`holding` now."""
        with self._lock:
            return tuple(s for p, s in self._held if p == path)

    def max_leads(self) -> int:
        """The fewest lead days any of the models forecasts."""
        return min(self.config(r).training.forecast_leads for r in self.refs())

    def rescan_due(self) -> bool:
        """True where :meth:`rescan` would look at the files now (cheap: no file is touched)."""
        return time.monotonic() >= self._next_scan

    def rescan(self, force: bool = False) -> list[str]:
        """Look again for the stations' fine-tuned models in the folder, at most every ``rescan_every``
        seconds (``force``: now), and forecast each station with the model a restart would choose.

        A station switches to a new or newer fine-tuned checkpoint, or to the checkpoint in use replaced on
        disk (copied over, or renamed onto its name), once it and its calibration have been left alone
        ``settle`` seconds, it loads and it forecasts the lead days the service answers (else one warning
        line, and the station keeps its model until the file changes again); until then the model it
        replaces forecasts, as it was read. A station goes back to the pretrained model where its own is
        gone; the pretrained model replaced on disk is taken the same way. One log line per switch. Returns
        the stations that switched.
        """
        if not (force or self.rescan_due()):
            return []
        if not self._scan_lock.acquire(blocking=force):  # another request is looking right now
            return []
        try:
            self._next_scan = time.monotonic() + self.rescan_every
            switched = []
            if _files_state(self.default.path) != self.default.files:
                ref = self._take(self.default.path, self.default.kind, "every station without its own")
                if ref is not None:
                    self.default = ref
                    switched = [s for s in self.stations if s not in self.own]
                    log.info("the pretrained model %s was replaced: now forecasting with it (sha256 %s)", ref.path,
                             ref.sha256[:12])
            if self.folder is None:
                return switched
            try:
                found = fine_tuned_files(self.folder, self.stations)
            except OSError as e:  # the folder itself is unreadable or gone: keep serving what is loaded
                log.warning("--model %s cannot be listed (%s); the stations keep their models", self.folder, e)
                return switched
            for station in self.stations:
                now, new = self.own.get(station), found.get(station)
                if (now.path if now else None) == (str(new) if new else None) and (
                        now is None or _files_state(now.path) == now.files):
                    continue
                ref = self._take(new, "fine-tuned", f"station {station}") if new is not None else self.default
                if ref is None:
                    continue
                with self._lock:
                    own = dict(self.own)
                    if ref is self.default:
                        own.pop(station, None)
                    else:
                        own[station] = ref
                    self.own = own  # one assignment: readers see the old or the new mapping, whole
                switched.append(station)
                if ref is self.default:
                    log.info("station %s: its fine-tuned model %s is gone; now forecast by the pretrained model",
                             station, now.path)
                else:
                    log.info("station %s: now forecast by its fine-tuned model %s (sha256 %s), found in %s",
                             station, ref.path, ref.sha256[:12], self.folder)
            return switched
        finally:
            self._scan_lock.release()

    @staticmethod
    def _read(ref: ModelRef, state: tuple | None = None) -> ModelRef:
        """``ref`` with its files' ``state`` (default: now) and its calibration as it is now."""
        state = _files_state(ref.path) if state is None else state
        calibration = read_calibration(ref.path)
        return replace(ref, files=state, calibration=calibration, calibration_sha256=calibration_identity(calibration))

    def _take(self, path, kind: str, who: str) -> ModelRef | None:
        """The :class:`ModelRef` of the new or replaced checkpoint ``path`` (``kind``, forecasting for ``who``),
        loaded and checked; None where it is not to be used (yet)."""
        name = str(path)
        state = _files_state(name)
        if state[0] is None:
            return None  # gone since it was listed
        if time.time_ns() - max(s[1] for s in state if s is not None) < self.settle * 1e9:
            return None  # still being written beside (its calibration), or copied: the next look takes it
        if self._refused.get(name) == state:
            return None
        try:
            ref = ModelRef(name, file_sha256(name), kind)
            loaded = (name, ref.sha256) in _BUNDLES
            leads = self.config(ref).training.forecast_leads  # loads it: a truncated file fails here
            if leads < self._leads:
                if not loaded:
                    _forget(name, ref.sha256)
                raise CheckpointError(f"it forecasts {leads} lead day(s), fewer than the {self._leads} the service "
                                      "answers; restart the service to serve fewer")
            ref = self._read(ref, state)
        except (Sca2lstmError, OSError) as e:
            self._refused[name] = state
            log.warning("%s: the %s model %s is not used: %s; %s keeps the model it has", who, kind, name,
                        " ".join(str(e).split()), who)
            return None
        if _files_state(name) != state:
            return None  # changed while it was read: the next look takes the finished one
        return ref

    def warm_up(self, timeout: float = 300.0, models: list[tuple[str, str]] | None = None) -> None:
        """Start every worker and load the models in each (one ping per worker, held until all hold one), so the
        first requests do not pay for it, and a checkpoint replaced on disk after this is never refused by a
        worker that had not read it yet (the model it replaces forecasts until the replacement is taken).
        ``models``: the ``(path, sha256)`` to load (default: every station's model now)."""
        models = [(r.path, r.sha256) for r in self.refs()] if models is None else models
        for f in [self._pool.submit(_ping, models, timeout) for _ in range(max(1, self.workers))]:
            f.result(timeout=timeout)

    def submit(self, station: str, ts: pd.DataFrame, data_key, issue_date, leads: int,
               weather_forecast=None, model: ModelRef | None = None) -> cf.Future:
        """Start the forecast of ``station`` from its record ``ts`` (all of it) for ``issue_date``.

        ``data_key`` names the version of ``ts`` (e.g. a fingerprint of the files and the posts): the
        station's :class:`StationSetup` is worked out once per key. ``model``: the model to run (default
        the station's now; a caller that named the forecast after a model passes that one, which a
        :meth:`rescan` in between does not change). Returns a future of a :class:`LiveForecast`.
        """
        ref = model or self.model(station)
        issue = pd.Timestamp(issue_date)
        key = (ref, station, data_key)  # a model's version, not its file: a replaced file is set up again
        result: cf.Future = cf.Future()
        with self._lock:
            setup = self._setups.get(key)
            fitting = self._fitting.get(key) if setup is None else None
            fit = setup is None and fitting is None
            if fit:
                fitting = self._fitting[key] = cf.Future()  # later requests wait for this one's setup
        if fitting is not None and not fit:
            def after_setup(f: cf.Future):
                if f.exception() is not None:
                    result.set_exception(f.exception())
                else:
                    self._start(ref, station, ts, issue, leads, f.result(), False, key, result, None, weather_forecast)

            fitting.add_done_callback(after_setup)
            return result
        self._start(ref, station, ts, issue, leads, setup, fit, key, result, fitting, weather_forecast)
        return result

    def _start(self, ref, station, ts, issue, leads, setup, fit, key, result, fitting, weather_forecast,
               by_file: bool = True):
        # The setup reads the whole record, days after the issue day included (the training part and the
        # levels do not move with the issue date); the forecast itself only the recent part.
        try:
            part, masked = (ts, ()) if fit else forecast_part(station, ts, issue, self.config(ref))
            # the station's archive of forecasts goes by its file's name where the worker keeps it (by_file: False,
            # the one that did not is sent it)
            sent = replace(setup, rain=setup.rain.by_file()) if by_file and setup is not None and setup.rain else setup
            args = (ref.path, ref.sha256, station, part, issue.date(), leads, self.data_dir, sent, fit,
                    weather_forecast, ref.calibration if fit else None, self._kept(ref.path), masked)
            inner = self._pool.submit(_task, *args)
        except (RuntimeError, Sca2lstmError) as e:  # the pool was shut down; a model this process cannot load
            if fit:
                self._settle(key, fitting, None, e)
            result.set_exception(e)
            return

        def done(f: cf.Future):
            err = f.exception()
            if isinstance(err, ArchiveNotHere):  # a worker without the station's archive: sent it with the setup
                self._start(ref, station, ts, issue, leads, setup, fit, key, result, fitting, weather_forecast, False)
                return
            fc, fitted = (None, None) if err is not None else f.result()
            if fit:
                self._settle(key, fitting, fitted, err)
            if err is not None:
                result.set_exception(err)
            else:
                result.set_result(fc)

        inner.add_done_callback(done)

    def _settle(self, key, fitting: cf.Future, setup, err) -> None:
        """The setup of ``key`` is worked out (or failed): keep it, and release the requests waiting for it."""
        with self._lock:
            self._fitting.pop(key, None)
            if err is None:
                if len(self._setups) > 4096:
                    self._setups.clear()
                self._setups[key] = setup
        if err is None:
            fitting.set_result(setup)
        else:
            fitting.set_exception(err)

    def warnings(self, station: str, ts: pd.DataFrame, data_key, model: ModelRef | None = None) -> Warnings:
        """The levels the forecasts of ``station`` by ``model`` (default: its model now) warn on, from its record
        ``ts`` of version ``data_key`` (as :meth:`submit`), without running the model: those of its setup where it
        is worked out, else :func:`station_warnings` in the calling thread (once per key)."""
        ref = model or self.model(station)
        key = (ref, station, data_key)
        with self._lock:
            setup = self._setups.get(key)
            known = setup.warnings if setup is not None else self._warnings.get(key)
        if known is not None:
            return known
        calibration = ref.calibration if ref.calibration is not None else read_calibration(ref.path)
        found = station_warnings(_bundle(ref.path, ref.sha256, self._kept(ref.path)), station, ts, self.data_dir,
                                 calibration)
        with self._lock:
            if len(self._warnings) > 4096:
                self._warnings.clear()
            self._warnings[key] = found
        return found

    def forecast(self, station: str, ts: pd.DataFrame, data_key, issue_date, leads: int,
                 weather_forecast=None) -> LiveForecast:
        """:meth:`submit`, waited for."""
        return self.submit(station, ts, data_key, issue_date, leads, weather_forecast).result()

    def close(self) -> None:
        """Stop the workers (a forecast running in one is finished first)."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
