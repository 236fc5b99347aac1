"""Figures of a run: training curve, hydrographs, attention heatmaps and the fine-tune comparison.

Figures are built with matplotlib's object API (:class:`matplotlib.figure.Figure`) and rendered by
the Agg backend, so nothing here needs a display, touches pyplot's global figure list or changes the
backend of an interactive session that imports it. Every function writes one PNG (110 dpi)
atomically - to a temporary file in the target folder, then :func:`os.replace` - creates the folder
if needed, and returns the :class:`~pathlib.Path` written. Missing values (NaN) are drawn as gaps.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import matplotlib.dates as mdates
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from ..fileio import atomic_write
from ..words import say
from .metrics import nse, true_runs

__all__ = ["plot_loss_curves", "plot_hydrograph", "plot_attention_heatmap", "plot_before_after",
           "plot_fan_chart", "plot_feature_weights", "plot_reliability", "plot_verification", "event_window",
           "DPI", "CJK_FONTS", "cjk_font", "chart_language"]

DPI = 110
#: A fan chart draws a warning level up to this many times its highest flow (the service's page does the same).
LEVEL_SPAN = 3.0
#: Days shown before and after the largest observed flow in the zoom panels.
EVENT_BEFORE, EVENT_AFTER = 30, 60

#: Chinese fonts a fan chart in Chinese is drawn with, the first matplotlib finds (Linux, Windows, macOS); none is
#: bundled: with none, the chart keeps its English words (matplotlib would draw each Chinese character as a box).
CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "Source Han Sans CN", "WenQuanYi Zen Hei",
             "WenQuanYi Micro Hei", "SimHei", "Microsoft YaHei", "PingFang SC", "Heiti SC", "STHeiti",
             "Hiragino Sans GB", "Noto Sans CJK TC", "Noto Sans CJK JP", "AR PL UMing CN")

_OBS = dict(color="black", lw=1.2, label="observed")
_SIM = dict(color="tab:blue", lw=1.0, label="predicted")
_PERS = dict(color="tab:gray", lw=0.7, ls="--", alpha=0.8, label="persistence")


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------

def _new_figure(figsize) -> Figure:
    fig = Figure(figsize=figsize, dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def cjk_font() -> str | None:
    """The first font of :data:`CJK_FONTS` that matplotlib knows (its font list), or None."""
    from matplotlib import font_manager

    known = {f.name for f in font_manager.fontManager.ttflist}
    return next((name for name in CJK_FONTS if name in known), None)


def chart_language(language: str) -> str:
    """The language a fan chart is drawn in where ``language`` is asked: English where the chart's Chinese would
    need a font matplotlib does not find (:func:`cjk_font`)."""
    return language if language == "en" or cjk_font() is not None else "en"


def figure_title(fig: Figure) -> str:
    """The figure's title: its suptitle, else its axes' titles, joined by "; " ("" when it has none)."""
    sup = fig.get_suptitle().strip()
    if sup:
        return sup
    return "; ".join(t for t in (ax.get_title().strip() for ax in fig.axes) if t)


def _save(fig: Figure, path) -> Path:
    """Write ``fig`` as PNG to ``path`` atomically and release it. The title goes into the PNG's ``Title``
    text chunk too, where report.html reads it for the image's alt text."""
    title = figure_title(fig)
    meta = {"Title": title} if title else {}
    try:
        return atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=DPI, metadata=meta), binary=True)
    finally:
        fig.clear()


def _as_float(a, name: str, n: int | None = None) -> np.ndarray:
    arr = np.asarray(a, dtype=np.float64).reshape(-1) if a is not None else None
    if arr is not None and n is not None and arr.size != n:
        raise ValueError(f"{name} has {arr.size} values but dates has {n}")
    return arr


def _as_x(dates, n: int | None = None):
    """The x values for ``dates``: datetime64 when they look like dates, else plain numbers.

    Returns
    -------
    x : numpy.ndarray
    is_date : bool
    """
    if dates is None:
        if n is None:
            raise ValueError("dates is None and no length is known")
        return np.arange(n), False
    arr = np.asarray(dates)
    if arr.ndim != 1:
        arr = arr.reshape(-1)
    if np.issubdtype(arr.dtype, np.number) and not np.issubdtype(arr.dtype, np.bool_):
        x, is_date = arr, False
    else:
        import pandas as pd

        x, is_date = pd.to_datetime(arr).values.astype("datetime64[ns]"), True
    if n is not None and x.size != n:
        raise ValueError(f"dates has {x.size} values but the data has {n}")
    return x, is_date


def event_window(obs, before: int = EVENT_BEFORE, after: int = EVENT_AFTER):
    """Index slice around the largest observed value, clipped to the data.

    Parameters
    ----------
    obs : array_like
        Observed series (NaN allowed).
    before, after : int
        Time steps kept before and after the peak.

    Returns
    -------
    slice or None
        ``None`` when ``obs`` has no finite value.
    """
    obs = np.asarray(obs, dtype=np.float64).reshape(-1)
    finite = np.isfinite(obs)
    if not finite.any():
        return None
    peak = int(np.argmax(np.where(finite, obs, -np.inf)))
    return slice(max(0, peak - before), min(obs.size, peak + after + 1))


def _plot_observed(ax, x, obs, label: str = _OBS["label"]) -> None:
    """The observed line, and a dot on each observed day with no observed day either side: a line draws nothing
    there, and a patchy record's lone readings (its largest flood among them) vanished from the chart."""
    obs = np.asarray(obs, dtype=np.float64)
    (line,) = ax.plot(x, obs, **{**_OBS, "label": label})
    ok = np.isfinite(obs)
    lone = ok & ~np.r_[False, ok[:-1]] & ~np.r_[ok[1:], False]
    if lone.any():
        ax.plot(np.asarray(x)[lone], obs[lone], ls="none", marker="o", ms=2.5, color=line.get_color())


def _format_time_axis(ax, is_date: bool, language: str = "en") -> None:
    """The time axis of every figure: with dates, concise labels that read right across a month or year
    boundary (:class:`_SpanDateFormatter`); in Chinese (``language`` ``zh``) with numeric months (``1976-04``,
    ``04-15``), as Chinese writes dates, rather than English month names."""
    if is_date:
        loc = mdates.AutoDateLocator(minticks=3, maxticks=8)
        ax.xaxis.set_major_locator(loc)
        ax.xaxis.set_major_formatter(_SpanDateFormatter(loc, numeric=language != "en"))
        # The corner names the span's start: it goes under the first tick, not under the last (matplotlib's place)
        ax.xaxis.get_offset_text().set(x=0.0, horizontalalignment="left")
    ax.grid(True, alpha=0.3)


