"""From files to model-ready arrays: basin records, the feature cache, scaled sequences and windows.

Samples are indexed by (basin, window start) and gathered on demand from one float32 array per
quantity, so memory grows with days x features, never with the number of overlapping windows.

A window of ``seq_len`` days ends at day t. Its inputs hold meteorology up to day t and observed
discharge up to day t - lead_days (the features are built that way); the loss and the reported
forecasts are the last ``seq_len - spinup`` steps, the first ``spinup`` steps only warm up the states.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import Config
from ..errors import DataError
from ..fileio import default_cache_root, file_sha256
from ..logs import progress_bar
from . import reader
from .features import PRECIP_DERIVED, PRECIP_SUM_DAYS, feature_spec, precip_sum_min_days, raw_features
from .pet import PET_COLUMNS, oudin_pet
from .scaling import Scalers

log = logging.getLogger(__name__)

CACHE_VERSION = "6"  # bump when raw_features(), the input completion or the reader's quality control changes meaning


# ---------------------------------------------------------------------------------------- locations
def cache_root(cfg: Config) -> Path:
    return Path(cfg.data.cache_dir).expanduser() if cfg.data.cache_dir else default_cache_root()


BUILTIN = "builtin"  # the data_dir value that asks for the built-in synthetic basins by name


def _builtin_dir(cfg: Config) -> Path:
    from .synthetic import builtin_dataset_dir
    return builtin_dataset_dir(cache_root(cfg), cfg.data.synthetic_basins, cfg.data.synthetic_seed)


#: Written by ``sca2lstm data synth --out DIR``: the folder holds synthetic basins, whatever its name.
SYNTHETIC_MARKER = "SYNTHETIC_BASINS.txt"


def mark_synthetic(folder, written_by: str) -> None:
    """Mark ``folder`` as holding synthetic basins (:data:`SYNTHETIC_MARKER`): they carry real gauge ids, and the
    marker keeps a model trained on them from taking real data for its own, and the reverse."""
    (Path(folder).expanduser() / SYNTHETIC_MARKER).write_text(
        f"Synthetic basins written by {written_by}, not observations. A model trained on them is refused on real "
        "data, and the reverse.\n", encoding="utf-8")


def _is_cache_folder(path: Path) -> bool:
    """A folder made by :func:`~sca2lstm.data.synthetic.builtin_dataset_dir` (``synthetic/gb_n<N>_seed<S>_v<V>``):
    made again, the same, where it is gone."""
    path = Path(path)
    return path.parent.name == "synthetic" and re.fullmatch(r"gb_n\d+_seed\d+_v\d+", path.name) is not None


def _is_builtin_folder(path: Path) -> bool:
    """The built-in basins' cache folder, or one ``sca2lstm data synth`` wrote (it holds :data:`SYNTHETIC_MARKER`)."""
    return _is_cache_folder(path) or (path / SYNTHETIC_MARKER).is_file()


def _describe(path, builtin: bool) -> str:
    return f"the built-in synthetic basins ({path})" if builtin else f"the data folder {path}"


def recorded_data(ckpt: dict) -> tuple | None:
    """``(data_dir, builtin_data)`` a checkpoint records, or None for one written before these keys."""
    if not isinstance(ckpt, dict) or "builtin_data" not in ckpt:
        return None
    return ckpt.get("data_dir"), bool(ckpt["builtin_data"])


