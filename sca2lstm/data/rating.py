"""Rating curves: discharge from water level (stage), and back.

Two kinds, stored in the station's metadata file (``rating_curve`` of :mod:`.station_meta`):

- **Power-law segments** ``Q = a·(h − h0)^b`` (h in m, Q in m3/s). Segments of one period are ordered
  by stage: each holds from the previous segment's ``h_max`` (the first from its ``h0``) up to its own
  ``h_max``; the top segment's ``h_max`` is the highest gauged stage (open when not given). Segments may
  carry validity dates (``valid_from``, ``valid_to``, inclusive, ``YYYY-MM-DD``): a new curve after the
  channel changed. ``--rating a=12.5,b=1.6,h0=0.15[,h_max=3.2]`` is one segment.
- **A table** of (h, Q) pairs, interpolated monotonically (scipy's PCHIP: no overshoot between pairs).

Rules, the same for both:

- A stage below the curve (below the first segment's ``h0``, or the table's lowest stage) has no
  discharge: it is masked (NaN) and counted. A record whose every stage is below is an error (a wrong
  curve, or stages in cm).
- Above the highest gauged stage the curve is extrapolated with its top segment (the top power law;
  for a table the straight line through its two highest pairs), flagged and counted, never masked:
  floods live there.
- A curve must rise: Q strictly increasing with h (a table; its lowest rows may all hold Q = 0, the stages
  below the start of flow, read as no flow), a, b > 0 and no drop at a segment's lower bound (a power law).
  Otherwise the stage of a forecast discharge would be ambiguous.

:func:`discharge_to_stage` inverts the curve (bisection on the forward curve, so
``discharge_to_stage(c, stage_to_discharge(c, h)) == h`` to 1e-9 m); :func:`add_stage_columns` gives a forecast table its water levels: quantiles map through a
rising curve one to one, so ``stage_q05`` is the 5 % quantile of the stage.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError, UsageError

STAGE_COLUMNS = {"median": "stage_median", "q05": "stage_q05", "q25": "stage_q25", "q75": "stage_q75",
                 "q95": "stage_q95"}
#: A quantile column of a forecast table (``q05``, ``q10``, ``q025``: whole percent, or thousandths).
_QUANTILE_COLUMN = re.compile(r"^q\d{2,3}$")


def stage_columns(columns) -> dict:
    """Each flow column of ``columns`` that has a water level, and its name as one: ``median`` and every quantile
    column, whatever levels the model was trained with (``q10`` -> ``stage_q10``), in their order."""
    return {c: f"stage_{c}" for c in map(str, columns) if c == "median" or _QUANTILE_COLUMN.match(c)}
# A published two-segment fit rounds its coefficients; a drop at the break smaller than this share of Q
# is rounding, a larger one a curve that does not rise.
_BREAK_TOLERANCE = 1e-3
# A table's columns by their names as tables.normalise_name writes them (spaces dropped, case folded), a unit or a
# datum in brackets after the name set aside (水位(m), stage (m), 水位(85高程), Q (m3/s)).
_H_NAMES = ("h", "stage", "水位", "level", "water_level", "waterlevel", "wl", "gaugeheight", "gh")
_Q_NAMES = ("q", "discharge", "流量", "flow")
# Units a table's header may name: the one it is read in, and those it is not (a datum in brackets is no unit).
_H_UNIT, _H_OTHER = ("m", "米"), ("cm", "厘米", "mm", "毫米", "ft", "feet", "in")
_Q_UNIT, _Q_OTHER = ("m3/s", "m^3/s", "立方米/秒", "立方米每秒", "cms"), ("l/s", "升/秒", "ft3/s", "cfs", "m3/h", "m3/d")

log = logging.getLogger(__name__)


@dataclass
class Segment:
    """``Q = a·(h − h0)^b`` up to ``h_max`` (m; None: open), valid from/to the dates given (None: always)."""

    a: float
    b: float
    h0: float
    h_max: float | None = None
    valid_from: str | None = None
    valid_to: str | None = None

    def to_dict(self) -> dict:
        return {"a": self.a, "b": self.b, "h0": self.h0, "h_max": self.h_max, "valid_from": self.valid_from,
                "valid_to": self.valid_to}


@dataclass
class RatingCurve:
    """A station's rating curve: ``kind`` "power" (``segments``) or "table" (``h``, ``q``)."""

    kind: str
    segments: list = field(default_factory=list)
    h: np.ndarray | None = None
    q: np.ndarray | None = None

    # -------------------------------------------------------------------------------------- storage
    def to_dict(self) -> dict:
        if self.kind == "table":
            return {"kind": "table", "h": [float(x) for x in self.h], "q": [float(x) for x in self.q]}
        return {"kind": "power", "segments": [s.to_dict() for s in self.segments]}

    @classmethod
    def from_dict(cls, d: dict, source: str = "rating curve") -> RatingCurve:
        if not isinstance(d, dict) or d.get("kind") not in ("power", "table"):
            raise DataError(f"{source}: expected {{'kind': 'power', 'segments': [...]}} or "
                            "{'kind': 'table', 'h': [...], 'q': [...]}")
        if d["kind"] == "table":
            return check_curve(cls("table", h=np.asarray(d.get("h"), float), q=np.asarray(d.get("q"), float)), source)
        segs = [Segment(**{k: s.get(k) for k in ("a", "b", "h0", "h_max", "valid_from", "valid_to")})
                for s in d.get("segments") or []]
        return check_curve(cls("power", segments=segs), source)

    # -------------------------------------------------------------------------------------- periods
    def periods(self) -> list[tuple]:
        """``[(valid_from, valid_to, [segments by stage])]``, in time order (a table: one open period)."""
        if self.kind == "table":
            return [(None, None, [])]
        groups: dict = {}
        for s in self.segments:
            groups.setdefault((s.valid_from, s.valid_to), []).append(s)
        out = [(k[0], k[1], sorted(v, key=lambda s: math.inf if s.h_max is None else s.h_max))
               for k, v in groups.items()]
        return sorted(out, key=lambda p: p[0] or "")

    def segments_on(self, date=None) -> list:
        """The segments of the period valid on ``date``, or of the latest period where none is (or no date)."""
        periods = self.periods()
        i = self._segments_at([date])[0] if date is not None else -1
        return periods[i][2] if i >= 0 else periods[-1][2]

    def lowest_stage(self, segments=None) -> float:
        return float(self.h[0]) if self.kind == "table" else float(segments[0].h0)

    def highest_gauged(self, segments=None) -> float:
        if self.kind == "table":
            return float(self.h[-1])
        top = segments[-1].h_max
        return math.inf if top is None else float(top)

    def describe(self) -> str:
        if self.kind == "table":
            return (f"table of {len(self.h)} (h, Q) pairs, h {self.h[0]:g}..{self.h[-1]:g} m, monotone (PCHIP) "
                    "between them")
        parts = []
        for f, t, segs in self.periods():
            span = "" if f is None and t is None else f" valid {f or '...'}..{t or '...'}"
            parts.append("; ".join(f"Q = {s.a:g}·(h − {s.h0:g})^{s.b:g}"
                                   + (f" up to h {s.h_max:g} m" if s.h_max is not None else "") for s in segs) + span)
        return " | ".join(parts)

    # -------------------------------------------------------------------------------------- forward
    def _forward(self, h: np.ndarray, segments=None) -> np.ndarray:
        """Q for stages at or above the lowest stage (extrapolating above the top); NaN below."""
        h = np.asarray(h, np.float64)
        out = np.full(h.shape, np.nan)
        if self.kind == "table":
            from scipy.interpolate import PchipInterpolator

            inside = (h >= self.h[0]) & (h <= self.h[-1])
            out[inside] = PchipInterpolator(self.h, self.q, extrapolate=False)(h[inside])
            above = h > self.h[-1]
            slope = (self.q[-1] - self.q[-2]) / (self.h[-1] - self.h[-2])
            out[above] = self.q[-1] + slope * (h[above] - self.h[-1])
            return out
        lo = segments[0].h0
        for i, s in enumerate(segments):
            top = math.inf if (s.h_max is None or i == len(segments) - 1) else s.h_max
            sel = (h >= lo) & (h < top) if i < len(segments) - 1 else h >= lo
            with np.errstate(invalid="ignore"):
                out[sel] = s.a * np.maximum(h[sel] - s.h0, 0.0) ** s.b
            lo = top
        return out

    def _segments_at(self, dates) -> list:
        """Per date, the index of the period valid then (-1: none)."""
        periods = self.periods()
        if dates is None or self.kind == "table":
            return [0] * (1 if dates is None else len(dates))
        d = pd.DatetimeIndex(dates)
        idx = np.full(len(d), -1)
        for i, (f, t, _) in enumerate(periods):
            ok = np.ones(len(d), bool)
            if f is not None:
                ok &= d >= pd.Timestamp(f)
            if t is not None:
                ok &= d < pd.Timestamp(t) + pd.Timedelta(days=1)
            idx[ok & (idx < 0)] = i
        return list(idx)

    def discharge(self, h, dates=None) -> RatingResult:
        """Discharge (m3/s) of stages ``h`` (m), measured at ``dates`` (for curves with validity dates).

        Returns a :class:`RatingResult`: ``q`` (NaN below the curve, where no period is valid, or where h is
        NaN), and boolean masks ``below``, ``above`` (extrapolated) and ``no_curve``.
        """
        h = np.asarray(h, np.float64)
        q = np.full(h.shape, np.nan)
        below = np.zeros(h.shape, bool)
        above = np.zeros(h.shape, bool)
        no_curve = np.zeros(h.shape, bool)
        which = np.asarray(self._segments_at(dates)) if dates is not None else np.zeros(h.shape, int)
        periods = self.periods()
        finite = np.isfinite(h)
        for i, (_, _, segs) in enumerate(periods):
            sel = finite & (which == i)
            lo, top = self.lowest_stage(segs), self.highest_gauged(segs)
            below |= sel & (h < lo)
            above |= sel & (h > top)
            q[sel & (h >= lo)] = self._forward(h[sel & (h >= lo)], segs)
        no_curve = finite & (which < 0)
        return RatingResult(q, below, above, no_curve)

    # -------------------------------------------------------------------------------------- inverse
    def stage(self, q, date=None) -> np.ndarray:
        """Stage (m) of discharges ``q`` (m3/s) by the curve valid on ``date`` (default: the latest one).

        NaN for NaN or for a discharge below the curve's lowest one. Exact to 1e-9 m of the forward curve (Q = 0
        over a table's lowest rows at Q = 0 gives the lowest of their stages).
        """
        q = np.asarray(q, np.float64)
        segs = self.segments_on(date)
        lo_h = self.lowest_stage(segs)
        q_lo = float(self._forward(np.array([lo_h]), segs)[0])
        out = np.full(q.shape, np.nan)
        ok = np.isfinite(q) & (q >= q_lo)
        if not ok.any():
            return out
        target = q[ok]
        lo = np.full(target.shape, lo_h)
        span = max(self.highest_gauged(segs) if math.isfinite(self.highest_gauged(segs)) else lo_h + 1.0, lo_h + 1e-3) - lo_h
        hi = np.full(target.shape, lo_h + span)
        for _ in range(200):  # widen until every target lies below the top
            short = self._forward(hi, segs) < target
            if not short.any():
                break
            hi[short] = lo_h + 2.0 * (hi[short] - lo_h)
        for _ in range(80):
            mid = 0.5 * (lo + hi)
            up = self._forward(mid, segs) < target
            lo = np.where(up, mid, lo)
            hi = np.where(up, hi, mid)
        out[ok] = 0.5 * (lo + hi)
        return out