#: The strftime directives of each date part: year, month, day, hour, minute, second (ConciseDateFormatter's levels).
_DATE_PARTS = ("Yy", "bBm", "dej", "HI", "M", "Sf")
#: A tick's full date, down to the part its level labels.
_FULL_DATE = ("%Y", "%Y-%b", "%Y-%b-%d", "%Y-%b-%d %H:%M", "%Y-%b-%d %H:%M", "%Y-%b-%d %H:%M:%S")
#: The same with numeric months, and the labels of each level (:class:`~matplotlib.dates.ConciseDateFormatter`'s
#: ``formats``, ``zero_formats``, ``offset_formats``): a month alone is never a bare number, which would read as a
#: day, but ``1976-04``; a day is ``04-15``.
_NUMERIC_DATES = {"full": ("%Y", "%Y-%m", "%Y-%m-%d", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"),
                  "formats": ["%Y", "%Y-%m", "%m-%d", "%H:%M", "%H:%M", "%S.%f"],
                  "zero_formats": ["", "%Y-%m", "%m-%d", "%m-%d", "%H:%M", "%H:%M"],
                  "offset_formats": ["", "%Y", "%Y-%m", "%Y-%m-%d", "%Y-%m-%d", "%Y-%m-%d %H:%M"]}


def _named_parts(fmt: str) -> set:
    """The date parts (0 year .. 5 second) a strftime format names."""
    return {i for d in re.findall(r"%[-#]?(\w)", fmt) for i, part in enumerate(_DATE_PARTS) if d in part}


class _SpanDateFormatter(mdates.ConciseDateFormatter):
    """matplotlib's :class:`~matplotlib.dates.ConciseDateFormatter`, read from the left: the corner (offset) names
    the span's start, and a tick where a coarser part changes (a new year, a new month) names it.

    matplotlib's corner names the last tick's year and month, so the days before a new month or year read as
    the wrong ones: a fan chart issued 2012-12-29 labelled its December days 21, 25, 29 under "2013-Jan", a
    Dec..Feb hydrograph's mid-January under "2013-Mar". Here the corner says "2012-Dec" and 1 January reads
    "2013-Jan-01": a label's missing year or month is the last one named to its left, else the corner's.
    """

    def __init__(self, locator, tz=None, numeric: bool = False):
        """``numeric``: months as numbers (:data:`_NUMERIC_DATES`), else as matplotlib names them (``Apr``)."""
        if numeric:
            super().__init__(locator, tz=tz, **{k: v for k, v in _NUMERIC_DATES.items() if k != "full"})
        else:
            super().__init__(locator, tz=tz)
        self._full_date = _NUMERIC_DATES["full"] if numeric else _FULL_DATE
        self._span_tz = tz
        self._span_offset = ""

    def format_ticks(self, values):
        labels = list(super().format_ticks(values))
        self._span_offset = ""
        if len(values) == 0:
            return labels
        dates = [mdates.num2date(v, tz=self._span_tz) for v in values]
        parts = np.array([d.timetuple()[:6] for d in dates])
        varying = [lv for lv in range(6) if len(np.unique(parts[:, lv])) > 1]
        level = varying[-1] if varying else 5     # the finest part that changes, as matplotlib labels it
        if level == 0:                             # every label is a year: nothing is read from elsewhere
            return labels
        zero = (0, 1, 1, 0, 0, 0)[level]
        named = []
        for i, d in enumerate(dates):
            fmt = self.zero_formats[level] if parts[i, level] == zero else self.formats[level]
            changed = np.flatnonzero(parts[i, :level] != parts[i - 1, :level]) if i else []
            if len(changed) and not set(range(changed[0], level)) <= _named_parts(fmt):
                fmt = self._full_date[level]
                labels[i] = d.strftime(fmt)
            named.append(_named_parts(fmt))
        first = int(np.argmin(values))             # the span's start, also on an inverted axis
        if self.show_offset and not set(range(level)) <= named[first]:
            self._span_offset = dates[first].strftime(self.offset_formats[level])
        return labels

    def get_offset(self):
        return self._span_offset


def _no_data(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])


def _has_finite(*arrays) -> bool:
    return any(a is not None and np.isfinite(a).any() for a in arrays)


# --------------------------------------------------------------------------------------------------
# figures
# --------------------------------------------------------------------------------------------------