def resolve_data_dir(cli_value, cfg: Config, recorded: tuple | None = None) -> tuple[Path, bool]:
    """Where the data is, and whether it is the built-in synthetic dataset.

    Precedence: ``cli_value`` (``--data_dir``); else the folder ``recorded`` in a checkpoint, when it
    still exists; else ``$SCA2LSTM_DATA_DIR``; else ``cfg.data.data_dir``; else the built-in synthetic
    basins, generated once into the cache folder (the log says so in one line). Any of these may be
    ``"builtin"``, which asks for the built-in basins by name.

    Parameters
    ----------
    cli_value : str or Path or None
    cfg : Config
    recorded : (str or None, bool or None), optional
        ``(data_dir, builtin_data)`` of the checkpoint a model comes from (``None`` for pretraining
        and for checkpoints written before these keys existed). A model trained on the built-in
        basins gets them back (regenerated into the cache if its folder is gone).

    Returns
    -------
    (Path, bool)
        The folder and ``is_builtin``.

    Raises
    ------
    DataError
        A folder that does not exist; or a model trained on real data pointed at the built-in basins,
        or the reverse (one line naming both folders). Another real folder than the recorded one is
        allowed: data gets moved.
    """
    rec_dir, rec_builtin = recorded if recorded is not None else (None, None)
    chosen = cli_value
    if not chosen and rec_dir:
        if rec_builtin:
            env = os.environ.get("SCA2LSTM_DATA_DIR")
            if env and env != BUILTIN:
                log.warning("the model was trained on the built-in synthetic basins: it runs on them, not on "
                            "$SCA2LSTM_DATA_DIR=%s (a model runs on the kind of data it learned)", env)
            if (Path(rec_dir) / "timeseries").is_dir():
                log.info("data: the built-in synthetic basins the model was trained on (%s)", rec_dir)
                return Path(rec_dir), True
            if not _is_cache_folder(rec_dir):  # a `data synth --out` folder: other basins than the cache's
                raise DataError(f"the model was trained on the synthetic basins of {rec_dir}, which is not found "
                                "from here; pass --data_dir with that folder (or write it again with `sca2lstm data "
                                "synth` and the same --basins, --seed and dates)")
            chosen = BUILTIN  # gone: the same basins, regenerated into the cache
        elif Path(rec_dir).expanduser().is_dir():
            chosen = rec_dir
    if not chosen:
        chosen = os.environ.get("SCA2LSTM_DATA_DIR") or cfg.data.data_dir
    if chosen and str(chosen) != BUILTIN:
        path = Path(chosen).expanduser()
        # A built-in dataset's folder named explicitly (e.g. the recorded one) is still the built-in data.
        builtin = _is_builtin_folder(path) or (
            bool(rec_builtin) and rec_dir is not None and path.resolve() == Path(rec_dir).expanduser().resolve())
        if not path.is_dir():
            what = "is a file, not a folder" if path.exists() else "does not exist"
            raise DataError(f"data folder {path} {what}; expected a CAMELS-GB folder with timeseries/ "
                            f"(or --data_dir {BUILTIN} for the built-in synthetic basins)")
    else:
        if rec_builtin is False:  # a model trained on real data: refuse before generating anything
            gone = " (not found from here)" if rec_dir and not Path(rec_dir).expanduser().is_dir() else ""
            why = ("as --data_dir builtin asks" if chosen else
                   "as nothing else is configured (--data_dir, $SCA2LSTM_DATA_DIR, data.data_dir)")
            raise DataError(f"the model was trained on {_describe(rec_dir, False)}{gone} but would run on the "
                            f"built-in synthetic basins, {why}; pass --data_dir with the data folder it was trained "
                            "on (a CAMELS-GB or station folder)")
        path, builtin = _builtin_dir(cfg), True
        if not chosen:
            log.info("No data folder configured (--data_dir, $SCA2LSTM_DATA_DIR, data.data_dir): using the "
                     "built-in synthetic basins in %s", path)
    if rec_builtin is not None and bool(rec_builtin) != builtin:
        # A model pretrained on the synthetic basins (`python sca2lstm.py` with no data folder set, as a first try
        # of the guide) meeting a station folder: the way to that station is another pretraining, not a flag.
        real_needs = ("; for this data, pretrain on real data first (CAMELS-GB: python sca2lstm.py --data_dir "
                      "/path/to/CAMELS_GB) and fine-tune or forecast with that model") if rec_builtin else ""
        raise DataError(f"the model was trained on {_describe(rec_dir, bool(rec_builtin))} but would run on "
                        f"{_describe(path, builtin)}; pass --data_dir with the model's kind of data "
                        f"({('--data_dir ' + (BUILTIN if _is_cache_folder(rec_dir) else str(rec_dir))) if rec_builtin else 'a CAMELS-GB or station folder'})"
                        f"{real_needs}")
    return path, builtin