@dataclass
class RatingResult:
    """Discharges from stages, with what the curve could not or only barely say."""

    q: np.ndarray
    below: np.ndarray
    above: np.ndarray
    no_curve: np.ndarray


# ------------------------------------------------------------------------------------------ checks
def check_curve(c: RatingCurve, source: str = "--rating") -> RatingCurve:
    """Validate ``c`` (UsageError naming the culprit): finite numbers, a rising curve, ordered segments."""
    if c.kind == "table":
        h, q = np.asarray(c.h, float), np.asarray(c.q, float)
        if h.ndim != 1 or h.shape != q.shape or len(h) < 2:
            raise UsageError(f"{source}: a rating table needs at least two (h, Q) pairs of equal length")
        if not (np.isfinite(h).all() and np.isfinite(q).all()):
            raise UsageError(f"{source}: the rating table holds a missing or non-numeric value")
        order = np.argsort(h, kind="stable")
        h, q = h[order], q[order]
        if (np.diff(h) == 0).any():
            i = int(np.flatnonzero(np.diff(h) == 0)[0])
            raise UsageError(f"{source}: stage h={h[i]:g} m appears twice in the rating table")
        # a table may list the stages below the one where the river starts to flow, each with Q = 0: PCHIP keeps
        # them at 0 (flat between equal pairs); any other Q that does not rise would leave a flow two stages
        flat = np.diff(q) <= 0
        flat[(np.diff(q) == 0) & (q[1:] == 0)] = False
        if flat.any():
            i = int(np.flatnonzero(flat)[0])
            raise UsageError(f"{source}: the rating curve is not monotonic: Q goes from {q[i]:g} at h={h[i]:g} m "
                             f"to {q[i + 1]:g} m3/s at h={h[i + 1]:g} m; Q must rise with h")
        if q[0] < 0:
            raise UsageError(f"{source}: the rating table has a negative discharge ({q[0]:g} m3/s at h={h[0]:g} m)")
        c.h, c.q = h, q
        return c
    if not c.segments:
        raise UsageError(f"{source}: a power-law rating curve needs at least one segment a=..,b=..,h0=..")
    for s in c.segments:
        for name in ("a", "b", "h0", "h_max"):
            v = getattr(s, name)
            if v is None and name == "h_max":
                continue
            try:
                v = float(v)
            except (TypeError, ValueError):
                raise UsageError(f"{source}: {name}={v!r} is not a number") from None
            if not math.isfinite(v):
                raise UsageError(f"{source}: {name}={v!r} must be a finite number")
            setattr(s, name, v)
        if s.a <= 0 or s.b <= 0:
            raise UsageError(f"{source}: the rating curve is not monotonic: a={s.a:g}, b={s.b:g}; Q = a·(h − h0)^b "
                             "rises with h only for a > 0 and b > 0")
    _check_validity_dates(c.segments, source)
    periods = c.periods()
    for f, t, segs in periods:
        if f is not None and t is not None and f > t:
            raise UsageError(f"{source}: a segment is valid from {f} to {t}: the end is before the start")
        if sum(s.h_max is None for s in segs) > 1 or any(s.h_max is None for s in segs[:-1]):
            raise UsageError(f"{source}: only the top segment of a period may leave h_max open")
        lo = segs[0].h0
        for i, s in enumerate(segs):
            if s.h_max is not None and s.h_max <= lo:
                raise UsageError(f"{source}: segment {i + 1} ends at h_max={s.h_max:g} m, not above where it starts "
                                 f"({lo:g} m)")
            if i > 0:
                below = segs[i - 1].a * max(lo - segs[i - 1].h0, 0.0) ** segs[i - 1].b
                here = s.a * (lo - s.h0) ** s.b if lo > s.h0 else 0.0
                if here < below * (1.0 - _BREAK_TOLERANCE):
                    raise UsageError(f"{source}: the rating curve is not monotonic: at h={lo:g} m, where segment "
                                     f"{i + 1} starts, Q drops from {below:g} to {here:g} m3/s")
            lo = s.h_max if s.h_max is not None else lo
    for (f1, t1, _), (f2, _t2, _) in zip(periods, periods[1:]):
        if f2 is not None and (t1 is None or t1 >= f2):
            raise UsageError(f"{source}: validity periods overlap ({f1 or '...'}..{t1 or '...'} and from {f2})")
    return c