def plot_loss_curves(history: Sequence[dict], path, title: str = "Training curve") -> Path:
    """Training and validation loss per epoch, with the best validation epoch marked.

    Parameters
    ----------
    history : sequence of dict
        One row per epoch with ``'epoch'``, ``'train_loss'``, ``'val_loss'`` (NaN or None when not
        validated) and optionally ``'lr'`` (drawn on a second, logarithmic axis).
    path : str or os.PathLike
        PNG file to write.
    title : str
        Figure title.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    def col(key):
        return np.array([np.nan if r.get(key) is None else float(r.get(key)) for r in history],
                        dtype=np.float64)

    history = list(history or [])
    fig = _new_figure((8, 4.5))
    ax = fig.add_subplot(1, 1, 1)
    ax.set_title(title)
    if not history:
        _no_data(ax, "no epochs recorded")
        return _save(fig, path)

    epoch = col("epoch")
    if not np.isfinite(epoch).all():
        epoch = np.arange(1, len(history) + 1, dtype=np.float64)
    train, val, lr = col("train_loss"), col("val_loss"), col("lr")
    marker = "o" if len(history) <= 30 else None
    ax.plot(epoch, train, marker=marker, ms=3, color="tab:blue", label="train loss")
    if np.isfinite(val).any():
        vok = np.isfinite(val)  # validation may run every few epochs: join the points it has
        ax.plot(epoch[vok], val[vok], marker=marker, ms=3, color="tab:orange", label="validation loss")
        best = int(np.nanargmin(val))
        ax.axvline(epoch[best], color="tab:green", ls=":", lw=1)
        # epoch 0 is the starting weights, validated before any training: best there, the run kept them
        when = "epoch 0: the starting weights, before training" if epoch[best] == 0 else f"epoch {epoch[best]:g}"
        ax.plot([epoch[best]], [val[best]], marker="*", ms=12, color="tab:green", ls="none",
                label=f"best val {val[best]:.4g} ({when})")
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("loss")
    # The first epochs' losses are often ten times the later ones: on a linear axis the epochs that decide the best
    # one lie flat along the bottom. A log axis where every loss is above 0 (a likelihood loss may not be).
    seen = np.concatenate([train[np.isfinite(train)], val[np.isfinite(val)]])
    if seen.size and seen.min() > 0 and seen.max() > 5 * seen.min():
        ax.set_yscale("log")
        ax.set_ylabel("loss (log scale)")
        _plain_log_labels(ax.yaxis)
    ax.grid(True, alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if np.isfinite(lr).any() and np.nanmin(lr) > 0:
        ax2 = ax.twinx()
        ax2.plot(epoch, lr, color="tab:gray", lw=0.8, ls="--", label="learning rate")
        ax2.set_yscale("log")
        ax2.set_ylabel("learning rate")
        # a constant 0.002 lay between the only labels, 10^-3 and 10^-2: its value could not be read
        _plain_log_labels(ax2.yaxis)
        h2, l2 = ax2.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    ax.legend(handles, labels, loc="best", fontsize=8)  # fine-tuning's loss may rise: upper right hid its last epoch
    fig.tight_layout()
    return _save(fig, path)


def _plain_log_labels(axis) -> None:
    """Label a log axis in plain numbers (0.2, 0.002; not 2 x 10^-1) at the powers of ten and, between them, at 2, 3
    and 5 times one (all nine crowded each other)."""
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(FuncFormatter(
        lambda v, _: f"{v:g}" if v > 0 and round(v / 10 ** np.floor(np.log10(v))) in (2, 3, 5) else ""))


def plot_hydrograph(dates, obs, sim, path, title: str = "", persistence=None,
                    unit: str = "m$^3$/s") -> Path:
    """Observed vs predicted discharge: the full period and a zoom on the largest flood.

    Parameters
    ----------
    dates : array_like
        Dates (anything :func:`pandas.to_datetime` reads) or plain numbers (e.g. day indices).
    obs, sim : array_like
        Observed and predicted discharge, one value per date; NaN is drawn as a gap.
    path : str or os.PathLike
        PNG file to write.
    title : str
        Figure title.
    persistence : array_like, optional
        Persistence forecast, drawn as a thin dashed line.
    unit : str
        Discharge unit for the y label (matplotlib mathtext allowed).

    Returns
    -------
    pathlib.Path
        ``path``. The zoom panel is the window of :func:`event_window` (-30..+60 steps around the
        largest observed value); with no finite observation it says so instead.
    """
    obs = _as_float(obs, "obs")
    x, is_date = _as_x(dates, obs.size)
    sim = _as_float(sim, "sim", obs.size)
    pers = _as_float(persistence, "persistence", obs.size)

    fig = _new_figure((11, 7.3))
    fig.set_layout_engine("constrained")
    ax_full, ax_zoom = fig.subplots(2, 1, gridspec_kw={"height_ratios": [1.3, 1]})
    if title:
        fig.suptitle(title)
    win = event_window(obs)
    for ax, sl in ((ax_full, slice(None)), (ax_zoom, win)):
        if sl is None:
            _no_data(ax, "no observed discharge: no flood event to zoom on")
            continue
        _plot_observed(ax, x[sl], obs[sl])
        ax.plot(x[sl], sim[sl], **_SIM)
        if pers is not None:
            ax.plot(x[sl], pers[sl], **_PERS)
        ax.set_ylabel(f"discharge ({unit})")
        _format_time_axis(ax, is_date)
    ax_full.set_title("full period", fontsize=10)
    if win is not None:
        ax_full.axvspan(x[win.start], x[win.stop - 1], color="tab:orange", alpha=0.12, lw=0)
        ax_zoom.set_title("largest observed flood", fontsize=10)
        # a long gap in the record: only the predicted line runs there, which says nothing of why
        for k, (a, b) in enumerate(gap_runs(obs, GAP_SHADE_DAYS)):
            ax_full.axvspan(x[a], x[b - 1], color="0.6", alpha=0.18, lw=0,
                            label=f"no observed flow ({GAP_SHADE_DAYS} days or more)" if k == 0 else None)
    _legend_below(fig, ax_full)
    return _save(fig, path)


#: Runs of missing observed flow at least this long are shaded in the hydrograph (shorter ones show as breaks).
GAP_SHADE_DAYS = 7


def gap_runs(values, min_len: int) -> list[tuple[int, int]]:
    """``[start, stop)`` of each run of NaN in ``values`` of ``min_len`` or more."""
    return [(a, b) for a, b in true_runs(np.isnan(np.asarray(values, dtype=np.float64))) if b - a >= min_len]


def _legend_below(fig: Figure, ax, handles=None) -> None:
    """One legend for all panels, in a row below them: inside a panel's corner it hid the floods that
    peaked there (the last years of a period, the days after the largest flood). Below, not above: the
    constrained layout puts an upper legend over the figure's title."""
    if handles is None:
        handles = ax.get_legend_handles_labels()[0]
    if handles:
        fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=8, frameon=False)