# ---------------------------------------------------------------------------------------- records
@dataclass
class BasinRecord:
    """One basin's raw daily data: ``dates`` [T] (datetime64[D]), ``x`` [T, N], ``y`` [T] (m3/s)."""

    basin: str
    dates: np.ndarray
    x: np.ndarray
    y: np.ndarray
    source_hash: str = ""

    def index_of(self, date) -> int:
        """Position of ``date`` relative to the first day (may be negative or past the end)."""
        return int((np.datetime64(date, "D") - self.dates[0]).astype(int))

    def period(self, start, end) -> tuple[int, int]:
        """Half-open index range [i0, i1) of the days from ``start`` to ``end`` that exist in the record."""
        i0 = max(0, self.index_of(start))
        i1 = min(len(self.dates), self.index_of(end) + 1)
        return i0, max(i0, i1)

    def require_flows(self, source=None) -> int:
        """The number of days with observed discharge; a DataError saying so where there is none at all (an empty
        discharge column, or one whose every value was out of range), which no command can train on or score.
        ``source``: the basin's file, named in the message where given."""
        n = int(np.isfinite(self.y).sum())
        if n == 0:
            raise DataError(f"{f'{source}: ' if source else ''}basin {self.basin}: no observed discharge on any of its "
                            f"{len(self.dates)} days "
                            f"({self.dates[0]}..{self.dates[-1]}): its discharge column is empty or every value was "
                            "out of range; nothing to train on or score")
        return n

    def flows_digest(self, start, end) -> dict:
        """What the flows of [start, end] were: ``{"start", "end", "days"`` (observed), ``"mean"`` (m3/s),
        ``"sha256"`` (of the flows rounded to 1e-6 m3/s, NaN kept)``}``: a later change of them shows."""
        i0, i1 = self.period(start, end)
        y = np.round(np.asarray(self.y[i0:i1], dtype=np.float64), 6)
        obs = np.isfinite(y)
        return {"start": str(start), "end": str(end), "days": int(obs.sum()),
                "mean": float(y[obs].mean()) if obs.any() else None,
                "sha256": hashlib.sha256(np.ascontiguousarray(y).tobytes()).hexdigest()}


def _feature_key(cfg: Config) -> dict:
    d = cfg.data
    return {"v": CACHE_VERSION, "dyn": d.dynamic_inputs, "derived": d.derived_features,
            "hi": d.high_precip_mm, "lo": d.low_precip_mm, "ssi": d.ssi_window,
            "q_in": d.use_discharge_input, "lead": d.lead_days, "target": d.target,
            "pet": d.pet_from_temperature,
            # only when set, so that the caches of configs without the flag keep their keys
            **({"flag": True} if d.forecast_flag else {})}


def _basin_geometry(data_dir, basin: str) -> dict:
    """The attributes that change a basin's features: area (m3/s from mm/d) and latitude (PET)."""
    return {"area": reader.basin_attribute(data_dir, basin, "area"),
            "lat": reader.basin_attribute(data_dir, basin, "gauge_lat")}


def feature_cache_entry(data_dir, basin: str, cfg: Config) -> tuple[str, Path]:
    """(sha256 of the timeseries file, its cache file): the one key of a basin's features.

    The key is the file's contents, the basin's area and latitude, and the feature config. The on-disk
    cache (``features/<basin>_<key>.npy``) and the in-process one of the basin context
    (:mod:`sca2lstm.evaluation.context`) both use it, so a changed file, attribute or feature setting
    invalidates both by the same rule."""
    path = reader.timeseries_file(data_dir, basin)
    try:
        digest = file_sha256(path)
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror}") from None
    key_data = {**_feature_key(cfg), **_basin_geometry(data_dir, basin)}
    key = hashlib.sha256((digest + json.dumps(key_data, sort_keys=True)).encode()).hexdigest()[:24]
    return digest, cache_root(cfg) / "features" / f"{basin}_{key}.npy"


#: Where a basin's PET input comes from (:func:`pet_source`, as :func:`complete_inputs` fills it): ``own`` the file's
#: column of the model's PET, ``other`` the station's other PET column under the model's name (an imported station's
#: ``pet`` read as ``peti``), ``oudin`` Oudin PET derived from its temperature, ``none`` masked (a model that never
#: derives PET, on a file without it).
PET_SOURCES = ("own", "other", "oudin", "none")