def _check_validity_dates(segments: list, source: str) -> None:
    """Each segment's ``valid_from`` and ``valid_to`` as ``YYYY-MM-DD``, read by the one date parser of every file
    (:func:`.tables.parse_dates`, all of the curve's dates together, as a column): 2019年2月1日 is read, and
    01/02/2019 only where the curve's other dates show the order (pandas read it as 2 January, silently moving the
    curve's change by a month); a UsageError naming the value otherwise."""
    from .tables import parse_dates

    at = [(s, name) for s in segments for name in ("valid_from", "valid_to") if getattr(s, name) is not None]
    if not at:
        return
    written = [str(getattr(s, name)).strip() for s, name in at]
    try:
        days = parse_dates(written, column="valid_from/valid_to", source=source)
    except DataError:
        (s, name), bad = next(((a, w) for a, w in zip(at, written) if not _one_date(w)), (at[0], written[0]))
        guess = re.match(r"^\d{1,2}[-/.]\d{1,2}[-/.]\d{4}$", bad) is not None
        raise UsageError(f"{source}: {name}={getattr(s, name)!r} is not a date YYYY-MM-DD"
                         + (f" (day and month are not guessed: {bad} is either; the curve's other dates do not show "
                            "which)" if guess else "")) from None
    for (s, name), day in zip(at, days):
        if day != day.normalize():
            raise UsageError(f"{source}: {name}={getattr(s, name)!r} is not a date YYYY-MM-DD (it has a time of day)")
        setattr(s, name, str(day.date()))