def plot_attention_heatmap(dates, weights, feature_names: Sequence[str], path, obs=None,
                           title: str = "", unit: str = "m$^3$/s", labels: dict | None = None) -> Path:
    """Attention weights per input feature: monthly means and the days around the largest event.

    Parameters
    ----------
    dates : array_like
        One date per row of ``weights`` (or plain numbers).
    weights : array_like
        ``[time, features]`` attention weights in [0, 1]; rows of NaN for days without a forecast.
    feature_names : sequence of str
        One name per feature (column of ``weights``).
    path : str or os.PathLike
        PNG file to write.
    labels : dict, optional
        Name -> how the chart names the feature, where not by its name.
    obs : array_like, optional
        Observed discharge; when given, the event panel is centred on its largest value and the
        hydrograph is drawn above the daily heatmap.
    title : str
        Figure title.
    unit : str
        Discharge unit for the hydrograph's y label (matplotlib mathtext allowed).

    Returns
    -------
    pathlib.Path
        ``path``.

    Notes
    -----
    Panel (a) averages the weights per calendar month (January..December) when the period spans at
    least two years, otherwise per month of the series; with numeric ``dates`` it uses blocks of 30
    steps. Panel (b) shows -30..+60 steps around the peak of ``obs`` (or around the middle of the
    period). Colour scales run from 0 to the largest weight shown, so small weights stay visible. A weight of
    exactly 0 is an input missing that day (a softmax gives no exact 0 otherwise): its cell in (b) is grey, and
    the means of (a) are over the days each input was present (grey for a month it never was). A feature
    whose weight is exactly 0 on every day (an input the basin lacks) is also labelled "(absent)".
    """
    import pandas as pd

    w = np.asarray(weights, dtype=np.float64)
    if w.ndim == 1:
        w = w[:, None]
    if w.ndim != 2:
        raise ValueError(f"weights must be [time, features], got shape {w.shape}")
    names = [str((labels or {}).get(n, n)) for n in feature_names]
    if len(names) != w.shape[1]:
        raise ValueError(f"{len(names)} feature names for {w.shape[1]} weight columns")
    x, is_date = _as_x(dates, w.shape[0])
    obs = _as_float(obs, "obs", w.shape[0])
    # A feature the basin lacks gets weight exactly 0 every day (a softmax gives no exact 0 otherwise): grey
    # and labelled, not drawn as a weight the model chose to give little.
    rows = np.isfinite(w).all(axis=1)
    absent = (w[rows] == 0).all(axis=0) if rows.any() else np.zeros(w.shape[1], dtype=bool)
    names = [f"{n} (absent)" if a else n for n, a in zip(names, absent)]
    # So is an input missing on a day (a gap in a patchy record): grey that day, and left out of the month's mean,
    # not a dark cell that reads as a season the model chose to ignore the rain in.
    w = np.where(w == 0, np.nan, w)

    # (a) monthly means -----------------------------------------------------------------------
    frame = pd.DataFrame(w, columns=range(w.shape[1]))
    if is_date:
        idx = pd.DatetimeIndex(x)
        span_months = (idx.max().year - idx.min().year) * 12 + idx.max().month - idx.min().month + 1 \
            if len(idx) else 0
        if span_months >= 24:
            monthly = frame.groupby(idx.month).mean().reindex(range(1, 13))
            mlabels = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
                       "Dec"]
            mtitle = "(a) mean weight by calendar month"
        else:
            periods = idx.to_period("M")
            monthly = frame.groupby(periods).mean()
            mlabels = [p.strftime("%b %Y") for p in monthly.index]
            mtitle = "(a) mean weight by month"
    else:
        block = np.arange(w.shape[0]) // 30
        monthly = frame.groupby(block).mean()
        mlabels = [f"{int(b) * 30}" for b in monthly.index]
        mtitle = "(a) mean weight per 30 steps"
    mvals = monthly.to_numpy(dtype=np.float64).T  # features x months
    mtitle += ", over the days each input was present (grey: missing)"

    # (b) window ------------------------------------------------------------------------------
    win = event_window(obs) if obs is not None else None
    if win is None and w.shape[0]:
        mid = w.shape[0] // 2
        win = slice(max(0, mid - EVENT_BEFORE), min(w.shape[0], mid + EVENT_AFTER + 1))
    show_hydro = obs is not None

    n_feat = w.shape[1]
    heat_h = max(1.6, 0.28 * n_feat + 0.8)
    heights = [heat_h] + ([1.6] if show_hydro else []) + [heat_h]
    fig = _new_figure((12, sum(heights) + 1.4))
    # Room on the left for the features' names, however long (a fixed margin cut off "day of year, cosine [doy_cos]")
    fig.set_layout_engine("constrained", hspace=0.06, wspace=0.01)
    gs = fig.add_gridspec(len(heights), 2, height_ratios=heights, width_ratios=[40, 1])
    if title:
        fig.suptitle(title)

    cmap = _heat_cmap()
    ax_m, cax_m = fig.add_subplot(gs[0, 0]), fig.add_subplot(gs[0, 1])
    vmax = np.nanmax(mvals) if np.isfinite(mvals).any() else 1.0
    im = ax_m.imshow(np.ma.masked_invalid(mvals), aspect="auto", cmap=cmap, vmin=0,
                     vmax=max(vmax, 1e-12), interpolation="nearest")
    ax_m.set_yticks(range(n_feat), names, fontsize=8)
    step = max(1, int(np.ceil(len(mlabels) / 24)))
    ax_m.set_xticks(range(0, len(mlabels), step), mlabels[::step], rotation=45, ha="right", fontsize=8)
    ax_m.set_title(mtitle, fontsize=10, loc="left")
    fig.colorbar(im, cax=cax_m, label="weight")

    ax_d = fig.add_subplot(gs[-1, 0])
    cax_d = fig.add_subplot(gs[-1, 1])
    if show_hydro:
        ax_h = fig.add_subplot(gs[1, 0], sharex=ax_d)
        fig.add_subplot(gs[1, 1]).axis("off")
    if win is None or win.stop <= win.start:
        _no_data(ax_d, "no attention weights")
        cax_d.axis("off")
        if show_hydro:
            _no_data(ax_h, "no observed discharge")
    else:
        xs = x[win]
        if is_date:
            xn = mdates.date2num(xs)
        else:
            xn = xs.astype(np.float64)
        half = (np.median(np.diff(xn)) / 2) if xn.size > 1 else 0.5
        dvals = w[win].T
        vmax = np.nanmax(dvals) if np.isfinite(dvals).any() else 1.0
        im = ax_d.imshow(np.ma.masked_invalid(dvals), aspect="auto", cmap=cmap, vmin=0,
                         vmax=max(vmax, 1e-12), interpolation="nearest",
                         extent=(xn[0] - half, xn[-1] + half, n_feat - 0.5, -0.5))
        ax_d.set_yticks(range(n_feat), names, fontsize=8)
        if is_date:
            ax_d.xaxis_date()
        _format_time_axis(ax_d, is_date)
        ax_d.grid(False)
        fig.colorbar(im, cax=cax_d, label="weight")
        centre = "largest observed flood" if (obs is not None and _has_finite(obs)) else "mid-period"
        ax_d.set_title(f"(b) daily weights around the {centre} (grey: input missing that day)", fontsize=10,
                       loc="left")
        if show_hydro:
            if _has_finite(obs[win]):
                _plot_observed(ax_h, xn, obs[win])
                ax_h.legend(loc="best", fontsize=8)  # upper right hid a second flood late in the window
            else:
                ax_h.text(0.5, 0.5, "no observed discharge", ha="center", va="center",
                          transform=ax_h.transAxes, color="0.4")
                ax_h.set_yticks([])  # no flow drawn: a 0..1 scale of m3/s would read as a measured one
            ax_h.set_ylabel(f"discharge ({unit})")
            ax_h.grid(True, alpha=0.3)
            ax_h.tick_params(labelbottom=False)
            ax_h.set_xlim(xn[0] - half, xn[-1] + half)
    return _save(fig, path)