def pet_source(columns, cfg: Config) -> str | None:
    """Where a basin whose data has ``columns`` gets the model's PET input (one of :data:`PET_SOURCES`), by the rule
    :func:`complete_inputs` follows; None for a model that reads no PET. Its forecasts read PET of the same kind
    (:func:`sca2lstm.weather.files.pet_rule`): a basin whose history is Oudin PET gets Oudin PET, never ET0."""
    d = cfg.data
    pet = next((c for c in d.dynamic_inputs if c in PET_COLUMNS), None)
    if pet is None:
        return None
    if d.pet_from_temperature == "always":
        return "oudin"
    if pet in columns:
        return "own"
    if any(o in columns for o in PET_COLUMNS if o != pet):
        return "other"
    return "oudin" if d.pet_from_temperature == "missing" else "none"


def pet_source_reads_columns(cfg: Config) -> bool:
    """Whether :func:`pet_source` depends on a basin's columns (a model that reads PET not always derived)."""
    return any(c in PET_COLUMNS for c in cfg.data.dynamic_inputs) and cfg.data.pet_from_temperature != "always"


def basin_pet_source(data_dir, basin: str, cfg: Config) -> str | None:
    """:func:`pet_source` of ``basin``'s timeseries file (its header, read only where the source depends on it)."""
    return pet_source(reader.timeseries_columns(data_dir, basin) if pet_source_reads_columns(cfg) else (), cfg)


def complete_inputs(df, basin: str, cfg: Config, lat: float):
    """Give ``df`` every column the features need: PET from temperature where configured
    (``data.pet_from_temperature``), and all-NaN columns (masked for the model) for inputs the basin
    lacks. It logs nothing: the inputs a basin lacks are named once, from its record
    (:func:`warn_absent_inputs`), however often its frame is completed.

    Parameters
    ----------
    df : pandas.DataFrame
        A basin's daily timeseries (:func:`sca2lstm.data.reader.read_timeseries`).
    lat : float
        Gauge latitude in degrees north (NaN when unknown).
    """
    d = cfg.data
    df = df.copy()
    for c in (c for c in d.dynamic_inputs if c in PET_COLUMNS):
        other = next((o for o in PET_COLUMNS if o != c and o in df.columns), None)
        if c not in df.columns and other is not None and d.pet_from_temperature != "always":
            # The basin's own PET under the other name (an imported station writes ``pet``): better than
            # a temperature formula.
            df[c] = df[other]
            continue
        if d.pet_from_temperature == "always" or (d.pet_from_temperature == "missing" and c not in df.columns):
            if "temperature" in df.columns and np.isfinite(lat):
                df[c] = oudin_pet(df["temperature"].to_numpy(np.float64), lat, df.index.day_of_year.to_numpy())
            else:  # masked; warn_absent_inputs says why
                df[c] = np.nan
    needed = list(d.dynamic_inputs) + (["precipitation"] if d.derived_features else [])
    for c in dict.fromkeys(needed):
        if c not in df.columns:
            df[c] = np.nan
    return df


def absent_inputs(rec: BasinRecord, cfg: Config) -> list[str]:
    """The configured meteorological input columns with no value on any day of ``rec`` (a column absent
    from the basin's file, or empty): not gaps, but an input the model never sees for this basin."""
    out = empty_inputs(rec, cfg)
    if cfg.data.derived_features and "precipitation" not in cfg.data.dynamic_inputs:
        # precipitation feeds only the derived features; they are empty exactly when it is
        j = len(cfg.data.dynamic_inputs)  # the first derived feature (features.feature_spec)
        if len(rec.x) == 0 or not np.isfinite(rec.x[:, j:j + len(PRECIP_DERIVED)]).any():
            out.append("precipitation")
    return out


# (basin, source hash, inputs) already named in this process: a file read again (the calibration after
# training, a second context) is not warned about twice.
_NAMED: set = set()


def forget_named_inputs() -> None:
    """Name absent inputs again (a fresh process, as far as these warnings go)."""
    _NAMED.clear()