def _one_date(text: str) -> bool:
    """Whether ``text`` alone reads as one date (:func:`.tables.parse_dates`)."""
    from .tables import parse_dates

    try:
        parse_dates([text])
    except DataError:
        return False
    return True


# ------------------------------------------------------------------------------------------ parsing
def parse_rating(spec, source: str = "--rating") -> RatingCurve:
    """``a=12.5,b=1.6,h0=0.15[,h_max=3.2]``, a dict of the same, a stored curve, or a file.

    A file (CSV in any encoding and separator, ``,`` ``;`` or tab, or a spreadsheet, read by :mod:`.tables`, title
    rows above the header skipped) holds either (h, Q) pairs, columns ``h``/``stage``/``水位``/``water level`` and
    ``q``/``discharge``/``流量``, each name perhaps followed by its unit or datum in brackets (``水位（m）``, ``Q
    (m3/s)``; a unit other than m and m3/s is refused), rows in any order; or power-law segments, columns
    ``a, b, h0`` and optionally ``h_max, valid_from, valid_to``.
    """
    if isinstance(spec, RatingCurve):
        return check_curve(spec, source)
    if isinstance(spec, dict):
        if "kind" in spec:
            return RatingCurve.from_dict(spec, source)
        return check_curve(RatingCurve("power", segments=[Segment(**_segment_keys(spec, source))]), source)
    text = str(spec).strip()
    if "=" in text and not Path(text).expanduser().exists():
        pairs = {}
        for part in text.split(","):
            if "=" not in part:
                raise UsageError(f"{source} entry {part.strip()!r} is not KEY=VALUE; expected a=12.5,b=1.6,h0=0.15")
            k, v = part.split("=", 1)
            pairs[k.strip()] = v.strip()
        return check_curve(RatingCurve("power", segments=[Segment(**_segment_keys(pairs, source))]), source)
    return _from_file(Path(text).expanduser(), source)