def plot_before_after(dates, obs, before, after, path, title: str = "", unit: str = "m$^3$/s",
                      nse_scores: tuple[float, float] | None = None) -> Path:
    """The fine-tuning chart: validation hydrograph and scatter, before vs after fine-tuning.

    Parameters
    ----------
    dates : array_like
        Dates of the validation period (or plain numbers).
    obs : array_like
        Observed discharge.
    before, after : array_like
        Predictions of the pretrained and of the fine-tuned model.
    path : str or os.PathLike
        PNG file to write.
    title : str
        Figure title.
    unit : str
        Discharge unit for the axis labels (matplotlib mathtext allowed).
    nse_scores : (float, float), optional
        The NSE of ``before`` and of ``after`` to show in the legends: the scores the run reports elsewhere
        (its log, metrics files), so that the chart does not name other numbers for the same models. Default:
        :func:`~sca2lstm.evaluation.metrics.nse` of the series drawn, over each one's own valid days.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    obs = _as_float(obs, "obs")
    x, is_date = _as_x(dates, obs.size)
    before = _as_float(before, "before", obs.size)
    after = _as_float(after, "after", obs.size)
    nse_b, nse_a = nse_scores if nse_scores is not None else (nse(obs, before), nse(obs, after))
    lab_b, lab_a = f"before (NSE {nse_b:.3f})", f"after (NSE {nse_a:.3f})"

    fig = _new_figure((13, 5.3))
    fig.set_layout_engine("constrained")
    ax_h, ax_s = fig.subplots(1, 2, gridspec_kw={"width_ratios": [2.2, 1]})
    if title:
        fig.suptitle(title)
    _plot_observed(ax_h, x, obs)
    ax_h.plot(x, before, color="tab:orange", lw=0.9, alpha=0.9, label=lab_b)
    ax_h.plot(x, after, color="tab:blue", lw=0.9, label=lab_a)
    ax_h.set_ylabel(f"discharge ({unit})")
    ax_h.set_title("validation period", fontsize=10)
    _format_time_axis(ax_h, is_date)
    handles = ax_h.get_legend_handles_labels()[0]  # the scatter's dots share these colours

    lo, hi = np.inf, -np.inf
    for pred, color, label in ((before, "tab:orange", lab_b), (after, "tab:blue", lab_a)):
        ok = np.isfinite(obs) & np.isfinite(pred)
        if ok.any():
            ax_s.scatter(obs[ok], pred[ok], s=6, alpha=0.5, color=color, label=label, lw=0)
            lo = min(lo, obs[ok].min(), pred[ok].min())
            hi = max(hi, obs[ok].max(), pred[ok].max())
    if np.isfinite(lo):
        pad = 0.02 * (hi - lo) if hi > lo else 1.0
        handles += ax_s.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="black", lw=0.8, ls="--",
                             label="1:1")
        ax_s.set_xlim(lo - pad, hi + pad)
        ax_s.set_ylim(lo - pad, hi + pad)
        ax_s.set_aspect("equal", adjustable="box")
        ax_s.grid(True, alpha=0.3)
    else:
        _no_data(ax_s, "no valid pairs")
    ax_s.set_xlabel(f"observed ({unit})")
    ax_s.set_ylabel(f"predicted ({unit})")
    ax_s.set_title("observed vs predicted", fontsize=10)
    _legend_below(fig, ax_h, handles)
    return _save(fig, path)


def _heat_cmap():
    import matplotlib

    return matplotlib.colormaps["viridis"].with_extremes(bad="0.85")


# --------------------------------------------------------------------------------------------------
# operational forecasts
# --------------------------------------------------------------------------------------------------

def plot_fan_chart(hist_dates, hist_obs, valid_dates, median, bands: dict, path, title: str = "",
                   levels: dict | None = None, members=None, stage_axis=None, members_point: bool = False,
                   language: str = "en", level_stages: dict | None = None, observed_after=None) -> Path:
    """The last observed days, then the lead days: median line and shaded intervals.

    Parameters
    ----------
    hist_dates, hist_obs : sequence [H]
        Observed flow up to the issue date (NaN gaps drawn as gaps).
    valid_dates, median : sequence [K]
        The lead days and the median forecast.
    bands : dict
        ``{label: (lower [K], upper [K])}``, widest first (e.g. "90 %" then "50 %").
    levels : dict, optional
        ``{name: flow}`` warning levels (m3/s, daily mean), drawn as labelled horizontal lines. A level more
        than :data:`LEVEL_SPAN` times the highest flow drawn is not drawn (it would squash the forecast into
        a flat line at the bottom, as in a dry summer under the 20-year flow); the chart names it and its
        value instead, in the legend.
    members : array_like [M, K], optional
        Each weather-ensemble member's median flow, drawn as thin lines (the members' spread).
    members_point : bool
        The members' lines are point forecasts (a model without quantiles), named so in the legend.
    stage_axis : (callable, callable), optional
        ``(flow -> water level, water level -> flow)``, both monotone and vectorised (a station's rating
        curve, :func:`~sca2lstm.data.rating.stage_scale`): a second axis on the right in m.
    language : str
        The axis labels' and legend's language (:data:`sca2lstm.words.LANGUAGES`; ``title`` is the caller's),
        drawn with :func:`cjk_font`; English where matplotlib has no such font (:func:`chart_language`).
    level_stages : dict, optional
        ``{name: water level (m)}`` of the ``levels`` at a station with a rating curve: such a level's label gives
        its flow with the unit and its water level, ``alert 22.7 m³/s (water level 1.60 m)``, as the service's page
        does.
    observed_after : sequence [K], optional
        The flow observed on the lead days (NaN where not observed yet): a forecast of a past issue date. Where
        any day is observed it is drawn dashed with a dot per day, from the issue day's flow on, and named in the
        legend, as the service's page draws it; where none is, nothing is drawn or named.
    """
    lang = chart_language(language)
    if lang == "en":
        return _fan_chart(hist_dates, hist_obs, valid_dates, median, bands, path, title, levels, members,
                          stage_axis, members_point, lang, level_stages, observed_after)
    import matplotlib

    # the Chinese font first, DejaVu Sans for what it lacks (matplotlib falls back glyph by glyph)
    with matplotlib.rc_context({"font.family": [cjk_font(), "DejaVu Sans"]}):
        return _fan_chart(hist_dates, hist_obs, valid_dates, median, bands, path, title, levels, members,
                          stage_axis, members_point, lang, level_stages, observed_after)


def _fan_chart(hist_dates, hist_obs, valid_dates, median, bands, path, title, levels, members, stage_axis,
               members_point, lang, level_stages=None, observed_after=None) -> Path:
    """:func:`plot_fan_chart`'s figure, its words in ``lang``."""
    n = len(hist_dates)
    hx, _ = _as_x(hist_dates, n)
    obs = _as_float(hist_obs, "hist_obs", n)
    k = len(valid_dates)
    med = _as_float(median, "median", k)
    vx, _ = _as_x(valid_dates, k)
    fig = _new_figure((10, 4))
    fig.set_layout_engine("constrained")  # makes room for the legend outside the axes
    ax = fig.add_subplot()
    _plot_observed(ax, hx, obs, say("fan_observed", lang))
    for (label, (lo, hi)), alpha in zip(bands.items(), (0.18, 0.35, 0.5)):
        ax.fill_between(vx, _as_float(lo, label, k), _as_float(hi, label, k), color="tab:blue", alpha=alpha,
                        lw=0, label=say("fan_band", lang, label=label))
    if members is not None:
        mem = np.asarray(members, dtype=np.float64).reshape(-1, k)
        for i, row in enumerate(mem):
            # Dark grey: purple was also the 20-year flow's level colour, and faint on the blue bands
            ax.plot(vx, row, color="0.25", lw=0.7, alpha=0.7,
                    label=say("fan_members_point" if members_point else "fan_members", lang, n=len(mem))
                    if i == 0 else None)
    ax.plot(vx, med, color="tab:blue", lw=1.5, marker="o", ms=3, label=say("fan_median", lang))
    after = _as_float(observed_after, "observed_after", k) if observed_after is not None else np.full(k, np.nan)
    if np.isfinite(after).any():  # a forecast of the past, beside what came: dashed on from the issue day's flow
        xs, ys = (np.r_[hx[-1:], vx], np.r_[obs[-1:], after]) if n else (vx, after)
        # a square on each lead day observed (not on the issue day's, the observed line's): a lone one shows too
        ax.plot(xs, ys, color=_OBS["color"], lw=1.2, ls="--", marker="s", ms=3,
                markevery=list(range(int(n > 0), len(ys))), label=say("fan_observed_after", lang))
    if n:
        ax.axvline(hx[-1], color="tab:gray", lw=0.8, ls=":", label=say("fan_issue_date", lang))
    drawn = [obs, med, after] + [_as_float(hi, label, k) for label, (_, hi) in bands.items()]
    if members is not None:
        drawn.append(mem.reshape(-1))
    top = max((np.nanmax(a) for a in drawn if np.isfinite(a).any()), default=np.nan)
    above, drawn_levels = [], []
    for name, value, (color, text_color) in level_colours(levels):
        if np.isfinite(top) and top > 0 and value > LEVEL_SPAN * top:
            above.append((value, f"{name} {value:.1f}"))
            continue
        ax.axhline(value, color=color, lw=0.9, ls="--")
        drawn_levels.append((value, _level_label(name, value, (level_stages or {}).get(name), lang), text_color))
    ax.set_ylabel(say("fan_discharge", lang))
    ax.set_title(title)
    _label_levels(ax, drawn_levels)
    if stage_axis is not None:
        _stage_axis(ax, *stage_axis, label=say("fan_stage", lang))
    if above:  # named, with their values, so a level left off is not read as no level
        names = [t for _, t in sorted(above)]
        rows = [", ".join(names[i:i + 3]) for i in range(0, len(names), 3)]
        ax.plot([], [], ls="none", label=say("fan_above", lang) + ",\n".join(rows))
    # Outside, right of the axes: inside, it hid the observed flood peaks of the history on the left.
    ax.legend(loc="upper left", bbox_to_anchor=(1.12 if stage_axis is not None else 1.01, 1.0), borderaxespad=0,
              fontsize=8)
    _format_time_axis(ax, True, lang)
    return _save(fig, path)


#: Warning levels' colours by rank, lowest level first, as the service's page draws them (static/app.js
#: ``LEVEL_COLOURS``): yellow, orange, red, purple, dark purple; then colours of their own (the page repeats its last),
#: so that every line of a chart with the fitted q2y..q20y beside a station's levels stays told apart.
LEVEL_COLOURS = ("#d4a017", "#e67e22", "#c0392b", "#8e44ad", "#4a235a", "black", "saddlebrown", "deeppink")
#: A level's name on the white chart: its colour, darkened where the line's is too light to read (as the page's
#: ``LEVEL_LABEL``: yellow and orange text on white have a contrast of 2.4 and 2.9).
LEVEL_LABEL_COLOURS = ("#8a6a0f", "#a8520f") + LEVEL_COLOURS[2:]


def level_colours(levels: dict | None) -> list[tuple[str, float, tuple[str, str]]]:
    """Each level's ``(name, value, (line colour, label colour))``, lowest value first, coloured by that rank.

    By rank, not by the order the levels were given: given as ``danger=30,alert=20,watch=12`` they were drawn
    danger yellow and watch red, the opposite of how a forecaster reads the colours (and of the service's page).
    """
    ranked = sorted(((str(n), float(v)) for n, v in (levels or {}).items()),
                    key=lambda nv: (not np.isfinite(nv[1]), nv[1]))
    last = len(LEVEL_COLOURS) - 1
    return [(name, value, (LEVEL_COLOURS[min(i, last)], LEVEL_LABEL_COLOURS[min(i, last)]))
            for i, (name, value) in enumerate(ranked)]


def _stage_axis(ax, to_stage, to_flow, label: str = "water level (m), by the rating curve") -> None:
    """A water-level axis on the right of a flow axis. A rating curve is steep at low stages (the flow grows as a
    power of the depth), so evenly spaced levels crowd at the bottom: a level is labelled only where it lies at
    least 5 % of the axis height from the one above it, from the top down."""
    from matplotlib.ticker import FixedLocator

    sec = ax.secondary_yaxis("right", functions=(to_stage, to_flow))
    sec.set_ylabel(label)
    lo, hi = ax.get_ylim()
    ticks = MaxNLocator(nbins=8).tick_values(float(to_stage(lo)), float(to_stage(hi)))
    kept, last = [], np.inf
    for h in sorted(ticks, reverse=True):
        q = float(to_flow(h))
        if lo <= q <= hi and last - q >= 0.05 * (hi - lo):
            kept.append(h)
            last = q
    sec.yaxis.set_major_locator(FixedLocator(sorted(kept)))


def _level_label(name: str, flow: float, stage: float | None, lang: str) -> str:
    """A level line's label: its name and flow; with its water level (m) where it has one, and then the flow's unit
    too (``danger (2.2 m) 39.4`` left the flow without one, beside a number in m)."""
    if stage is None or not np.isfinite(stage):
        return f"{name} {flow:.1f}"
    return say("fan_level_stage", lang, name=name, flow=f"{flow:.1f}", stage=f"{stage:.2f}")


def _label_levels(ax, levels, fontsize: float = 7) -> None:
    """Name each level line at the left end (over the oldest days of the history: at the right end the labels'
    backgrounds hid the forecast's members and peaks, the part read most), just above it, lowest first; a label that
    would overlap the one below (levels close together, e.g. a user's 14.0 beside the 2-year flow of 14.5) moves up
    to clear it, and a light background keeps the other lines from crossing out its letters. ``levels``: ``(value,
    label, colour)`` of each line."""
    if not levels:
        return
    # The final limits and axes size (the layout), to measure the gaps in points: a draw that lays out and measures
    # without painting pixels (a full canvas.draw() painted the whole chart once more than the PNG needs).
    ax.figure.draw_without_rendering()
    pt = ax.figure.dpi / 72.0
    height = 1.3 * fontsize  # one line of text, in points
    clear = -np.inf          # where the previous label's top is, in points
    for value, text, color in sorted(levels, key=lambda v: v[0]):
        at = ax.transData.transform((0.0, value))[1] / pt
        base = max(at + 1.0, clear)
        ax.annotate(text, (0.0, value), xycoords=("axes fraction", "data"),
                    xytext=(2.0, base - at), textcoords="offset points", ha="left", va="bottom",
                    fontsize=fontsize, color=color,
                    bbox=dict(boxstyle="square,pad=0.1", fc="white", ec="none", alpha=0.8))
        clear = base + height


def plot_feature_weights(names: Sequence[str], weights, path, title: str = "", labels: dict | None = None) -> Path:
    """Horizontal bars of one day's attention weight per feature, largest on top (``labels``: name -> how the chart
    names it, where not by its name)."""
    w = _as_float(weights, "weights", len(names))
    names = [str((labels or {}).get(n, n)) for n in names]
    order = np.argsort(np.nan_to_num(w, nan=-1.0))
    # Wider for long names (a character of a name is about 0.065 in): at a fixed 6 in, names in words with their units
    # left the bars a third of the picture and wrapped the title onto three lines
    longest = max((len(n) + len(" (absent)") for n in names), default=0)
    width = 6.0 if longest <= 30 else 5.0 + 0.065 * longest
    fig = _new_figure((width, 0.3 * len(names) + 1.2))
    # Room for the feature names on the left (long ones were cut off) and for a title wrapped onto a second
    # line (a long station id pushed the issue date off the picture); tight_layout gave a wrapped title none.
    fig.set_layout_engine("constrained")
    ax = fig.add_subplot()
    labels = [f"{names[i]} (absent)" if w[i] == 0 else names[i] for i in order]  # exactly 0: a missing input
    ax.barh(labels, w[order], color="tab:orange")
    ax.set_xlabel("attention weight")
    ax.set_title(title, wrap=True)
    return _save(fig, path)


def plot_day_weights(weights, path, title: str = "", values: dict | None = None, labels: dict | None = None) -> Path:
    """The attention weights of a forecast's issue day and of each of its lead days: one row per feature, one column
    per day, each cell's weight written in it (a forecaster reads what drove the forecast of day 3, e.g. the
    forecast rain, not only the issue day's weights); a cell of weight exactly 0, an input missing that day, is
    grey and says "missing".

    Parameters
    ----------
    weights : pandas.DataFrame
        [days, features]: index the days (the issue day first), columns the features' names.
    path : str or os.PathLike
        PNG file to write.
    title : str
        Figure title.
    values : dict, optional
        Feature name -> its input value on each day, written under its weights (the forecast flag: where it is 0,
        its weight multiplies nothing, however large).
    labels : dict, optional
        Feature name -> how the chart names it, where not by its name.
    """
    w = np.asarray(weights, dtype=np.float64).T                      # [features, days]
    values = values or {}
    names = [str((labels or {}).get(c, c)) + (" (value below)" if c in values else "") for c in weights.columns]
    shown = {list(weights.columns).index(c): np.asarray(v, dtype=np.float64) for c, v in values.items()
             if c in weights.columns}
    days = list(weights.index)   # Timestamps
    cols = [f"issue day\n{days[0]:%m-%d}"] + [f"lead {k}\n{d:%m-%d}" for k, d in enumerate(days[1:], start=1)]
    fig = _new_figure((1.0 * len(cols) + 3.5, 0.32 * len(names) + 1.6))
    fig.set_layout_engine("constrained")
    ax = fig.add_subplot()
    top = float(np.nanmax(w)) if np.isfinite(w).any() else 1.0
    # exactly 0: an input missing that day (a lead day's weather without a weather forecast, a gap in the record), grey
    # as in the attention heatmap, not the colour of a weight the model chose to make small
    im = ax.imshow(np.ma.masked_equal(w, 0.0), aspect="auto", cmap=_heat_cmap(), vmin=0.0, vmax=max(top, 1e-6))
    for (i, j), v in np.ndenumerate(w):
        if np.isfinite(v):
            text = "missing" if v == 0 else f"{v:.2f}"
            if i in shown:
                text += f"\n= {shown[i][j]:g}"
            # centred in its cell, inside the axes: the constrained layout need not measure each of these (it
            # measured them all, twice, a third of a forecast's drawing time, for the same layout)
            ax.text(j, i, text, ha="center", va="center", fontsize=7,
                    color="white" if 0 < v < 0.6 * top else "black", in_layout=False)
    ax.set_xticks(range(len(cols)), cols, fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_title(title, wrap=True)
    fig.colorbar(im, ax=ax, label="attention weight (grey: input missing, weight 0)")
    return _save(fig, path)


def plot_reliability(nominal, observed: dict, path, title: str = "", xlabel: str = "nominal coverage",
                     ylabel: str = "observed coverage") -> Path:
    """Observed against nominal frequencies (interval coverage, or how often the observation falls
    below each quantile), one line per label (e.g. per lead), and the diagonal."""
    fig = _new_figure((5, 5))
    _reliability_axes(fig.add_subplot(), nominal, observed, xlabel, ylabel, title, diagonal="ideal")
    return _save(fig, path)


def _reliability_axes(ax, nominal, observed: dict, xlabel: str, ylabel: str, title: str, diagonal: str,
                      legend_loc: str = "best") -> None:
    """Draw observed against nominal frequencies on ``ax``: the diagonal (labelled ``diagonal``) and one line
    per ``observed`` label, on the unit square."""
    nominal = _as_float(nominal, "nominal")
    ax.plot([0, 1], [0, 1], color="black", lw=0.8, ls="--", label=diagonal)
    for label, cov in observed.items():
        ax.plot(nominal, _as_float(cov, str(label), len(nominal)), marker="o", ms=3, lw=1, label=str(label))
    # past 0 and 1 a little: a share of 0 or 1 (no flow below the 5 % quantile in a short span) is drawn in, not on
    # the frame
    ax.set(xlim=(-UNIT_PAD, 1 + UNIT_PAD), ylim=(-UNIT_PAD, 1 + UNIT_PAD), xlabel=xlabel, ylabel=ylabel, title=title)
    ax.legend(fontsize=7, loc=legend_loc)


#: How far past 0 and 1 the axes of a score or share between 0 and 1 reach (F1, reliability), in its units.
UNIT_PAD = 0.04

#: Quantile columns of a verification and the share of days expected below each.
_BELOW = (("below_q05", 0.05), ("below_q25", 0.25), ("below_median", 0.5), ("below_q75", 0.75))


def plot_verification(per_lead, per_level, path, title: str = "", levels: dict | None = None) -> Path:
    """The scores of ``sca2lstm verify`` in three panels: what a forecaster checks first.

    Parameters
    ----------
    per_lead : pandas.DataFrame
        One row per lead: ``lead``, ``nse`` (with ``nse_lo90``/``nse_hi90``), ``persistence_nse``, and the
        shares of days below each quantile (``below_q05`` .. ``below_q75``, ``above_q95``) where known.
    per_level : pandas.DataFrame
        One row per (level, lead, forecast, count) with ``f1`` (may be empty: no levels).
    path : str or os.PathLike
        PNG file to write.
    title : str
        Figure title (the station and the forecasts scored).
    levels : dict, optional
        ``{name: flow}`` of the levels (``levels.json``): each level's F1 lines take its colour on the fan chart and
        the service's page (by height, :func:`level_colours`); a level not in it, the next free colour.

    Returns
    -------
    pathlib.Path
        ``path``. Left: NSE of the median by lead beside persistence, with the 90 % interval over resampled
        years. Middle: F1 by day per warning level, the model solid and persistence dashed. Right: reliability,
        the share of days the flow fell below each quantile against the share expected, one line per lead
        (on the diagonal: calibrated).
    """
    fig = _new_figure((13, 4.2))
    ax_nse, ax_f1, ax_rel = fig.subplots(1, 3)
    lead = per_lead["lead"].to_numpy()
    ax_nse.axhline(0.0, color="0.6", lw=0.6)
    ax_nse.plot(lead, per_lead["nse"], marker="o", color="tab:blue", label="model (median)")
    # The interval needs several years to resample; a shorter span has none, and then no legend entry for it.
    if {"nse_lo90", "nse_hi90"} <= set(per_lead.columns) and per_lead[["nse_lo90", "nse_hi90"]].notna().all(axis=1).any():
        ax_nse.fill_between(lead, per_lead["nse_lo90"], per_lead["nse_hi90"], color="tab:blue", alpha=0.15,
                            lw=0, label="90 % interval over years")
    ax_nse.plot(lead, per_lead["persistence_nse"], marker="s", ms=4, **{**_PERS, "lw": 1.0})
    ax_nse.set(xlabel="lead (days)", ylabel="NSE", title="NSE by lead")
    ax_nse.legend(fontsize=7, loc="lower left")

    day = per_level[per_level["count"] == "day"] if len(per_level) else per_level
    if len(day) and day["f1"].notna().any():
        ranked = {name: colour for name, _, (colour, _) in level_colours(levels)}
        colours = iter(c for c in ["tab:orange", "tab:red", "tab:purple", "tab:brown", "tab:green", "tab:olive",
                                   "tab:cyan"] if c not in ranked.values())
        for level, g in day.groupby("level", sort=False):
            if g["f1"].isna().all():    # no event and no warning in the span: nothing to draw or to name
                continue
            c = ranked.get(level) or next(colours, "black")
            # how many days were above the level: an F1 of 0 on two flood days reads otherwise than on two hundred
            first = g[g["forecast"] == "model"].sort_values("lead").head(1)
            n = int(first["hits"].iloc[0] + first["misses"].iloc[0]) if len(first) and {"hits", "misses"} <= set(
                g.columns) else None
            above = "" if n is None else f" ({n} day{'' if n == 1 else 's'} above)"
            for who, style in (("model", "-"), ("persistence", "--")):
                w = g[g["forecast"] == who].sort_values("lead")
                ax_f1.plot(w["lead"], w["f1"], ls=style, marker="o" if who == "model" else None, ms=3, color=c,
                           label=f"{level}{above if who == 'model' else ''}, {who}")
        # a little beyond 0..1: an F1 of 0 (no event caught) or of 1 lay on the axes' edge, its markers halved and
        # the model's line not told from persistence's dashes, the panel's main news drawn over the frame
        ax_f1.set_ylim(-UNIT_PAD, 1 + UNIT_PAD)
        ax_f1.legend(fontsize=7, loc="upper right")
    else:
        # no level at all (levels.json holds none) is another thing than levels no flow reached and none warned
        ax_f1.text(0.5, 0.5, "no warning level was reached or warned" if len(per_level) else
                   "no warning levels to score\n(levels.json holds none)", ha="center", va="center",
                   transform=ax_f1.transAxes)
        ax_f1.set_xlim(lead.min() - 0.25, lead.max() + 0.25)   # the leads of the panel beside it, not 0..1
    ax_f1.set(xlabel="lead (days)", ylabel="F1 by day", title="Warnings: F1 by day (persistence dashed)")

    nominal = [t for c, t in _BELOW if c in per_lead.columns] + ([0.95] if "above_q95" in per_lead.columns else [])
    seen = {}
    if nominal:
        for _, r in per_lead.iterrows():
            below = [r[c] for c, _ in _BELOW if c in per_lead.columns]
            seen[f"lead {int(r['lead'])}"] = below + ([1.0 - r["above_q95"]] if "above_q95" in per_lead.columns else [])
    _reliability_axes(ax_rel, nominal, seen, "quantile level", "share of days below it", "Reliability of the quantiles",
                      diagonal="calibrated", legend_loc="upper left")
    for ax in (ax_nse, ax_f1):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    ax_rel.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)