def warn_absent_inputs(rec: BasinRecord, cfg: Config, source: str | None = None, where: str | None = None) -> list[str]:
    """:func:`absent_inputs` of ``rec``, named in one warning line, once per basin and file version in a
    process (the basin context and the commands refuse or report them, but do not repeat it). ``source``
    names where ``rec`` came from instead of its hash (a caller's table: the service, whose every request
    has its own part of a station's record, names a station once). ``where`` says which days ``rec`` holds
    where it is not the basin's whole data ('in the 411 days given (...)': the service's recent days, whose
    record may hold the input before them); default 'anywhere in its data'. Returns them."""
    missing = absent_inputs(rec, cfg)
    key = (rec.basin, source or rec.source_hash, tuple(missing))
    if missing and key not in _NAMED:
        _NAMED.add(key)
        pet = [c for c in missing if c in PET_COLUMNS]
        why = (f"{', '.join(pet)} from temperature (Oudin) needs the temperature column and the gauge_lat "
               "attribute" if pet and cfg.data.pet_from_temperature != "never" else "")
        said = (f"{where}{f' ({why})' if why else ''}" if where else
                f"anywhere in its data (absent from its file, or empty{f'; {why}' if why else ''})")
        log.warning("basin %s: no value of %s %s; masked as missing: the model runs without %s, which can cost "
                    "much accuracy", rec.basin, ", ".join(missing), said, "it" if len(missing) == 1 else "them")
    return missing


def load_basin(data_dir, basin: str, cfg: Config, use_cache: bool = True, entry=None) -> BasinRecord:
    """Read and featurise one basin, through an on-disk cache keyed by file contents and feature config.

    ``entry`` is the basin's ``feature_cache_entry`` when the caller has already hashed its file.
    """
    digest, cfile = entry or feature_cache_entry(data_dir, basin, cfg)
    if use_cache and cfile.is_file():
        try:
            # Memory-mapped: many basins cost page cache, not resident copies, until they are scaled.
            arr = np.load(cfile, mmap_mode="r", allow_pickle=False)
            if arr.ndim == 2 and arr.dtype == np.float32 and arr.shape[1] >= 3:
                dates = np.asarray(arr[:, -1]).astype(np.int64).astype("datetime64[D]")
                rec = BasinRecord(basin, dates, arr[:, :-2], arr[:, -2], digest)
                warn_absent_inputs(rec, cfg)
                return rec
            log.warning("cache file %s has an unexpected layout; rebuilding it", cfile)
        except (OSError, ValueError, EOFError):
            log.warning("cache file %s is unreadable; rebuilding it", cfile)
    df = reader.read_timeseries(data_dir, basin, columns=[cfg.data.target])
    df = complete_inputs(df, basin, cfg, reader.basin_attribute(data_dir, basin, "gauge_lat"))
    x, y = raw_features(df, cfg)
    dates = df.index.to_numpy().astype("datetime64[D]")
    rec = BasinRecord(basin, dates, x, y, digest)
    warn_absent_inputs(rec, cfg)
    if use_cache:
        _write_cache(cfile, rec)
    return rec


def _write_cache(cfile: Path, rec: BasinRecord) -> None:
    tmp = cfile.with_name(f".{cfile.name}.{os.getpid()}.tmp.npy")
    try:
        cfile.parent.mkdir(parents=True, exist_ok=True)
        # One float32 array [T, N + 2]: the features, the target, and the day number (exact in
        # float32 up to 2**24 days), so a single file can be memory-mapped.
        days = rec.dates.astype("datetime64[D]").astype(np.int64).astype(np.float32)
        np.save(tmp, np.column_stack([rec.x, rec.y, days]).astype(np.float32), allow_pickle=False)
        os.replace(tmp, cfile)
    except OSError as e:  # a read-only or full cache must not stop the run
        log.warning("could not write feature cache %s (%s); continuing without it", cfile, e.strerror)
    finally:
        # a write that failed (a full disk, Ctrl-C) leaves no staged file to fill the cache; renamed, there is none
        try:
            tmp.unlink()
        except OSError:
            pass


def _load_one(args):
    data_dir, basin, cfg, use_cache, entry, skip_bad = args
    try:
        return load_basin(data_dir, basin, cfg, use_cache, entry)
    except DataError as e:
        if not skip_bad:
            raise
        return e