def _segment_keys(d: dict, source: str) -> dict:
    allowed = ("a", "b", "h0", "h_max", "valid_from", "valid_to")
    unknown = [k for k in d if k not in allowed]
    if unknown:
        raise UsageError(f"{source}: unknown key(s) {unknown}; allowed: {', '.join(allowed)}")
    missing = [k for k in ("a", "b", "h0") if d.get(k) in (None, "")]
    if missing:
        raise UsageError(f"{source}: {', '.join(missing)} missing; a power law needs a=..,b=..,h0=.. "
                         "(Q = a·(h − h0)^b)")
    return {k: (None if d.get(k) in (None, "") else d.get(k)) for k in allowed}


def _from_file(path: Path, source: str) -> RatingCurve:
    from . import tables

    if not path.is_file():
        raise UsageError(f"{source} {str(path)!r} is neither a=..,b=..,h0=.. nor an existing file")
    sep = ","
    if path.suffix.lower() not in tables.SPREADSHEET_SUFFIXES:
        # a table saved with ';' or tabs (in Europe with decimal commas): the separator most of its lines hold
        lines = [ln for ln in tables.read_text(path, None, "rating table").text.splitlines()[:20] if ln.strip()]
        sep = max((",", ";", "\t"), key=lambda s: (sum(s in ln for ln in lines), s == ","))
    t = tables.read_table(path, sep=sep)
    where = f"{source} {path}"
    names = {c: _name_and_unit(c) for c in t.frame.columns}
    cols = {}
    for c, (n, _) in names.items():
        cols.setdefault(n, c)
    hcol = next((cols[n] for n in _H_NAMES if n in cols), None)
    qcol = next((cols[n] for n in _Q_NAMES if n in cols), None)
    if hcol is not None and qcol is not None:
        for col, (unit, other, what) in ((hcol, (_H_UNIT, _H_OTHER, "water levels")),
                                         (qcol, (_Q_UNIT, _Q_OTHER, "discharges"))):
            u = names[col][1]
            if u in other:
                raise UsageError(f"{where}: column {col!r} holds {what} in {u} by its header; a rating table is read in "
                                 f"{unit[0]}: convert the column to {unit[0]}")
        decimal = "," if sep != "," and t.frame[[hcol, qcol]].stack().str.fullmatch(r"[+-]?\d*,\d+").any() else "."
        # a stage written 0.25 tells that a discharge written 1,200 groups its thousands
        seen = bool(t.frame[hcol].str.fullmatch(r"[+-]?\d*\.\d+" if decimal == "." else r"[+-]?\d*,\d+").any())
        h = _numbers(t.frame[hcol], hcol, where, t.rows, decimal, "water level, m")
        q = _numbers(t.frame[qcol], qcol, where, t.rows, decimal, "discharge, m3/s", seen)
        half = np.isnan(h) != np.isnan(q)
        if half.any():
            i = int(np.flatnonzero(half)[0])
            empty, given = (qcol, hcol) if np.isnan(q[i]) else (hcol, qcol)
            raise UsageError(f"{where}: row {t.rows[i]} has {given!r} {t.frame[given].iloc[i]} but no {empty!r}; "
                             "every row of a rating table needs both (delete the row, or fill it)")
        ok = ~(np.isnan(h) & np.isnan(q))
        return check_curve(RatingCurve("table", h=h[ok], q=q[ok]), where)
    cols = {tables.normalise_name(c): c for c in t.frame.columns}
    if all(n in cols for n in ("a", "b", "h0")):
        segs = []
        for _, row in t.frame.iterrows():
            d = {k: row[cols[k]] for k in ("a", "b", "h0", "h_max", "valid_from", "valid_to") if k in cols}
            segs.append(Segment(**_segment_keys({k: (None if pd.isna(v) else v) for k, v in d.items()}, where)))
        return check_curve(RatingCurve("power", segments=segs), where)
    raise UsageError(f"{where}: expected columns h and Q (pairs: h, stage, 水位 and Q, discharge, 流量, each may carry "
                     "its unit, as 水位(m) or Q (m3/s)) or a, b, h0[, h_max, valid_from, valid_to] (power-law "
                     f"segments); its columns are {list(t.frame.columns)}")


