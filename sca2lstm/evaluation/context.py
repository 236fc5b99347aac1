"""One basin's context for a model: everything a command needs to run a checkpoint on one basin.

:meth:`BasinContext.resolve` is the one place where fine-tuning, prediction, issue-time forecasts and
the service work out, from a checkpoint (or a loaded bundle), a data folder and a basin id:

- the data folder (the one the checkpoint recorded unless another is given) and the basin's record;
- its periods (:mod:`sca2lstm.data.periods`: a fine-tuned checkpoint's stored ones for its basin),
  and which of their days the checkpoint learned from (``trained_on``), so a "test" score on training
  days is labelled in-sample;
- the discharge scale: the checkpoint's for a basin it knows, else fitted by one rule
  (:func:`new_basin_scale_days`) whatever the command or the issue date;
- the static attributes, scaled, with their missing flags;
- the inputs absent from the basin's whole file (refused for precipitation, or every meteorological
  input, unless allowed);
- the persistence blend weight (computed on first use: it runs the model);
- the station's metadata (:mod:`sca2lstm.data.station_meta`) and its archive of past weather forecasts, if
  any, and whether the model's weights learned that archive;
- a fingerprint of the files read, for caches and services to invalidate on.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..checkpoint import load_model, trained_on
from ..config import Config
from ..data import reader
from ..data.dataset import (BasinRecord, SequenceData, absent_inputs, complete_inputs, feature_cache_entry,
                            forget_named_inputs, load_basin, load_static, pet_source, pet_source_reads_columns,
                            recorded_data, resolve_data_dir, warn_absent_inputs)
from ..data.features import raw_features, required_columns
from ..data.ids import check_basin_id
from ..data.periods import BasinPeriods, basin_periods, fit_split
from ..data.scaling import Scalers
from ..data.station_meta import StationMeta, meta_path, read_station_meta
from ..errors import DataError
from ..notes import Note
from .metrics import true_runs
from .spread import SpreadCalibration

log = logging.getLogger(__name__)

#: The inputs without which a forecast is refused unless explicitly allowed (``allow_missing_inputs``).
ESSENTIAL_INPUTS = ("precipitation",)


@dataclass
class BlendWeights:
    """How a basin's forecast is blended with persistence (:mod:`sca2lstm.evaluation.persistence`).

    ``alpha``: the model's weight in the lead-``data.lead_days`` hindcast blend (None: the raw model);
    ``source``: where it came from, for logs and metrics.json; ``per_lead``: one weight per lead day of
    an issue-time forecast ([leads], None until a command fits or reads them) and ``per_lead_source``,
    where they came from.
    """

    alpha: float | None
    source: str
    per_lead: list | None = None
    per_lead_source: str | None = None
    tails: dict | None = None  # how the issued intervals fitted the validation days (calibration.validation_tails)
    spread: SpreadCalibration | None = None  # no-weather spread of this station (calibration.station_spread)
    spread_source: str | None = None


def days_within(spans, days) -> np.ndarray:
    """[n] bool: whether each of ``days`` (dates) lies in one of ``spans`` (``(first, last)`` pairs, both included;
    :meth:`BasinContext.seen_spans`)."""
    d = np.asarray(pd.DatetimeIndex(days).values.astype("datetime64[D]"))
    seen = np.zeros(len(d), bool)
    for first, last in spans:
        seen |= (d >= first) & (d <= last)
    return seen


@dataclass
class BasinContext:
    """A basin resolved for one checkpoint (:meth:`resolve`). Arrays: ``static_raw`` [1, S] raw (NaN
    where unknown); ``static`` [1, S] scaled, 0 where missing; ``static_missing`` [1, S] bool."""

    basin: str
    data_dir: Path
    builtin: bool
    record: BasinRecord
    cfg: Config
    scalers: Scalers            # the bundle's, or for a basin it lacks a copy with the basin's scale added
    scale_source: str           # "checkpoint", or the days it was fitted on
    static_raw: np.ndarray
    static: np.ndarray
    static_missing: np.ndarray
    missing_inputs: list        # configured inputs with no value anywhere in the basin's data
    trained_on: list            # the checkpoint's spans (checkpoint.trained_on)
    meta: StationMeta
    fingerprint: str
    bundle: tuple = field(repr=False)
    device: str = "cpu"
    test_start: object = None
    timeseries_given: bool = False
    foreign_id: bool = False    # an imported station that only shares its id with a basin the model knew
    allow_missing_inputs: bool = False  # forecast even where the days read lack precipitation (a note says so)
    notes: list = field(default_factory=list)  # the warnings of its data checks (logged once per process)
    # where its PET input came from (data.dataset.pet_source: own, other, oudin, none; None: the model reads none):
    # its forecasts read PET of that kind (pet_rule)
    pet_source: str | None = None
    _periods: BasinPeriods | None = field(default=None, repr=False)
    _frame: pd.DataFrame | None = field(default=None, repr=False)
    _blend: BlendWeights | None = field(default=None, repr=False)
    _data: SequenceData | None = field(default=None, repr=False)
    _files: _BasinFiles | None = field(default=None, repr=False)
    _archive: tuple | None = field(default=None, repr=False)   # (the station's archive or None,) once read
    _blend_days: tuple | None = field(default=None, repr=False)

    # ------------------------------------------------------------------------------------ building
    @classmethod
    def resolve(cls, checkpoint, data_dir, basin, *, cfg: Config | None = None, test_start=None,
                timeseries: pd.DataFrame | None = None, allow_missing_inputs: bool = False,
                warn_missing_inputs: bool = True, device="cpu") -> BasinContext:
        """Resolve ``basin`` for ``checkpoint``.

        Parameters
        ----------
        checkpoint : path or tuple
            A checkpoint file, or ``load_model(...)``'s (model, cfg, scalers, ckpt).
        data_dir : path or None
            ``--data_dir``; None: the folder the checkpoint recorded, else the configured one
            (:func:`sca2lstm.data.dataset.resolve_data_dir`).
        basin : str or int
        cfg : Config, optional
            The config to run with (fine-tuning's, with its overrides); default the checkpoint's.
        test_start : str, optional
            ``--test_start``: the basin follows its own record with its test part from that day.
        timeseries : pandas.DataFrame, optional
            The basin's raw daily data (date index or column) instead of its file (the service).
        allow_missing_inputs : bool
            Run even when precipitation, or every meteorological input, is absent from the whole data, and
            forecast even where the days a forecast reads lack precipitation
            (:func:`~sca2lstm.evaluation.operational.check_recent_inputs`).
        warn_missing_inputs : bool
            Name the inputs absent from ``timeseries`` in a warning (a file's are named by its loading,
            :func:`~sca2lstm.data.dataset.warn_absent_inputs`, once per file version in a process).

        Raises
        ------
        DataError
            Unknown basin, unreadable file, essential inputs absent (see ``allow_missing_inputs``), or
            too little discharge to fit the scale of a basin the checkpoint does not know.
        """
        bundle = checkpoint if isinstance(checkpoint, tuple) else load_model(checkpoint, device)
        _, ccfg, scalers, ckpt = bundle
        cfg = cfg or ccfg
        basin = check_basin_id(basin)
        given_dir = data_dir
        data_dir, builtin = data_folder((None, cfg, None, ckpt), data_dir)
        attrs = _attribute_signature(data_dir)
        files = None
        if timeseries is None:
            basin_file(data_dir, basin, given_dir)
        if timeseries is not None:
            frame = _frame_from_table(timeseries, basin, cfg, _latitude(data_dir, basin, attrs))
            x, y = raw_features(frame, cfg)
            rec = BasinRecord(basin, frame.index.to_numpy().astype("datetime64[D]"), x, y,
                              hashlib.sha256(pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes())
                              .hexdigest())
        else:
            files = _basin_files(data_dir, basin, cfg, attrs)
            rec, frame = files.record, files.frame
        # where the basin's PET came from, as its frame was completed: a caller's table by its columns
        psource = pet_source(timeseries.columns if timeseries is not None else
                             files.columns(data_dir, basin) if pet_source_reads_columns(cfg) else (), cfg)
        # The data layer names absent inputs once: load_basin for a file; here for a caller's table, which may
        # be a part of the record (the service's recent days): the lines name the days it holds
        given = None if timeseries is None else _days_given(rec.dates)
        if timeseries is not None and warn_missing_inputs:
            missing = warn_absent_inputs(rec, cfg, source=f"a table of {data_dir}", where=given)
        else:
            missing = absent_inputs(rec, cfg)
        check_missing_inputs(basin, missing, cfg, allow_missing_inputs, given)
        meta = read_station_meta(data_dir, basin)
        foreign = shares_id_only(ckpt, basin, meta, data_dir, scalers)
        # a basin of the model's id whose gauge lies elsewhere (a folder of one's own in the layout, not imported)
        elsewhere = None if foreign or basin not in scalers.basins else gauge_elsewhere(ckpt, basin, data_dir)
        if foreign or elsewhere:  # another river under a known id: nothing the model learned for that id applies to it
            bundle = forget_basin(bundle, basin)
            _, _, scalers, ckpt = bundle
        ctx = cls(basin=basin, data_dir=Path(data_dir), builtin=builtin, record=rec, cfg=cfg,
                  scalers=scalers, scale_source="checkpoint", static_raw=_static(data_dir, basin, cfg, attrs),
                  static=None, static_missing=None, missing_inputs=missing, trained_on=trained_on(ckpt),
                  meta=meta, fingerprint=fingerprint(data_dir, basin, rec.source_hash, attrs),
                  bundle=bundle, device=device, test_start=test_start, timeseries_given=timeseries is not None,
                  foreign_id=foreign, allow_missing_inputs=allow_missing_inputs, pet_source=psource, _frame=frame,
                  _files=files)
        ctx.static, ctx.static_missing = ctx.scalers.transform_static(ctx.static_raw)
        notes = [foreign_id_note(ckpt, basin, meta, data_dir) if foreign else None,
                 _once(("elsewhere", basin, str(data_dir), elsewhere["learned"], elsewhere["here"]), lambda: Note(
                     "gauge_elsewhere", basin=basin, data_dir=str(data_dir), **elsewhere)) if elsewhere else None,
                 *changed_flows_notes(ckpt, basin, rec, data_dir), unit_mismatch_note(ctx), changed_rain_note(ctx)]
        ctx.notes = [n for n in notes if n]
        if basin not in ctx.scalers.basins:
            ctx.scalers = Scalers.from_dict(scalers.to_dict())  # the bundle's scalers are never changed
            i0, i1 = new_basin_scale_days(rec, ctx.periods, cfg)
            ctx.scalers.basins[basin] = Scalers.fit_basin(basin, rec.x[i0:i1], rec.y[i0:i1], ctx.scalers.kinds)
            ctx.scale_source = f"fitted on its training days {rec.dates[i0]}..{rec.dates[i1 - 1]}"
            log.info("basin %s is not in the checkpoint; discharge scale %s", basin, ctx.scale_source)
        return ctx

    # ------------------------------------------------------------------------------------ derived parts
    @property
    def model(self):
        return self.bundle[0]

    @property
    def ckpt(self) -> dict:
        return self.bundle[3]

    @property
    def in_checkpoint(self) -> bool:
        """Whether the checkpoint itself holds this basin's discharge scale (trained or fine-tuned on it)."""
        return self.scale_source == "checkpoint"

    def basin_in_model(self) -> str:
        """How the model knows this basin, for the outputs: 'fine-tuned' (the checkpoint was fine-tuned on it),
        'pretrained' (one of the basins it learned a discharge scale for), or 'unseen' (a station it never trained
        on, or one that only shares the id of such a basin: it runs on a scale fitted on its own training days). The
        run said it on the terminal only, so a forecast kept for later did not tell which of them it was."""
        if not self.in_checkpoint:
            return "unseen"
        return "fine-tuned" if self.ckpt.get("finetuned_basin") == self.basin else "pretrained"

    @property
    def periods(self) -> BasinPeriods:
        """The basin's periods: those a fine-tuned checkpoint stored for its own basin (unless a
        ``test_start`` was given), else :func:`sca2lstm.data.periods.basin_periods`. Computed on first use
        (a forecast of a basin the checkpoint knows needs none)."""
        if self._periods is None:
            stored = self.ckpt.get("periods") if self.ckpt.get("finetuned_basin") == self.basin else None
            imported_until = (self.meta.provenance.get("record") or {}).get("end") if self.meta.imported else None
            self._periods = (BasinPeriods.from_dict(stored) if stored and self.test_start is None
                             else basin_periods(self.record, self.cfg, self.test_start, own_record=self.meta.imported,
                                                split_until=imported_until))
        return self._periods

    @property
    def frame(self) -> pd.DataFrame:
        """The basin's raw daily data, completed as training completes it (date index; the input and
        discharge columns). Read on first use."""
        if self._frame is None:
            self._frame = self._files.read_frame(self.data_dir, self.basin, self.cfg)
        return self._frame

    def sequence_data(self) -> SequenceData:
        """The record scaled with :attr:`scalers`, padded by ``training.seq_len`` (built once)."""
        if self._data is None:
            self._data = SequenceData([self.record], self.static_raw, self.scalers, pad=self.cfg.training.seq_len)
        return self._data

    def validation_days(self) -> tuple[int, int]:
        """Index range [v0, v1) of the basin's validation days, never its test part: for a checkpoint fine-tuned
        on this basin, the validation part of its fine-tuning (as stored); else the validation part of a station's
        own record, else the configured validation period. Either can hold days the model trained on (a station's
        own record, a fine-tune's ``--test_start``): :meth:`blend_days` leaves them out."""
        if self.ckpt.get("finetuned_basin") == self.basin and self.test_start is None:
            spans = [sp for sp in self.trained_on if sp["role"] == "validation" and self.basin in sp["basins"]]
            if spans:  # fine-tuning appends its own spans last
                return self.record.period(spans[-1]["start"], spans[-1]["end"])
        try:
            periods = self.periods
        except DataError:  # a record too short for its own periods: the configured validation period
            periods = None
        if periods is not None and periods.rule == "station":
            return fit_split(self.record, periods, self.cfg.finetune.fine_tune_ratio)[1:]
        return self.record.period(self.cfg.data.val_start, self.cfg.data.val_end)

    def data_record(self) -> dict:
        """What a run of this basin read, for its output files: the data folder (or the built-in basins), the
        sha256 of the basin's data, the inputs absent from it, how PET is made (``data.pet_from_temperature``:
        ``always``, ``missing`` (where the file has none) or ``never``), where this basin's PET came from
        (``pet_source``: :data:`sca2lstm.data.dataset.PET_SOURCES`, the kind its weather forecasts' PET follows), how
        the model knows the basin (``basin_in_model``: :meth:`basin_in_model`) and where its discharge scale came from
        (``discharge_scale``: 'checkpoint', or the days it was fitted on), and the warnings of its data checks."""
        return {"data_dir": str(Path(self.data_dir).expanduser().absolute()), "builtin_synthetic": bool(self.builtin),
                "basin_data_sha256": self.record.source_hash, "basin_in_model": self.basin_in_model(),
                "discharge_scale": self.scale_source, "missing_inputs": list(self.missing_inputs),
                "pet_from_temperature": self.cfg.data.pet_from_temperature, "pet_source": self.pet_source,
                "notes": list(self.notes)}

    def trained_days(self, v0: int, v1: int) -> np.ndarray:
        """[v1 - v0] bool: whether each day of [v0, v1) lies in the checkpoint's training spans of this basin.

        A pretraining basin whose record does not cover the configured periods takes its validation part from its
        own record (:mod:`sca2lstm.data.periods`), which can lie in the years the model trained on; a blend or
        spread fitted there would be in-sample. For the basin a checkpoint was fine-tuned on, the pretraining's
        spans count as much as the fine-tuning's: a ``--test_start`` or ``--fine_tune_ratio`` can move
        fine-tuning's validation part into the years the pretrained model trained on.
        """
        dates = self.record.dates[v0:v1]
        trained = np.zeros(len(dates), bool)
        if v1 <= v0:
            return trained
        for sp in self.trained_on:
            if sp["role"] == "train" and self.basin in sp["basins"]:
                trained |= (dates >= np.datetime64(sp["start"], "D")) & (dates <= np.datetime64(sp["end"], "D"))
        return trained

    def blend_days(self) -> tuple[int, int]:
        """Index range [v0, v1) a blend not stored for this basin is fitted on: its :meth:`validation_days` less
        the days the model trained on (:meth:`trained_days`; the longest run of the others, which may be empty).
        Where some were left out a line says so, once per context."""
        if self._blend_days is None:
            v0, v1 = self.validation_days()
            trained = self.trained_days(v0, v1)
            if trained.any():
                # longest run of days outside the training spans: forecasts are made over one contiguous range
                a, b = max(true_runs(~trained), key=lambda r: r[1] - r[0], default=(0, 0))  # the first longest
                best = (v0 + a, v0 + b)
                n = int((trained & np.isfinite(self.record.y[v0:v1])).sum())
                left = int(np.isfinite(self.record.y[best[0]:best[1]]).sum())
                then = (f"its blend is fitted only on the {left} observed days outside them" if left >= 2 else
                        "fewer than two others remain: its blend is the raw model")
                log.info("basin %s: its validation days %s..%s hold %d observed days the model trained on (a blend "
                         "fitted there would be in-sample); %s", self.basin, self.record.dates[v0],
                         self.record.dates[v1 - 1], n, then)
                v0, v1 = best
            self._blend_days = (v0, v1)
        return self._blend_days

    @property
    def blend(self) -> BlendWeights:
        """The persistence blend weight of :func:`sca2lstm.evaluation.persistence.basin_alpha` (the stored
        one, or fitted on :meth:`blend_days`: never a day the model trained on); computed on first use."""
        if self._blend is None:
            from .persistence import basin_alpha

            stored = self.cfg.model.persistence_blend and self.basin in (self.ckpt.get("persistence_blend") or {})
            alpha, source = basin_alpha(self.model, self.cfg, self.ckpt, self.sequence_data(), self.record,
                                        self.device, None if stored else self.blend_days())
            self._blend = BlendWeights(alpha, source)
        return self._blend

    def training_days(self) -> tuple[int, int]:
        """Index range [i0, i1) of the basin's training part (its own record's, else the configured training
        period): the days its recession bound, return-period levels and (for a station the model never saw)
        discharge scale and spread are fitted on."""
        try:
            return new_basin_scale_days(self.record, self.periods, self.cfg)
        except DataError:
            return self.record.period(self.cfg.data.train_start, self.cfg.data.train_end)

    def observed_precipitation(self) -> pd.Series | None:
        """The basin's observed daily precipitation (mm/d) of its whole record, by date (NaN: not observed): what an
        archive's forecasts are compared with and weighted by; None for a model without a precipitation input."""
        names = list(self.cfg.data.dynamic_inputs)
        if "precipitation" not in names:
            return None
        return pd.Series(self.record.x[:, names.index("precipitation")].astype(np.float64),
                         index=pd.DatetimeIndex(self.record.dates))

    def training_precipitation(self) -> np.ndarray:
        """[days] The basin's observed daily precipitation (mm/d) of its training part (:meth:`training_days`, the
        days its scale is fitted on), NaN left out: the climatology forecast precipitation is mapped to
        (:mod:`sca2lstm.weather.mapping`). A one-line DataError for a model without a precipitation input or a
        basin without precipitation on those days."""
        observed = self.observed_precipitation()
        if observed is None:
            # a note: a forecast's rain mapping line says it as the reason, in the reader's language
            raise DataError(Note("no_precipitation_input", inputs=str(list(self.cfg.data.dynamic_inputs))))
        i0, i1 = self.training_days()
        p = observed.to_numpy()[i0:i1]
        p = p[np.isfinite(p)]
        if p.size == 0:
            raise DataError(Note("no_training_rain", basin=self.basin, first=int(i0), last=int(i1)))
        return p

    def station_archive(self):
        """The station's own archive of past weather forecasts (``DATA_DIR/weather_archive/<id>.csv``, read as
        training and a reforecast read it: :func:`sca2lstm.weather.archive.read_archive`), or None where it has
        none. Read on first use: one forecast's precipitation is ranked among its earlier forecasts
        (:mod:`sca2lstm.evaluation.rain_mapping`)."""
        if self._archive is None:
            from ..weather.archive import archive_path, read_archive
            from ..weather.files import check_location, gauge_latitude

            p = archive_path(self.data_dir, self.basin)
            wf = None
            if p is not None:
                wf = read_archive(p, self.cfg, gauge_latitude(self.data_dir, self.basin), self.pet_rule)
                check_location(wf, self.data_dir, self.basin)  # one fetched for another station: refused
            self._archive = (wf,)
        return self._archive[0]

    @property
    def pet_rule(self):
        """How this basin's weather forecasts get the model's PET (:func:`sca2lstm.weather.files.pet_rule`): of the
        kind its history read (Oudin PET derived for it: Oudin PET from the forecast temperature, never ET0; a
        PET column of its own: ET0 or the forecast's PET, as the config says). The forecast, reforecast, the
        station archive and the service read it here."""
        from ..weather.files import pet_rule

        return pet_rule(self.cfg, self.pet_source)

    @property
    def learned_archive(self) -> dict | None:
        """What the checkpoint recorded of this station's archive of past weather forecasts where its weights
        trained on it (``weather_archives``, written by pretraining and by fine-tuning that kept its weights),
        else None: the model then learned that archive's rain as the archive gives it."""
        return (self.ckpt.get("weather_archives") or {}).get(self.basin)

    def seen_days(self, days) -> np.ndarray:
        """[n] bool: whether each of ``days`` (dates) is one a score of this basin's forecasts is not a test on:
        inside the checkpoint's training or validation spans of this basin, its training part (:meth:`training_days`:
        levels, recession bound, a new station's scale and spread) or the validation days its blend, tails and
        warnings are fitted on (:meth:`validation_days`)."""
        return days_within(self.seen_spans(), days)

    def seen_spans(self) -> list[tuple]:
        """The spans ``(first, last)`` (datetime64[D], both included) of :meth:`seen_days`: kept by a station's
        setup in the service, which issues its forecasts without this context."""
        spans = [(np.datetime64(sp["start"], "D"), np.datetime64(sp["end"], "D")) for sp in self.trained_on
                 if self.basin in sp["basins"]]
        for a, b in (self.training_days(), self.validation_days()):
            if b > a:
                spans.append((self.record.dates[a], self.record.dates[b - 1]))
        return spans

    def in_sample(self, start, end) -> dict:
        """Which days of [start, end] with observed discharge the checkpoint learned this basin from.

        Returns
        -------
        dict
            ``in_sample`` (bool), ``train_days`` and ``validation_days`` (observed days of [start, end]
            inside the checkpoint's training / validation spans of this basin), ``spans`` (those spans,
            clipped to [start, end]).
        """
        s, e = np.datetime64(str(start)[:10], "D"), np.datetime64(str(end)[:10], "D")
        i0, i1 = self.record.period(s, e)
        obs = np.isfinite(self.record.y[i0:i1])
        days = self.record.dates[i0:i1]
        hit = {"train": np.zeros(len(days), bool), "validation": np.zeros(len(days), bool)}
        spans = []
        for sp in self.trained_on:
            if self.basin not in sp["basins"]:
                continue
            a, b = max(s, np.datetime64(sp["start"], "D")), min(e, np.datetime64(sp["end"], "D"))
            if a > b:
                continue
            inside = (days >= a) & (days <= b) & obs
            if inside.any():
                hit[sp["role"]] |= inside
                spans.append({"role": sp["role"], "start": str(a), "end": str(b)})
        n_train = int(hit["train"].sum())
        n_val = int((hit["validation"] & ~hit["train"]).sum())
        return {"in_sample": bool(n_train or n_val), "train_days": n_train, "validation_days": n_val,
                "spans": spans}


# ---------------------------------------------------------------------------------------------- rules
#: The data checks below run once per basin, data version and checkpoint in a process (the service resolves
#: a station on every request): each key's warning (None: nothing to say), logged when first found and
#: handed to every context of that key (``BasinContext.notes``: the service shows them with the forecast).
_NOTES: dict = {}


def _once(key, compute) -> str | None:
    """The warning of the check ``key``: ``compute()`` the first time (logged if not None), then remembered."""
    if key not in _NOTES:
        _NOTES[key] = compute()
        if _NOTES[key]:
            log.warning("%s", _NOTES[key])
    return _NOTES[key]


def shares_id_only(ckpt: dict, basin: str, meta, data_dir, scalers) -> bool:
    """Whether ``basin`` is a station imported into ``data_dir`` (``sca2lstm station import``) that only shares
    its id with a basin the checkpoint was pretrained on from another folder (a user's station imported as
    32006, the guide's example id, beside CAMELS-GB 32006): then it is another river, and is resolved as a
    station the model never saw (its own discharge scale and blend; :func:`foreign_id_note` says so). A model
    fine-tuned on this id, or pretrained on this very folder, learned this station."""
    if basin not in scalers.basins or not meta.imported or ckpt.get("finetuned_basin") == basin:
        return False
    learned = ((ckpt.get("scalers") or {}).get("basins") or {}).get(basin)
    s = scalers.basins[basin]
    if learned is None or [s.q_mean, s.q_std, s.ssi_mean, s.ssi_std] != list(learned):
        return False  # the scale in use is not the checkpoint's: the caller gave the station's own
    trained_in = ckpt.get("data_dir")
    if trained_in and Path(trained_in).expanduser().resolve() == Path(data_dir).expanduser().resolve():
        return False
    return True


#: A gauge of a model's basin id this far (km) from where the model learned that basin is another river's: gauges do
#: not move that far, and coordinates rounded to two decimals differ by a kilometre at most.
GAUGE_MOVED_KM = 25.0


def basin_places(data_dir, basins) -> dict:
    """``{basin: [gauge_lat, gauge_lon]}`` of ``basins`` in ``data_dir`` (those whose attributes give both), as a
    checkpoint keeps them for :func:`gauge_elsewhere`."""
    from ..weather.files import gauge_position

    found = {str(b): gauge_position(data_dir, b) for b in basins}
    return {b: [float(v) for v in pos] for b, pos in found.items() if pos is not None}


def gauge_elsewhere(ckpt: dict, basin: str, data_dir) -> dict | None:
    """Where ``basin`` in ``data_dir`` is a gauge :data:`GAUGE_MOVED_KM` or more from the basin of that id the checkpoint
    learned (its ``basin_places``, the gauge positions of the data it trained on): ``{"km", "here", "learned",
    "trained_in"}``; else None (the same place, or a position unknown on either side). Such a basin is another
    river sharing the id (a station of one's own in a folder of the layout, given 32006, the guide's id): it runs
    as a station the model never saw, as an imported one does (:func:`shares_id_only`); it ran on the other
    basin's discharge scale and blend, its days labelled as the model's training days, without a word."""
    from ..weather.files import distance_km, gauge_position

    learned = (ckpt.get("basin_places") or {}).get(basin)
    here = gauge_position(data_dir, basin) if learned else None
    if here is None:
        return None
    km = distance_km(*learned, *here)
    if km < GAUGE_MOVED_KM:
        return None
    return {"km": int(round(km)), "here": "{:.4g}, {:.4g}".format(*here), "learned": "{:.4g}, {:.4g}".format(*learned),
            "trained_in": str(ckpt.get("data_dir") or "built-in data")}


def forget_basin(bundle, basin: str) -> tuple:
    """``bundle`` (``load_model``'s) as if the checkpoint had never known ``basin``: no discharge scale, no
    stored blend, no training or validation days of it (copies; the loaded bundle is never changed)."""
    model, cfg, scalers, ckpt = bundle
    scalers = Scalers.from_dict(scalers.to_dict())
    del scalers.basins[basin]
    ckpt = {**ckpt, "trained_on": [dict(sp, basins=[b for b in sp["basins"] if b != basin]) for sp in trained_on(ckpt)],
            "persistence_blend": {b: a for b, a in (ckpt.get("persistence_blend") or {}).items() if b != basin},
            "weather_archives": {b: a for b, a in (ckpt.get("weather_archives") or {}).items() if b != basin},
            "basin_places": {b: a for b, a in (ckpt.get("basin_places") or {}).items() if b != basin}}
    return model, cfg, scalers, ckpt


def foreign_id_note(ckpt: dict, basin: str, meta, data_dir) -> str | None:
    """The warning (once) for a station that only shares its id with a pretraining basin (:func:`shares_id_only`)."""
    trained_in = ckpt.get("data_dir")
    return _once(("foreign id", basin, str(Path(data_dir).expanduser().absolute()), trained_in),
                 lambda: Note("foreign_id", basin=basin, data_dir=str(data_dir),
                              source=str(meta.provenance.get("source", "a file")),
                              trained_in=str(trained_in or "built-in data")))


def changed_flows_notes(ckpt: dict, basin: str, rec: BasinRecord, data_dir) -> list:
    """Warnings (each logged once per basin and data version in a process) where a checkpoint fine-tuned for
    another basin runs on this one, or the flows it was fine-tuned on differ now: a station imported again with
    another rating curve or unit, or another data folder. Its discharge scale, blend and calibration were
    fitted on the old flows."""
    other, notes = ckpt.get("finetuned_basin"), []
    if other and other != basin:
        notes.append(_once(("basin", other, basin), lambda: Note("finetuned_for_other", other=str(other),
                                                                 basin=basin)))
    then = ckpt.get("finetune_flows") if other == basin else None
    if not then or rec.dates[0] > np.datetime64(then["start"]) or rec.dates[-1] < np.datetime64(then["end"]):
        return notes  # no record of the flows it was fine-tuned on (the service reads the recent part only)

    def compare() -> str | None:
        now = rec.flows_digest(then["start"], then["end"])
        if now["sha256"] == then["sha256"]:
            return None
        fmt = lambda v: "none" if v is None else f"{v:.4g}"  # noqa: E731
        return Note("flows_changed", basin=basin, start=str(then["start"]), end=str(then["end"]), data_dir=str(data_dir),
                    mean_then=fmt(then["mean"]), days_then=int(then["days"]), mean_now=fmt(now["mean"]),
                    days_now=int(now["days"]))
    notes.append(_once(("flows", basin, rec.source_hash, then["sha256"]), compare))
    return notes


#: A basin's mean flow or rain this many times off what the model or the attributes know is a unit error.
UNIT_MISMATCH_FACTOR = 3.0
#: Days of values a mean needs before it is compared (a year: seasons average out).
MIN_DAYS_FOR_UNITS = 365


def unit_mismatch_note(ctx: BasinContext) -> str | None:
    """A warning (logged once per basin and data version) where a basin's data look like another unit: its
    training years' mean flow against the discharge scale the checkpoint learned for it, or its mean rain
    against its ``p_mean`` attribute, off by more than :data:`UNIT_MISMATCH_FACTOR` (l/s for m3/s, m for mm)."""
    stored = ctx.scalers.basins.get(ctx.basin) if ctx.in_checkpoint else None
    return _once(("units", ctx.basin, ctx.record.source_hash, stored.q_mean if stored is not None else None),
                 lambda: _unit_mismatch(ctx, stored))


def _unit_mismatch(ctx: BasinContext, stored) -> str | None:
    rec, basin, found = ctx.record, ctx.basin, {}
    spans = [sp for sp in ctx.trained_on if sp["role"] == "train" and basin in sp["basins"]]
    if stored is not None and spans and stored.q_mean > 0:
        i0, i1 = rec.period(spans[0]["start"], spans[0]["end"])
        y = rec.y[i0:i1]
        # a year at least: a recent part of a few dry months is no unit error
        now = float(np.nanmean(y)) if np.isfinite(y).sum() >= MIN_DAYS_FOR_UNITS else None
        if now is not None and not (1 / UNIT_MISMATCH_FACTOR < now / stored.q_mean < UNIT_MISMATCH_FACTOR):
            found.update(start=str(spans[0]["start"]), end=str(spans[0]["end"]), flow=now, learned=float(stored.q_mean))
    names = list(ctx.cfg.data.static_attributes)
    if "p_mean" in names and "precipitation" in ctx.frame.columns:
        p_mean = float(ctx.static_raw[0, names.index("p_mean")])
        rain = pd.to_numeric(ctx.frame["precipitation"], errors="coerce")
        rain = rain.mean() if rain.notna().sum() >= MIN_DAYS_FOR_UNITS else np.nan
        if np.isfinite(p_mean) and p_mean > 0 and np.isfinite(rain) and not (
                1 / UNIT_MISMATCH_FACTOR < rain / p_mean < UNIT_MISMATCH_FACTOR):
            found.update(rain=float(rain), p_mean=p_mean)
    if not found:
        return None
    # the flows, the rain or both: one sentence each way (sca2lstm/notes.py)
    kind = "unit_mismatch_" + "_".join(k for k in ("flow", "rain") if k in found)
    return Note(kind, basin=basin, **found)


def rain_digest(frame: pd.DataFrame, start, end) -> dict | None:
    """What the precipitation of [start, end] in ``frame`` (a basin's daily data, date index) was: ``{"start", "end",
    "days"`` (with a value), ``"mean"`` (mm/d)``}``, for :func:`changed_rain_note`; None where it has no precipitation."""
    if "precipitation" not in frame.columns:
        return None
    rain = pd.to_numeric(frame["precipitation"], errors="coerce").loc[str(start):str(end)]
    return {"start": str(start), "end": str(end), "days": int(rain.notna().sum()),
            "mean": float(rain.mean()) if rain.notna().any() else None}


def changed_rain_note(ctx: BasinContext) -> str | None:
    """A warning (logged once per basin and data version) where the precipitation of the days a checkpoint was
    fine-tuned on for this basin (its ``finetune_rain``) now averages :data:`UNIT_MISMATCH_FACTOR` times more or less
    than it did then: a station imported again with its rain in another unit (0.1 mm read as mm, m for mm). The
    flows' check (:func:`changed_flows_notes`) sees only the flows, and an imported station's ``p_mean`` is computed
    from the same rain, so :func:`unit_mismatch_note` cannot tell; the model would read ten times the rain it was
    fine-tuned on without a word."""
    then = ctx.ckpt.get("finetune_rain") if ctx.ckpt.get("finetuned_basin") == ctx.basin else None
    if not isinstance(then, dict) or not then.get("mean") or then.get("days", 0) < MIN_DAYS_FOR_UNITS:
        return None

    def compare() -> str | None:
        now = rain_digest(ctx.frame, then["start"], then["end"])
        if now is None or now["days"] < MIN_DAYS_FOR_UNITS or now["mean"] is None:
            return None  # a part of the record (the service's recent days) or no rain: nothing to compare
        if 1 / UNIT_MISMATCH_FACTOR < now["mean"] / then["mean"] < UNIT_MISMATCH_FACTOR:
            return None
        return Note("rain_changed", basin=ctx.basin, start=then["start"], end=then["end"], data_dir=str(ctx.data_dir),
                    mean_then=float(then["mean"]), mean_now=float(now["mean"]))
    return _once(("rain", ctx.basin, ctx.record.source_hash, then["mean"]), compare)


def data_folder(bundle, data_dir) -> tuple[Path, bool]:
    """The data folder a checkpoint runs on, and whether it is the built-in synthetic one: ``data_dir``
    if given, else the folder the checkpoint recorded, else the configured one
    (:func:`sca2lstm.data.dataset.resolve_data_dir`). ``bundle``: ``load_model(...)``'s output."""
    return resolve_data_dir(data_dir, bundle[1], recorded=recorded_data(bundle[3]))


def check_basins(bundle, data_dir, basins) -> Path:
    """The data folder of :func:`data_folder`, after checking that it holds every basin of ``basins``
    (a DataError naming the unknown id and the known ones): bad ids are refused before any work."""
    folder, _ = data_folder(bundle, data_dir)
    for basin in basins:
        basin_file(folder, basin, data_dir)
    return folder


def basin_file(folder, basin: str, data_dir_given) -> Path:
    """:func:`~sca2lstm.data.reader.timeseries_file` of ``basin`` in ``folder``; where no ``--data_dir`` was given
    (``folder`` is the model's own), a basin not there is most likely a station imported into a folder of its
    own (``station import --out``): the one-line refusal says how to name it, not only the model's ids."""
    try:
        return reader.timeseries_file(folder, basin)
    except DataError as e:
        if data_dir_given is not None or str(e).endswith("(docs/stations.md)"):
            raise
        raise DataError(f"{e}. Without --data_dir the model's own data folder is read; for a station of your own, "
                        "add --data_dir with the folder it was imported into (station import --out)") from None


def new_basin_scale_days(rec: BasinRecord, periods: BasinPeriods, cfg: Config) -> tuple[int, int]:
    """Days ``[i0, i1)`` a basin the checkpoint does not know fits its discharge scale on, the same for
    every command and issue date: its training part. Under the configured periods that is the configured
    training period; a station following its own record uses the first ``finetune.fine_tune_ratio`` of
    its days before the test part (:func:`sca2lstm.data.periods.fit_split`)."""
    if periods.rule == "station":
        return fit_split(rec, periods, cfg.finetune.fine_tune_ratio)[:2]
    return rec.period(cfg.data.train_start, cfg.data.train_end)


def _days_given(dates) -> str:
    """Where a caller's table has no value of an input: 'in the N days given (FIRST..LAST)'."""
    return f"in the {len(dates)} days given ({dates[0]}..{dates[-1]})" if len(dates) else "in the empty table given"


def check_missing_inputs(basin: str, missing: list, cfg: Config, allow: bool, where: str | None = None) -> None:
    """Refuse precipitation, or every meteorological input, absent from the data read unless ``allow``
    (``--allow_missing_inputs``). The data layer has named them (:func:`~sca2lstm.data.dataset.warn_absent_inputs`).
    ``where`` says which days were read where not the basin's whole file ('in the 411 days given (...)': a
    caller's table may be the recent part of a record that holds the input before); default 'anywhere in its
    data'."""
    if not missing:
        return
    inputs = [c for c in required_columns(cfg) if c != cfg.data.target]
    essential = [c for c in missing if c in ESSENTIAL_INPUTS]
    every = set(inputs) <= set(missing)
    if (essential or every) and not allow:
        what = "every meteorological input" if every else f"{', '.join(essential)}"
        where = where or "anywhere in its data"
        raise DataError(f"basin {basin}: {what} ({', '.join(missing)}) has no value {where}; the "
                        "model would run blind to it. Add the column, or pass --allow_missing_inputs to run "
                        "anyway (the outputs then name the missing input)")


# ---------------------------------------------------------------------------------------------- files
@dataclass
class _BasinFiles:
    """A basin's record (and raw frame, once asked for), read from a timeseries file of sha256 ``digest``."""

    digest: str
    record: BasinRecord
    lat: float
    frame: pd.DataFrame | None = None
    _columns: list | None = None

    def columns(self, data_dir, basin: str) -> list:
        """The file's column names (its header), read once."""
        if self._columns is None:
            self._columns = reader.timeseries_columns(data_dir, basin)
        return self._columns

    def read_frame(self, data_dir, basin: str, cfg: Config) -> pd.DataFrame:
        if self.frame is None:
            df = reader.read_timeseries(data_dir, basin, columns=[cfg.data.target])
            self.frame = complete_inputs(df, basin, cfg, self.lat)
        return self.frame


# Basins as last read, under the feature cache's own key (data.dataset.feature_cache_entry: the file's sha256,
# area, latitude and feature config), so a changed file is read again by the rule the on-disk cache follows.
# Parsing and featurising decades of CSV costs more than a whole forecast; hashing the file costs little.
_BASIN_CACHE: dict = {}
# Static attributes and latitudes by (folder, basin, names), with the attribute files' signature.
_STATIC_CACHE: dict = {}
_CACHE_SIZE = 256


def clear_caches() -> None:
    """Forget the cached files, and which absent inputs were named (timing a first call, freeing memory)."""
    _BASIN_CACHE.clear()
    _STATIC_CACHE.clear()
    forget_named_inputs()


def _file_signature(paths) -> tuple:
    out = []
    for p in paths:
        try:
            st = Path(p).stat()
        except OSError:
            continue
        out.append((str(p), st.st_size, st.st_mtime_ns))
    return tuple(out)


def _attribute_signature(data_dir) -> tuple:
    return _file_signature(reader.attribute_files(data_dir))


def _content_sha256(path) -> str:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:  # no such file (a basin without metadata)
        return ""


def fingerprint(data_dir, basin: str, record_hash: str, attrs: tuple | None = None) -> str:
    """sha256 (16 hex digits) of the record's contents (``record_hash``), the attribute and metadata files'
    sizes and modification times, and the metadata file's contents: it changes whenever anything the context
    was built from changes (:attr:`BasinContext.fingerprint`; the service keys its answers on it). ``attrs``:
    the attribute files' signature when the caller has it."""
    attrs = _attribute_signature(data_dir) if attrs is None else attrs
    from ..weather.archive import archive_candidates

    meta = meta_path(data_dir, basin)
    # The metadata file (a few kB) by its contents too: its warning levels rewritten to the same size within one
    # tick of a coarse file clock (a few ms on many kernels) keep its size and time, not its digest. The station's
    # archive of forecasts by size and time: a forecast's precipitation is ranked among it.
    doc = {"record": record_hash, "files": [*attrs, *_file_signature([meta, *archive_candidates(data_dir, basin)])],
           "meta_sha256": _content_sha256(meta)}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


def _put(cache: dict, key, value) -> None:
    if len(cache) >= _CACHE_SIZE:
        cache.clear()
    cache[key] = value


def _basin_files(data_dir, basin: str, cfg: Config, attrs: tuple) -> _BasinFiles:
    entry = feature_cache_entry(data_dir, basin, cfg)
    key = str(entry[1])
    hit = _BASIN_CACHE.get(key)
    if hit is None:
        hit = _BasinFiles(entry[0], load_basin(data_dir, basin, cfg, entry=entry), _latitude(data_dir, basin, attrs))
        _put(_BASIN_CACHE, key, hit)
    return hit


def _latitude(data_dir, basin: str, attrs: tuple) -> float:
    """The gauge latitude for Oudin PET; NaN without a data folder or the attribute."""
    key = (str(Path(data_dir).resolve()), basin, "gauge_lat")
    hit = _STATIC_CACHE.get(key)
    if hit is not None and hit[0] == attrs:
        return hit[1]
    try:
        lat = reader.basin_attribute(data_dir, basin, "gauge_lat")
    except DataError:
        lat = float("nan")
    _put(_STATIC_CACHE, key, (attrs, lat))
    return lat


def _frame_from_table(timeseries, basin: str, cfg: Config, lat: float) -> pd.DataFrame:
    """A caller's table (date index or column, the basin's columns) as a completed daily frame."""
    target = cfg.data.target
    if not isinstance(timeseries, pd.DataFrame):
        raise DataError(f"timeseries: expected a DataFrame indexed by date, got {type(timeseries).__name__}")
    df = timeseries.set_index("date") if "date" in timeseries.columns else timeseries
    if target not in df.columns:
        raise DataError(f"timeseries of basin {basin}: missing column {target!r}; found {list(df.columns)}")
    try:
        idx = pd.DatetimeIndex(pd.to_datetime(df.index)).normalize()
    except (ValueError, TypeError):
        raise DataError(f"timeseries of basin {basin}: the index must be dates (YYYY-MM-DD)") from None
    if idx.has_duplicates:
        raise DataError(f"timeseries of basin {basin}: duplicate date {idx[idx.duplicated()][0].date()}")
    if len(idx) == 0:
        raise DataError(f"timeseries of basin {basin} has no rows")
    out = pd.DataFrame({c: pd.to_numeric(df[c], errors="coerce").to_numpy(np.float64) for c in df.columns},
                       index=idx.rename("date")).sort_index()
    out = out.reindex(pd.date_range(out.index[0], out.index[-1], freq="D", name="date"))
    return complete_inputs(out, basin, cfg, lat)


def _static(data_dir, basin: str, cfg: Config, attrs: tuple) -> np.ndarray:
    """Raw static attributes [1, S] of ``basin`` (NaN where unknown; an attribute no file has is masked)."""
    key = (str(Path(data_dir).resolve()), basin, tuple(cfg.data.static_attributes))
    hit = _STATIC_CACHE.get(key)
    if hit is not None and hit[0] == attrs:
        return hit[1].copy()
    arr = load_static(data_dir, [basin], cfg, allow_absent=True)
    _put(_STATIC_CACHE, key, (attrs, arr.copy()))
    return arr