def load_basins(data_dir, basins, cfg: Config, parallel: bool = False, use_cache: bool = True,
                skip_bad: bool = False, progress: bool = False) -> list:
    """Load several basins; ``parallel`` spreads the cache misses over all cores.

    With ``skip_bad`` a basin whose file cannot be read or used comes back as its DataError instead
    of stopping the others (the caller reports it); an unknown basin id, and an attribute file that cannot be
    read, are always an error. ``progress``: a bar over the basins on a terminal where some are not cached
    (nothing when redirected): the first read of the large sample takes minutes, before any other line.
    """
    basins = [str(b) for b in basins]
    known = set(reader.list_basins(data_dir)) if skip_bad else None
    for b in basins:  # fail fast, with the list of known basins, before any work
        if known is None or b not in known:
            reader.timeseries_file(data_dir, b)
    # The attribute files serve every basin: a damaged one is the dataset's error, said once, not each basin's.
    reader.attribute_table(data_dir)
    # Each file is hashed once: the entry tells both whether it is cached and where.
    entries = []
    for b in basins:
        try:
            entries.append(feature_cache_entry(data_dir, b, cfg))
        except DataError as e:  # an unreadable file
            if not skip_bad:
                raise
            entries.append(e)
    jobs = [(data_dir, b, cfg, use_cache, e, skip_bad) for b, e in zip(basins, entries)
            if not isinstance(e, DataError)]
    # A process pool costs ~0.1 s to start: worth it only for several cache misses.
    misses = [j for j in jobs if not use_cache or not j[4][1].is_file()]
    n_cpu = os.cpu_count() or 1
    # read from the cache, every basin takes milliseconds: a bar then would only flash
    bar = progress_bar(total=len(jobs), enabled=progress and bool(misses), desc="reading basins", unit="basin",
                       leave=False)
    with bar:
        if parallel and len(misses) > 1 and n_cpu > 1:
            with ProcessPoolExecutor(max_workers=min(len(misses), n_cpu)) as ex:
                loaded = iter([_counted(bar, r) for r in ex.map(_load_one, jobs,
                                                                chunksize=max(1, len(jobs) // (8 * n_cpu)))])
        else:
            loaded = iter([_counted(bar, _load_one(j)) for j in jobs])
    return [e if isinstance(e, DataError) else next(loaded) for e in entries]


def _counted(bar, item):
    """``item``, one step of ``bar`` done."""
    bar.update(1)
    return item


def load_static(data_dir, basins, cfg: Config, allow_absent: bool = False) -> np.ndarray:
    """Raw static attributes [B, S] (NaN where missing; such entries are flagged to the model).

    ``allow_absent``: an attribute no file of ``data_dir`` has is masked too, not an error (fine-tuning
    and prediction of a trained model, whose attribute list is fixed).
    """
    names = cfg.data.static_attributes
    df = reader.read_attributes(data_dir, basins, names, allow_absent=allow_absent)
    arr = df.to_numpy(np.float64) if names else np.zeros((len(basins), 0))
    n_missing = int((~np.isfinite(arr)).sum())
    if n_missing:
        rows = [f"{b}: {', '.join(n for n, m in zip(names, ~np.isfinite(r)) if m)}"
                for b, r in zip(df.index, arr) if (~np.isfinite(r)).any()]
        log.warning("%d static attribute values are missing and flagged as such (%s)", n_missing,
                    "; ".join(rows[:5]) + (" ..." if len(rows) > 5 else ""))
    return arr


def check_period_has_target(rec: BasinRecord, start, end, what: str) -> int:
    """Number of observed target days of ``rec`` in [start, end]; DataError when there are none."""
    i0, i1 = rec.period(start, end)
    if i1 <= i0:
        raise DataError(f"basin {rec.basin}: the {what} period {start}..{end} is outside its data "
                        f"({rec.dates[0]}..{rec.dates[-1]})")
    n = int(np.isfinite(rec.y[i0:i1]).sum())
    if n == 0:
        raise DataError(f"basin {rec.basin}: no observed discharge in the {what} period {start}..{end}")
    return n


def check_period_inputs(rec: BasinRecord, cfg: Config, start, end, what: str) -> int:
    """Missing meteorological inputs of ``rec`` in [start, end], masked for the model, with one warning
    that counts them. An input the basin lacks on every day of its record was said when its file was
    loaded (:func:`warn_absent_inputs`) and is not repeated; whether an input has values in any basin at
    all is the pretraining's check (it fits the input's scaler on them).

    Returns the number of missing input values, absent inputs included.
    """
    i0, i1 = rec.period(start, end)
    names = cfg.data.dynamic_inputs  # the first columns of ``x``, in this order (features.feature_spec)
    n_miss = (~np.isfinite(rec.x[i0:i1, :len(names)])).sum(axis=0)
    absent = set(empty_inputs(rec, cfg))
    partial = {n: int(m) for n, m in zip(names, n_miss) if m and n not in absent}
    if partial:
        detail = ", ".join(f"{n}: {m}{' (every day)' if m == i1 - i0 else ''}" for n, m in partial.items())
        # A rain sum needs most days of its window (features.precip_sum): dense rain gaps leave it missing far more
        # often than the rain itself (a day in three unread leaves the 30-day sum missing on most days), which no
        # column shows.
        feats = [n for n, _ in feature_spec(cfg)]
        sums = {n: int((~np.isfinite(rec.x[i0:i1, feats.index(n)])).sum())
                for n in (f"precip_sum_{k}d" for k in PRECIP_SUM_DAYS) if n in feats}
        wider = [f"{n} on {m}" for n, m in sums.items() if m > partial.get("precipitation", m)]
        need = " and ".join(f"{precip_sum_min_days(k)} of {k}" for k in PRECIP_SUM_DAYS)
        sums_text = (f"; the rain's gaps also leave {' and '.join(wider)} of the {i1 - i0} days missing (a sum needs "
                     f"the rain of {need} days)") if wider else ""
        log.warning("basin %s: %d missing input values in the %s period %s..%s (%s); they are masked%s",
                    rec.basin, sum(partial.values()), what, start, end, detail, sums_text)
    return int(n_miss.sum())


def empty_inputs(rec: BasinRecord, cfg: Config) -> list[str]:
    """The configured dynamic inputs that ``rec`` has no value of on any day (absent from its file)."""
    names = cfg.data.dynamic_inputs
    has = np.isfinite(rec.x[:, :len(names)]).any(axis=0)
    return [n for n, h in zip(names, has) if not h]


# ---------------------------------------------------------------------------------------- scaled arrays
class SequenceData:
    """Scaled arrays of several basins, concatenated, padded with ``pad`` missing days on each side.

    Attributes
    ----------
    x : numpy.ndarray [sum(T_b + 2 pad), N] float32, NaN where missing
    y : numpy.ndarray [sum(T_b + 2 pad)] float32, scaled target, NaN where not observed
    static : numpy.ndarray [B, S] float32, scaled (0 where missing); static_missing : bool [B, S]
    offsets : numpy.ndarray [B] int64, index of each basin's first real day in the concatenation
    """

    def __init__(self, records: list[BasinRecord], static_raw: np.ndarray, scalers: Scalers, pad: int):
        self.records = records
        self.basins = [r.basin for r in records]
        self.scalers = scalers
        self.pad = pad
        n_feat = len(scalers.feature_names)
        lengths = np.array([len(r.dates) for r in records], dtype=np.int64)
        total = int((lengths + 2 * pad).sum())
        self.x = np.full((total, n_feat), np.nan, dtype=np.float32)
        self.y = np.full(total, np.nan, dtype=np.float32)
        self.offsets = np.zeros(len(records), dtype=np.int64)
        pos = 0
        for i, r in enumerate(records):
            o = pos + pad
            self.offsets[i] = o
            self.x[o:o + len(r.dates)] = scalers.transform_x(r.x, r.basin)
            self.y[o:o + len(r.dates)] = scalers.transform_y(r.y, r.basin)
            pos += len(r.dates) + 2 * pad
        self.static, self.static_missing = scalers.transform_static(np.asarray(static_raw, dtype=np.float64))

    def gather(self, basin_idx: np.ndarray, starts: np.ndarray, seq_len: int):
        """Windows of ``seq_len`` days starting at basin-local day ``starts`` (may reach into the padding).

        Returns
        -------
        x : [B, L, N] float32 with missing set to 0;  x_missing : [B, L, N] bool
        y : [B, L] float32 (NaN where not observed);  static : [B, S];  static_missing : [B, S] bool
        """
        g = (self.offsets[basin_idx] + starts)[:, None] + np.arange(seq_len)[None, :]
        x = self.x[g]
        miss = np.isnan(x)
        x = np.where(miss, np.float32(0), x)
        return x, miss, self.y[g], self.static[basin_idx], self.static_missing[basin_idx]

    def training_windows(self, periods: list[tuple[int, int]], seq_len: int, spinup: int, coverage: float,
                         rng: np.random.Generator, n_windows: int | None = None,
                         max_windows: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Window starts for one epoch: each basin's target period is tiled with a random offset.

        Parameters
        ----------
        periods : list of (i0, i1)
            Half-open target-day range per basin (its training days).
        coverage : float
            Windows per epoch as a multiple of one tiling; >1 overlaps tiles for more steps per epoch.
        n_windows : int, optional
            A fixed number of windows instead of ``coverage``: every basin with training days gets
            ``n_windows // B`` or one more (which basins get one more is drawn), uniformly placed.
        max_windows : int, optional
            A cap on the ``coverage`` rule: when it would draw more windows than this, draw
            ``max_windows`` the fixed, fair way instead (hundreds of basins then cost a fixed time per
            epoch; a few basins are unaffected).

        Returns
        -------
        basin_idx, starts : numpy.ndarray [W] int64
            Windows whose loss steps (the last ``seq_len - spinup``) lie inside the period, shuffled.
        """
        k = seq_len - spinup
        b_all, s_all = [], []
        active = [b for b, (i0, i1) in enumerate(periods) if i1 > i0]
        if n_windows is None and max_windows is not None:
            by_coverage = sum(max(1, int(np.ceil((i1 - i0) / k * coverage))) for i0, i1 in periods if i1 > i0)
            if by_coverage > max_windows:
                n_windows = max_windows
        counts = np.zeros(len(periods), dtype=np.int64)
        if n_windows is not None and active:
            base, extra = divmod(int(n_windows), len(active))
            counts[active] = base
            counts[rng.permutation(np.asarray(active))[:extra]] += 1
        for b, (i0, i1) in enumerate(periods):
            if i1 <= i0:
                continue
            n = int(counts[b]) if n_windows is not None else max(1, int(np.ceil((i1 - i0) / k * coverage)))
            if n == 0:
                continue
            # Last loss step of each window (window end), uniformly spread over the period.
            ends = rng.integers(i0 + min(k, i1 - i0) - 1, i1, size=n)
            b_all.append(np.full(n, b, dtype=np.int64))
            s_all.append(ends - seq_len + 1)
        if not b_all:
            raise DataError("no training windows: every basin's training period is empty")
        b_all, s_all = np.concatenate(b_all), np.concatenate(s_all)
        order = rng.permutation(len(b_all))
        return b_all[order], s_all[order]

    def loss_mask(self, basin_idx: np.ndarray, starts: np.ndarray, seq_len: int, spinup: int,
                  periods: list[tuple[int, int]]) -> np.ndarray:
        """[B, L] bool: steps after spin-up whose day lies in the basin's target period."""
        day = starts[:, None] + np.arange(seq_len)[None, :]
        lo = np.array([p[0] for p in periods])[basin_idx][:, None]
        hi = np.array([p[1] for p in periods])[basin_idx][:, None]
        m = (day >= lo) & (day < hi)
        m[:, :spinup] = False
        return m


def chunk_starts(i0: int, i1: int, seq_len: int, spinup: int) -> np.ndarray:
    """Starts of the windows that forecast every day of [i0, i1) exactly once.

    Each window forecasts its last ``seq_len - spinup`` days after warming up on the ``spinup`` days
    before them, exactly as in training. Windows may begin before the record (padding is missing data).
    """
    k = seq_len - spinup
    firsts = np.arange(i0, i1, k, dtype=np.int64)  # first forecast day of each window
    return firsts - spinup


def spec_kinds(cfg: Config):
    spec = feature_spec(cfg)
    return [n for n, _ in spec], [k for _, k in spec]