def _name_and_unit(header) -> tuple:
    """A rating table's header as compared, and the unit (or datum) in brackets after its name: ``水位（m）`` ->
    ``("水位", "m")``, ``Q (m³/s)`` -> ``("q", "m3/s")``, ``h`` -> ``("h", None)``."""
    from .tables import normalise_name

    n = normalise_name(header)
    m = re.fullmatch(r"(.+?)[(\[]([^()\[\]]*)[)\]]", n)
    return (m[1], m[2]) if m else (n, None)


def _numbers(col: pd.Series, name: str, where: str, rows, decimal: str = ".", what: str = "",
             decimal_seen: bool = False) -> np.ndarray:
    """A rating table's column as numbers, written as a station file's are (:func:`.tables.ungroup_numbers`: a
    decimal comma in a ';' table, thousands grouped as 1,200); a UsageError naming the value and its row."""
    from .tables import ungroup_numbers

    try:
        s = ungroup_numbers(col.astype("string").str.strip(), name, what, decimal, None, rows, flags=False,
                            decimal_seen=decimal_seen)
    except DataError as e:
        raise UsageError(f"{where}: {e}") from None
    v = pd.to_numeric(s, errors="coerce")
    bad = v.isna() & col.notna()
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise UsageError(f"{where}: column {name!r} has a non-numeric value {col.iloc[i]!r} (row {rows[i]})")
    return v.to_numpy(np.float64)


# ------------------------------------------------------------------------------------------ forecasts
def stage_to_discharge(curve, h, dates=None) -> np.ndarray:
    """Q (m3/s) of stages ``h`` (m) by ``curve`` (a :class:`RatingCurve` or its stored dict); NaN below it."""
    return as_curve(curve).discharge(h, dates).q


def discharge_to_stage(curve, q, date=None) -> np.ndarray:
    """h (m) of discharges ``q`` (m3/s): the inverted curve valid on ``date`` (:meth:`RatingCurve.stage`)."""
    return as_curve(curve).stage(q, date)


def stage_scale(curve, date=None, q_top: float = 1.0, points: int = 1000):
    """Maps flow -> water level and back for a chart's second axis: ``(to_stage, to_flow)``, or None.

    The curve valid on ``date`` (:meth:`RatingCurve.stage`) tabulated on ``points`` flows from 0 to ``q_top``
    (m3/s: above the highest flow the chart shows) and interpolated; outside the table, and below the curve's
    lowest flow, each map holds its end value, so both stay monotone, as matplotlib needs to place the ticks.
    None where the curve gives fewer than two stages in that span.
    """
    table = stage_table(curve, date, q_top, points)
    if table is None:
        return None
    q, h = table
    return (lambda flow: np.interp(flow, q, h)), (lambda stage: np.interp(stage, h, q))


def stage_table(curve, date=None, q_top: float = 1.0, points: int = 1000):
    """The table :func:`stage_scale` interpolates: ``(q, h)``, the flows (m3/s) of ``points`` evenly spaced from 0
    to ``q_top`` where the curve valid on ``date`` gives a stage, and those stages (m); None where fewer than two.
    The service's page draws its water-level axis from it as the CLI's fan chart does."""
    q = np.linspace(0.0, float(q_top), int(points))
    h = as_curve(curve).stage(q, date)
    ok = np.isfinite(h)
    if ok.sum() < 2:
        return None
    return q[ok], h[ok]


def as_curve(curve) -> RatingCurve:
    """A :class:`RatingCurve` from itself or its stored dict (``StationMeta.rating_curve``)."""
    return curve if isinstance(curve, RatingCurve) else RatingCurve.from_dict(curve, "station metadata rating_curve")


def add_stage_columns(table: pd.DataFrame, curve, date_column: str = "valid_date") -> pd.DataFrame:
    """A copy of a forecast ``table`` with ``stage_median, stage_q05, ...`` (m) beside its discharge columns.

    The median and each quantile column present (``q05, q25, q75, q95`` by default; those of the model's own
    levels, e.g. ``q10, q90``: :func:`stage_columns`) becomes ``stage_<name>`` through the inverted curve valid
    on the row's ``date_column`` (the latest period when none is valid then). ``curve`` None: unchanged.
    """
    if curve is None:
        return table
    c = as_curve(curve)
    out = table.copy()
    if date_column in out.columns and c.kind == "power" and len(c.periods()) > 1:
        which = np.asarray(c._segments_at(pd.DatetimeIndex(out[date_column])))
        which = np.where(which < 0, len(c.periods()) - 1, which)  # after the last period: the latest curve
    else:
        which = np.full(len(out), len(c.periods()) - 1)
    for col, name in stage_columns(out.columns).items():
        if col in out.columns:
            vals = out[col].to_numpy(np.float64)
            h = np.full(len(out), np.nan)
            for i in np.unique(which):
                sel = which == i
                f, _, _ = c.periods()[i]
                h[sel] = c.stage(vals[sel], f) if f is not None else c.stage(vals[sel], None if i == len(c.periods()) - 1
                                                                              else c.periods()[i][1])
            out[name] = h
    return out


#: No river's water level stands this many metres above its rating curve's zero-flow stage (the largest
#: rivers' stages span a few tens of metres from low water to flood): such a level is a unit error, cm for m.
MAX_DEPTH_M = 25.0


def highest_gauged_stage(curve, date=None) -> float:
    """The highest gauged stage (m) of the curve valid on ``date`` (the latest period without one): above it the
    curve is extrapolated; ``inf`` where its top segment is open."""
    c = as_curve(curve)
    return float(c.highest_gauged(c.segments_on(date)))


def zero_flow_stage(curve, date=None) -> float:
    """The lowest stage (m) of the curve valid on ``date`` (the latest period without one): a power law's ``h0``, a
    table's lowest row; below it the curve gives no discharge (``--below_h0 zero``: no flow)."""
    c = as_curve(curve)
    return float(c.lowest_stage(c.segments_on(date)))


def level_discharge(curve, stage_value: float, date=None, warn: bool = True) -> float:
    """The discharge (m3/s) at a water level given in stage (m), e.g. a 警戒水位, by the curve valid on ``date``.

    A level no curve can convert is a UsageError; one above the highest gauged stage is logged as
    extrapolated when ``warn`` (off where the options are only being checked, so the warning is said once).
    """
    c = as_curve(curve)
    segs = c.segments_on(date)
    if stage_value < c.lowest_stage(segs):
        raise UsageError(f"a water level of {stage_value:g} m lies below the rating curve (lowest stage "
                         f"{c.lowest_stage(segs):g} m): it has no discharge")
    if stage_value - c.lowest_stage(segs) > MAX_DEPTH_M:
        raise UsageError(f"a water level of {stage_value:g} m lies {stage_value - c.lowest_stage(segs):g} m above the "
                         f"rating curve's zero-flow stage ({c.lowest_stage(segs):g} m); no river runs that deep: "
                         "a level in cm? (levels are in metres, on the curve's datum)")
    top = c.highest_gauged(segs)
    if warn and stage_value > top:
        log.warning("a water level of %g m lies above the rating curve's highest gauged stage (%g m): its discharge "
                    "is extrapolated", stage_value, top)
    return float(c._forward(np.array([float(stage_value)]), segs)[0])
