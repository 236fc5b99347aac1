"""Figures: each writes a valid PNG on tiny inputs with gaps, and degenerate inputs do not crash."""

import numpy as np
import pandas as pd
import pytest

from sca2lstm.evaluation import plots as P

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
N = 90


def _is_png(path):
    data = path.read_bytes()
    return len(data) > 1000 and data[:8] == PNG_MAGIC


def _no_temp_files(folder):
    return not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


@pytest.fixture(scope="module")
def series():
    rng = np.random.default_rng(0)
    dates = pd.date_range("2001-10-01", periods=N, freq="D")
    obs = 5 + 3 * np.sin(np.arange(N) / 9) + rng.random(N)
    obs[10:14] = np.nan
    sim = obs + rng.normal(0, 0.3, N)
    sim[40:43] = np.nan
    return dates, obs, sim


def test_loss_curves(tmp_path):
    history = [{"epoch": 1, "train_loss": 1.0, "val_loss": None, "lr": 1e-3},
               {"epoch": 2, "train_loss": 0.6, "val_loss": 0.8, "lr": 1e-3},
               {"epoch": 3, "train_loss": 0.4, "val_loss": float("nan"), "lr": 5e-4},
               {"epoch": 4, "train_loss": 0.3, "val_loss": 0.7, "lr": 5e-4}]
    out = P.plot_loss_curves(history, tmp_path / "sub" / "loss_curve.png")
    assert out == tmp_path / "sub" / "loss_curve.png" and _is_png(out)
    assert _is_png(P.plot_loss_curves([], tmp_path / "empty.png"))
    assert _no_temp_files(tmp_path)


def test_loss_curves_go_to_a_log_axis_where_the_first_epochs_dwarf_the_rest(tmp_path, monkeypatch):
    """A first validation loss ten times the later ones flattened the epochs that choose the best one: the loss axis
    is logarithmic then, and linear where a loss is 0 or below (a likelihood) or the losses stay within a factor 5."""
    figs = []
    monkeypatch.setattr(P, "_save", lambda fig, path: figs.append(fig) or path)
    steep = [{"epoch": e, "train_loss": t, "val_loss": v} for e, t, v in ((0, None, 1.75), (1, 0.4, 0.32),
                                                                        (2, 0.2, 0.25), (3, 0.15, 0.18))]
    flat = [{"epoch": e, "train_loss": 0.5 - 0.1 * e, "val_loss": 0.6 - 0.1 * e} for e in range(1, 4)]
    likelihood = [dict(r, val_loss=-1.0) if r["epoch"] == 3 else r for r in steep]
    for history in (steep, flat, likelihood):
        P.plot_loss_curves(history, tmp_path / "c.png")
    assert [f.axes[0].get_yscale() for f in figs] == ["log", "linear", "linear"]


def test_the_loss_curves_legend_hides_no_epoch(tmp_path, monkeypatch):
    """A fine-tuning whose training loss rises at the last epoch: its point (upper right) stays visible."""
    figs = []
    monkeypatch.setattr(P, "_save", lambda fig, path: figs.append(fig) or path)
    history = [{"epoch": 0, "train_loss": None, "val_loss": 0.0973, "lr": 1e-4},
               {"epoch": 1, "train_loss": 0.1056, "val_loss": 0.0952, "lr": 1e-4},
               {"epoch": 2, "train_loss": 0.1058, "val_loss": 0.0942, "lr": 1e-4},
               {"epoch": 3, "train_loss": 0.1165, "val_loss": 0.0936, "lr": 1e-4}]
    P.plot_loss_curves(history, tmp_path / "c.png")
    fig = figs[0]
    fig.canvas.draw()
    ax = fig.axes[0]
    box = ax.get_legend().get_window_extent()
    points = [ax.transData.transform(xy) for line in ax.get_lines() for xy in line.get_xydata()
              if np.isfinite(xy).all()]
    assert points and not any(box.contains(*p) for p in points)


def test_a_run_that_kept_its_starting_weights_says_so_on_its_loss_curve(tmp_path, monkeypatch):
    """A fine-tuning whose validation loss never beat the pretrained weights' was marked "best (epoch 0)", an epoch
    a reader looks for among the trained ones: the legend says epoch 0 is the starting weights, before training."""
    figs = []
    monkeypatch.setattr(P, "_save", lambda fig, path: figs.append(fig) or path)
    history = [{"epoch": 0, "train_loss": None, "val_loss": 0.319, "lr": 1e-4},
               {"epoch": 1, "train_loss": 0.94, "val_loss": 0.333, "lr": 1e-4}]
    P.plot_loss_curves(history, tmp_path / "c.png", title="Fine-tuning basin 32006")
    legend = [t.get_text() for t in figs[0].axes[0].get_legend().get_texts()]
    assert "best val 0.319 (epoch 0: the starting weights, before training)" in legend, legend
    fig = figs[0]
    fig.canvas.draw()
    ax = fig.axes[0]
    box = ax.get_legend().get_window_extent()   # the longer entry hides no epoch's point either
    points = [ax.transData.transform(xy) for line in ax.get_lines() for xy in line.get_xydata()
              if np.isfinite(xy).all()]
    assert points and not any(box.contains(*p) for p in points)


def test_the_learning_rate_axis_labels_the_rate_the_run_used(tmp_path, monkeypatch):
    """A constant learning rate of 0.002 (the default) was drawn between the only two labels, 10^-2 and 10^-3: the
    axis now labels it, in plain numbers."""
    figs = []
    monkeypatch.setattr(P, "_save", lambda fig, path: figs.append(fig) or path)
    history = [{"epoch": e, "train_loss": 0.7 - 0.1 * e, "val_loss": 0.6 - 0.1 * e, "lr": 2e-3} for e in range(1, 4)]
    P.plot_loss_curves(history, tmp_path / "c.png")
    fig = figs[0]
    fig.canvas.draw()
    lr_axis = next(ax for ax in fig.axes if ax.get_ylabel() == "learning rate")
    lo, hi = lr_axis.get_ylim()
    shown = {t.get_text() for t in lr_axis.yaxis.get_majorticklabels() + lr_axis.yaxis.get_minorticklabels()
             if t.get_text() and lo <= t.get_position()[1] <= hi}
    assert "0.002" in shown, shown


@pytest.mark.slow
def test_hydrograph(tmp_path, series):
    dates, obs, sim = series
    out = P.plot_hydrograph(dates, obs, sim, tmp_path / "hydrograph.png", title="basin <1>",
                            persistence=np.roll(obs, 1))
    assert _is_png(out)
    # numeric x and all-NaN observations: no zoom event, but still a figure
    out = P.plot_hydrograph(np.arange(N), np.full(N, np.nan), sim, tmp_path / "hydro_nan.png")
    assert _is_png(out)
    assert _no_temp_files(tmp_path)


def test_hydrograph_length_mismatch(tmp_path, series):
    dates, obs, sim = series
    with pytest.raises(ValueError, match="sim has"):
        P.plot_hydrograph(dates, obs, sim[:-1], tmp_path / "x.png")


def test_event_window():
    obs = np.full(200, np.nan)
    assert P.event_window(obs) is None
    obs[5] = 1.0
    assert P.event_window(obs) == slice(0, 66)
    obs[150] = 2.0
    assert P.event_window(obs) == slice(120, 200)


@pytest.mark.slow
def test_attention_heatmap(tmp_path, series):
    dates, obs, _ = series
    rng = np.random.default_rng(1)
    w = rng.random((N, 3))
    w /= w.sum(axis=1, keepdims=True)
    w[:7] = np.nan  # days without a forecast
    names = ["precipitation", "temperature", "discharge"]
    assert _is_png(P.plot_attention_heatmap(dates, w, names, tmp_path / "attention.png", obs=obs,
                                            title="attention"))
    assert _is_png(P.plot_attention_heatmap(dates, w, names, tmp_path / "attention_noobs.png"))
    with pytest.raises(ValueError, match="feature names"):
        P.plot_attention_heatmap(dates, w, names[:2], tmp_path / "bad.png")


@pytest.mark.slow
def test_before_after(tmp_path, series):
    dates, obs, sim = series
    out = P.plot_before_after(dates, obs, sim * 1.4, sim, tmp_path / "performance.png", title="ft")
    assert _is_png(out)
    out = P.plot_before_after(dates, obs, np.full(N, np.nan), sim, tmp_path / "performance2.png")
    assert _is_png(out)


def test_an_absent_input_is_labelled_and_greyed_not_drawn_as_a_small_weight(tmp_path, series, monkeypatch):
    dates, obs, _ = series
    w = np.random.default_rng(2).random((N, 3))
    w[:, 1] = 0.0                                  # temperature absent: weight exactly 0 every day
    w /= w.sum(axis=1, keepdims=True)
    figs = []
    monkeypatch.setattr(P, "_save", lambda fig, path: figs.append(fig) or path)
    P.plot_attention_heatmap(dates, w, ["precipitation", "temperature", "discharge"], tmp_path / "a.png", obs=obs)
    labels = [t.get_text() for t in figs[0].axes[0].get_yticklabels()]
    assert labels == ["precipitation", "temperature (absent)", "discharge"]
    shown = figs[0].axes[0].get_images()[0].get_array()
    assert shown.mask[1].all() and not shown.mask[0].any()   # the grey "no value" colour, not dark blue


def test_an_input_missing_on_some_days_is_grey_those_days_and_left_out_of_the_month_mean(tmp_path, monkeypatch):
    """A patchy record: rain missing for a whole month and on scattered days gets weight exactly 0 there. The heatmap
    shows those cells as missing (grey), and a month's mean is over the days the rain was read, rather than a dark
    month that reads as one the model chose to ignore the rain in."""
    dates = pd.date_range("2001-01-01", "2001-04-30", freq="D")
    rng = np.random.default_rng(3)
    w = 0.2 + rng.random((len(dates), 3))
    outage = (dates.month == 2) | (np.arange(len(dates)) % 5 == 0)   # February and every fifth day
    w[outage, 0] = 0.0
    w /= w.sum(axis=1, keepdims=True)
    obs = np.sin(np.arange(len(dates)) / 7) + 2
    obs[45] = 9.0                                                    # the flood in mid-February: (b) spans the outage
    figs = []
    monkeypatch.setattr(P, "_save", lambda fig, path: figs.append(fig) or path)
    P.plot_attention_heatmap(dates, w, ["precipitation", "temperature", "discharge_lag1"], tmp_path / "a.png", obs=obs)
    monthly = figs[0].axes[0].get_images()[0].get_array()            # features x months (Jan..Apr 2001)
    present = ~outage
    assert monthly.mask[0].tolist() == [False, True, False, False]
    assert float(monthly[0, 0]) == pytest.approx(w[present & (dates.month == 1), 0].mean())
    assert not monthly.mask[1:].any()
    daily_ax = next(ax for ax in figs[0].axes if ax.get_title(loc="left").startswith("(b)"))
    daily = daily_ax.get_images()[0].get_array()                     # features x days of the window
    win = P.event_window(obs)
    assert daily.mask[0].tolist() == outage[win].tolist()
    assert not daily.mask[1:].any()
    assert "missing" in daily_ax.get_title(loc="left")


def test_a_lone_observed_day_is_drawn_even_the_largest_flood_of_a_patchy_record(tmp_path, monkeypatch):
    """A gauge read on a day with unread days either side: a line draws nothing there, so a patchy record's largest
    flood, the one the zoom panel is centred on, vanished. Each chart with the observed flow marks such a day."""
    dates = pd.date_range("2001-01-01", periods=120, freq="D")
    obs = 2 + np.sin(np.arange(120) / 8)
    obs[20:25] = np.nan                                # an outage: a gap, no lone day
    obs[59], obs[60], obs[61] = np.nan, 9.0, np.nan    # the flood read on its own
    obs[:4] = [np.nan, np.nan, 4.0, np.nan]            # an ordinary lone day
    sim = obs.copy()
    sim[np.isnan(sim)] = 2.0
    figs = []
    monkeypatch.setattr(P, "_save", lambda fig, path: figs.append(fig) or path)
    P.plot_hydrograph(dates, obs, sim, tmp_path / "h.png")
    P.plot_before_after(dates, obs, sim, sim, tmp_path / "b.png")
    w = np.full((120, 2), 0.5)
    P.plot_attention_heatmap(dates, w, ["precipitation", "temperature"], tmp_path / "a.png", obs=obs)

    def dots(ax):   # the flows marked by a dot (the x axes differ: dates, or their numbers)
        return [float(v) for ln in ax.lines if ln.get_marker() == "o" and ln.get_linestyle() == "None"
                for v in ln.get_ydata()]

    hydro_full, hydro_zoom = figs[0].axes[:2]
    assert sorted(dots(hydro_full)) == [4.0, 9.0] and dots(hydro_zoom) == [9.0]
    assert dots(figs[1].axes[0]) == [4.0, 9.0]
    flow_panel = next(ax for ax in figs[2].axes if ax.get_ylabel().startswith("discharge"))
    assert 9.0 in dots(flow_panel)
    assert (float(P.mdates.date2num(dates[4])), obs[4]) not in dots(hydro_full)


def test_attention_charts_say_the_forecast_flag_is_zero_on_observed_weather_days(tmp_path, monkeypatch, series):
    """The flag is 0 on a hindcast's days and on a forecast's issue day, so its weight multiplies nothing: both charts
    name it so, rather than as a feature that drove the forecast."""
    from sca2lstm.data.features import FORECAST_FLAG, OBSERVED_FLAG_LABEL

    figs = []
    monkeypatch.setattr(P, "_save", lambda fig, path: figs.append(fig) or path)
    labels = {FORECAST_FLAG: OBSERVED_FLAG_LABEL}
    P.plot_feature_weights(["precipitation", FORECAST_FLAG], [0.7, 0.3], tmp_path / "w.png", labels=labels)
    dates, obs, _ = series
    w = np.random.default_rng(0).random((len(dates), 2))
    P.plot_attention_heatmap(dates, w / w.sum(axis=1, keepdims=True), ["precipitation", FORECAST_FLAG],
                             tmp_path / "a.png", obs=obs, labels=labels)
    for fig in figs:
        shown = {t.get_text() for ax in fig.axes for t in ax.get_yticklabels()}
        assert OBSERVED_FLAG_LABEL in shown and FORECAST_FLAG not in shown and "precipitation" in shown


def test_the_feature_weights_chart_shows_long_feature_names_whole(tmp_path):
    """The names sit left of the bars: the picture's left edge must be background, not a cut-off name."""
    import matplotlib.image as mpimg

    names = ["precipitation", "temperature", "discharge_lag1", "consecutive_dry_days", "precipitation_sum_7d"]
    path = P.plot_feature_weights(names, [0.3, 0.0, 0.4, 0.1, 0.2], tmp_path / "w.png", title="basin 32006")
    img = mpimg.imread(path)[..., :3]
    assert _is_png(path) and (img[:, :3] > 0.95).all()   # the first columns of pixels are white


def _fan_chart_figure(monkeypatch, tmp_path, hist_obs, median, levels=None, members=None, members_point=False):
    """The Figure plot_fan_chart builds, instead of its PNG (60 observed days, 7 lead days)."""
    figs = []
    monkeypatch.setattr(P, "_save", lambda fig, path: figs.append(fig) or path)
    hist = pd.date_range("2013-06-03", periods=len(hist_obs), freq="D")
    valid = pd.date_range(hist[-1] + pd.Timedelta(days=1), periods=len(median), freq="D")
    median = np.asarray(median, dtype=float)
    bands = {"90 %": (median * 0.6, median * 1.8), "50 %": (median * 0.85, median * 1.2)}
    P.plot_fan_chart(hist, hist_obs, valid, median, bands, tmp_path / "fan.png", title="Basin 32006",
                     levels=levels, members=members, members_point=members_point)
    return figs[0]


def test_a_dry_season_fan_chart_keeps_the_forecast_readable_and_names_the_levels_far_above_it(tmp_path, monkeypatch):
    """Flows near 1 m3/s under a 20-year flow of 19.5: the levels far above are named, not drawn."""
    fig = _fan_chart_figure(monkeypatch, tmp_path, np.linspace(0.9, 0.6, 60), np.linspace(0.6, 0.9, 7),
                            levels={"q2y": 14.5, "q20y": 19.5, "alert": 2.5})
    ax = fig.axes[0]
    level_lines = [ln.get_ydata()[0] for ln in ax.get_lines() if ln.get_linestyle() == "--"]
    assert level_lines == [2.5]                       # the level within reach is drawn
    assert ax.get_ylim()[1] < 5                       # the forecast fills the chart, not its bottom tenth
    legend = " ".join(t.get_text() for t in ax.get_legend().get_texts())
    assert "q2y 14.5" in legend and "q20y 19.5" in legend and "alert" not in legend


def test_the_members_of_a_model_without_quantiles_are_named_point_forecasts_in_the_legend(tmp_path, monkeypatch):
    """A model without quantiles gives each weather member one flow, not a median of a distribution."""
    med = np.linspace(4.0, 3.0, 7)
    for point, word in ((False, "median of each of 3 weather members"), (True, "point forecast of each of 3")):
        fig = _fan_chart_figure(monkeypatch, tmp_path, np.full(60, 2.0), med, members=np.stack([med] * 3),
                                members_point=point)
        legend = " ".join(t.get_text() for t in fig.axes[0].get_legend().get_texts())
        assert word in legend, legend


def test_the_fan_chart_legend_leaves_the_observed_flood_visible(tmp_path, monkeypatch):
    """A flood in the history's first days sits where an inside legend went: the legend is beside the axes,
    and whole in the picture."""
    obs = np.full(60, 2.0)
    obs[3:8] = [6.0, 14.0, 15.0, 9.0, 5.0]
    fig = _fan_chart_figure(monkeypatch, tmp_path, obs, np.linspace(4.0, 3.0, 7), levels={"alert": 8.0},
                            members=np.linspace(3.0, 5.0, 3)[:, None] * np.ones(7))
    fig.canvas.draw()
    ax, legend = fig.axes[0], fig.axes[0].get_legend()
    box, frame = legend.get_window_extent(), ax.get_window_extent()
    assert box.x0 >= frame.x1                                     # beside the axes, over no data
    assert fig.bbox.contains(box.x0, box.y0) and fig.bbox.contains(box.x1, box.y1)   # and not cut off


def test_close_warning_levels_keep_their_labels_apart_on_the_fan_chart(tmp_path, monkeypatch):
    """A user's danger level of 14.2 beside the 2-year flow of 14.5: both names readable, none over another."""
    fig = _fan_chart_figure(monkeypatch, tmp_path, np.linspace(4.0, 12.0, 60), np.linspace(7.0, 5.0, 7),
                            levels={"q2y": 14.5, "q5y": 17.2, "alert": 8.0, "danger": 14.2})
    fig.canvas.draw()
    labels = {t.get_text(): t.get_window_extent() for t in fig.axes[0].texts}
    assert set(labels) == {"q2y 14.5", "q5y 17.2", "alert 8.0", "danger 14.2"}
    boxes = list(labels.values())
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    # over the oldest days of the history, clear of the forecast's days (their white backgrounds hid the members)
    import matplotlib.dates as mdates

    issue_x = fig.axes[0].transData.transform((mdates.date2num(pd.Timestamp("2013-08-01")), 0.0))[0]
    assert all(b.x1 < issue_x for b in boxes), (issue_x, [b.x1 for b in boxes])


def test_a_fan_chart_with_levels_is_painted_once_for_its_png(tmp_path, monkeypatch):
    """Placing the level labels needs the chart laid out, not painted: its pixels are rendered once, into the PNG
    (a second full paint, about 15 ms of each forecast, drew nothing anyone saw); the test above checks the labels' places."""
    from matplotlib.backends.backend_agg import RendererAgg

    painted = []
    paint = RendererAgg.draw_text
    monkeypatch.setattr(RendererAgg, "draw_text", lambda r, gc, x, y, s, *a, **k: painted.append(s) or
                        paint(r, gc, x, y, s, *a, **k))
    hist = pd.date_range("2013-06-03", periods=60, freq="D")
    valid = pd.date_range("2013-08-02", periods=7, freq="D")
    med = np.linspace(7.0, 5.0, 7)
    path = P.plot_fan_chart(hist, np.linspace(4.0, 12.0, 60), valid, med, {"90 %": (med * 0.6, med * 1.8)},
                            tmp_path / "fan.png", title="Basin 32006", levels={"q2y": 14.5, "danger": 14.2})
    assert _is_png(path)
    assert painted.count("Basin 32006") == 1 and painted.count("q2y 14.5") == 1


def test_discharge_axes_of_the_attention_and_fine_tuning_charts_say_their_unit(tmp_path, series, monkeypatch):
    dates, obs, sim = series
    figs = []
    monkeypatch.setattr(P, "_save", lambda fig, path: figs.append(fig) or path)
    w = np.random.default_rng(3).random((N, 2))
    P.plot_attention_heatmap(dates, w / w.sum(axis=1, keepdims=True), ["precipitation", "discharge_lag1"],
                             tmp_path / "a.png", obs=obs)
    P.plot_before_after(dates, obs, sim * 1.2, sim, tmp_path / "b.png")
    labels = [lab for fig in figs for ax in fig.axes for lab in (ax.get_xlabel(), ax.get_ylabel())]
    flow_labels = [lab for lab in labels if lab.split(" (")[0] in ("discharge", "observed", "predicted")]
    assert len(flow_labels) == 4 and all(lab.endswith("(m$^3$/s)") for lab in flow_labels)


def test_the_feature_weights_bars_keep_half_the_picture_beside_names_in_words(tmp_path, monkeypatch):
    """The charts name inputs in words with their units ("observed discharge 1 day earlier, m³/s [discharge_lag1]"):
    the picture widens for them, so the bars are not squeezed into a strip at the right."""
    from sca2lstm.data.features import feature_labels

    figs = []
    monkeypatch.setattr(P, "_save", lambda fig, path: figs.append(fig) or path)
    names = ["precipitation", "precip_sum_30d", "high_precip_days", "doy_cos", "discharge_lag1", "ssi"]
    P.plot_feature_weights(names, np.full(len(names), 1 / len(names)), tmp_path / "w.png", labels=feature_labels(names),
                           title="Basin 10003: attention weights on the issue day 2002-11-20")
    fig = figs[0]
    fig.draw_without_rendering()
    bars = fig.axes[0].get_window_extent()
    assert bars.width >= 0.5 * fig.bbox.width
    assert min(t.get_window_extent().x0 for t in fig.axes[0].get_yticklabels()) >= 0


def test_the_attention_charts_flow_legend_hides_no_flood(tmp_path, monkeypatch):
    """The panel of observed flow above the daily weights: a second flood near the end of its window, nearly as high
    as the largest, stays visible (the legend sat in the upper right corner, over it)."""
    figs = []
    monkeypatch.setattr(P, "_save", lambda fig, path: figs.append(fig) or path)
    dates = pd.date_range("2013-10-01", periods=120, freq="D")
    obs = np.full(120, 2.0)
    obs[28:33] = [8, 14, 20, 14, 8]          # the largest flood: the window is -30..+60 days around day 30
    obs[84:89] = [8, 13, 19, 13, 8]          # a second one near the window's right end
    w = np.random.default_rng(4).random((120, 3))
    P.plot_attention_heatmap(dates, w / w.sum(axis=1, keepdims=True), ["precipitation", "temperature", "ssi"],
                             tmp_path / "a.png", obs=obs)
    fig = figs[0]
    fig.canvas.draw()
    ax = next(a for a in fig.axes if a.get_legend() is not None)
    box = ax.get_legend().get_window_extent()
    points = [ax.transData.transform(xy) for line in ax.get_lines() for xy in line.get_xydata() if np.isfinite(xy).all()]
    assert points and not any(box.contains(*p) for p in points)


def test_the_feature_weights_title_stays_whole_with_a_long_station_id(tmp_path):
    """A title too long for one line wraps: the picture's top rows and right edge stay background."""
    import matplotlib.image as mpimg

    names = ["discharge_lag1", "precip_sum_7d", "high_precip_days", "doy_sin", "low_precip_days", "precipitation",
             "doy_cos", "precip_sum_30d", "peti", "temperature", "ssi"]
    title = "Basin my-gauge: attention weights on the issue day 2014-02-05"
    path = P.plot_feature_weights(names, np.linspace(0.17, 0.05, len(names)), tmp_path / "w.png", title=title)
    img = mpimg.imread(path)[..., :3]
    assert (img[:3] > 0.95).all() and (img[:, -3:] > 0.95).all()


def test_weather_members_are_drawn_in_a_colour_no_warning_level_has(tmp_path, monkeypatch):
    from matplotlib.colors import to_rgba

    levels = {"q2y": 14.5, "q5y": 17.2, "q10y": 18.5, "q20y": 19.5, "alert": 8.0, "danger": 14.0}
    members = np.linspace(4.0, 9.0, 5)[:, None] * np.ones(7)
    fig = _fan_chart_figure(monkeypatch, tmp_path, np.linspace(4.0, 12.0, 60), np.linspace(7.0, 5.0, 7),
                            levels=levels, members=members)
    lines = fig.axes[0].get_lines()
    level_colours = {to_rgba(ln.get_color()) for ln in lines if ln.get_linestyle() == "--"}
    member_lines = [ln for ln in lines if len(ln.get_xdata()) == 7 and ln.get_marker() in (None, "None", "")]
    assert len(level_colours) == len(levels) and len(member_lines) == len(members)
    assert not {to_rgba(ln.get_color()) for ln in member_lines} & level_colours


@pytest.mark.parametrize("which", ["history", "best_so_far"])
def test_the_tuning_figures_mark_whole_trials_only(tmp_path, monkeypatch, which):
    """A short study (5 trials) is drawn with ticks at trials 0, 1, 2, ..., never at trial 0.5 or 1.5."""
    from sca2lstm.evaluation import tuning_plots as T

    figs = []
    monkeypatch.setattr(T, "_save", lambda fig, path: figs.append(fig) or path)
    values = np.array([0.72, 0.72, 0.74, 0.75, 0.71])
    if which == "history":
        T.plot_optimization_history(np.arange(5), values, np.array(["COMPLETE"] * 5), tmp_path / "h.png", "val_loss")
    else:
        T.plot_best_so_far({"tpe": np.array([T.best_so_far(values)] * 2)}, tmp_path / "b.png", "validation loss")
    fig = figs[0]
    fig.canvas.draw()
    ax = fig.axes[0]
    lo, hi = ax.get_xlim()
    ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
    assert len(ticks) >= 3 and all(float(t).is_integer() for t in ticks), ticks


def test_a_diverged_trial_is_marked_off_the_scale_and_the_others_keep_theirs(tmp_path, monkeypatch):
    """A diverged trial's last value (1e16) drawn as a point flattened every other trial onto one line at 0."""
    from sca2lstm.evaluation import tuning_plots as T

    figs = []
    monkeypatch.setattr(T, "_save", lambda fig, path: figs.append(fig) or path)
    values = np.array([0.56, 0.67, 9.9e15, 0.61, 9.9e15])
    states = np.array(["COMPLETE", "COMPLETE", "DIVERGED", "PRUNED", "DIVERGED"])
    T.plot_optimization_history(np.arange(5), values, states, tmp_path / "h.png", "val_loss")
    ax = figs[0].axes[0]
    lo, hi = ax.get_ylim()
    assert 0.4 < lo < 0.56 and 0.67 < hi < 1.0, (lo, hi)
    marks = [ln for ln in ax.get_lines() if ln.get_label().startswith("diverged")]
    assert len(marks) == 1 and list(marks[0].get_xdata()) == [2, 4]


@pytest.mark.parametrize("which", ["history", "best_so_far"])
def test_the_tuning_figures_legend_hides_no_trial(tmp_path, monkeypatch, which):
    from sca2lstm.evaluation import tuning_plots as T

    figs = []
    monkeypatch.setattr(T, "_save", lambda fig, path: figs.append(fig) or path)
    rng = np.random.default_rng(4)
    values = rng.random(30)
    values[[0, 29]] = 1.0                        # trials in the top corners, where a legend went
    if which == "history":
        states = np.where(np.arange(30) % 7 == 3, "PRUNED", "COMPLETE")
        T.plot_optimization_history(np.arange(30), values, states, tmp_path / "h.png", "val_loss")
    else:
        T.plot_best_so_far({"tpe": np.array([T.best_so_far(values)] * 2)}, tmp_path / "b.png", "validation loss")
    fig = figs[0]
    fig.canvas.draw()
    box, frame = fig.axes[0].get_legend().get_window_extent(), fig.axes[0].get_window_extent()
    assert box.x0 >= frame.x1 and box.x1 <= fig.bbox.x1


@pytest.mark.parametrize("which", ["hydrograph", "before_after"])
def test_the_hydrograph_legends_sit_below_the_panels_not_over_a_flood(tmp_path, series, monkeypatch, which):
    """The largest flood in the period's last days, where the panels' upper-right legends went."""
    dates, obs, sim = series
    obs = obs.copy()
    obs[-5:] = [9.0, 14.0, 16.0, 12.0, 9.0]
    figs = []
    monkeypatch.setattr(P, "_save", lambda fig, path: figs.append(fig) or path)
    if which == "hydrograph":
        P.plot_hydrograph(dates, obs, sim, tmp_path / "h.png", title="Basin 32006", persistence=np.roll(obs, 1))
    else:
        P.plot_before_after(dates, obs, sim * 1.2, sim, tmp_path / "b.png", title="Basin 32006")
    fig = figs[0]
    fig.canvas.draw()
    assert not any(ax.get_legend() for ax in fig.axes)
    (legend,) = fig.legends
    box = legend.get_window_extent()
    texts = [ax.get_tightbbox() for ax in fig.axes] + [fig._suptitle.get_window_extent()]   # panels, their labels
    assert not any(box.overlaps(other) for other in texts)                                 # and the title
    assert fig.bbox.contains(box.x0, box.y0) and fig.bbox.contains(box.x1, box.y1)
    labels = [t.get_text() for t in legend.get_texts()]
    assert labels[0] == "observed" and len(labels) == (3 if which == "hydrograph" else 4)


def test_a_stage_station_fan_chart_has_a_water_level_axis_by_its_curve_with_readable_levels(tmp_path, monkeypatch):
    """A power-law curve (a = 12.5, b = 1.6, h0 = 0.15) is steep at low stages: the right axis gives water levels
    where the curve puts them, and the crowded low ones are left out (5 % of the height apart at least)."""
    from sca2lstm.data.rating import parse_rating, stage_scale

    curve = parse_rating("a=12.5,b=1.6,h0=0.15,h_max=2.0")
    axis = stage_scale(curve, q_top=40.0)
    figs = []
    monkeypatch.setattr(P, "_save", lambda fig, path: figs.append(fig) or path)
    hist = pd.date_range("2013-06-03", periods=60, freq="D")
    valid = pd.date_range(hist[-1] + pd.Timedelta(days=1), periods=7, freq="D")
    med = np.linspace(6.0, 4.0, 7)
    P.plot_fan_chart(hist, np.linspace(0.5, 12.0, 60), valid, med, {"90 %": (med * 0.6, med * 1.8)},
                     tmp_path / "fan.png", levels={"alert (0.9 m)": float(curve.discharge(np.array([0.9])).q[0])},
                     stage_axis=axis)
    ax = figs[0].axes[0]
    (sec,) = [c for c in ax.child_axes]
    assert sec.get_ylabel().startswith("water level (m)")
    lo, hi = ax.get_ylim()
    ticks = np.asarray(sec.yaxis.get_major_locator()())
    flows = curve.discharge(ticks).q            # where the curve puts each labelled level
    assert len(ticks) >= 3 and np.all((flows >= lo) & (flows <= hi))
    assert np.allclose(axis[1](ticks), flows, rtol=1e-3)
    assert np.diff(np.sort(flows)).min() >= 0.05 * (hi - lo) - 1e-9


def _date_labels_as_read(ax):
    """Each labelled tick of a date axis, left to right: (label, the date a reader takes it for, the tick's date).

    A label's missing year or month is the last one named to its left, else the corner's (offset); a label that
    names no day is the 1st and one that names no month January (matplotlib's "Jan" for 1 January, "2013" for
    January 2013). A date the labels and the corner do not give is read as None."""
    import calendar
    import datetime as dt
    import re

    import matplotlib.dates as mdates

    months = {m: i for i, m in enumerate(calendar.month_abbr) if m}
    order = ("year", "month", "day")

    def named(text):
        parts = {}
        for tok in (t for t in re.split(r"[-\s]+", text.strip()) if t):
            key = "month" if tok in months else "year" if tok.isdigit() and len(tok) == 4 else "day"
            parts[key] = months[tok] if key == "month" else int(tok)
        return parts

    context = named(ax.xaxis.get_offset_text().get_text())
    read = []
    labels = sorted((t.get_position()[0], t.get_text()) for t in ax.get_xticklabels() if t.get_visible() and t.get_text())
    for x, text in labels:
        parts = named(text)
        coarsest = min(order.index(k) for k in parts)
        value = {k: parts[k] if k in parts else context.get(k) if i < coarsest else 1 for i, k in enumerate(order)}
        date = dt.date(value["year"], value["month"], value["day"]) if None not in value.values() else None
        if date is not None:
            context = {"year": date.year, "month": date.month}
        read.append((text, date, mdates.num2date(x).date()))
    return read


@pytest.mark.parametrize("chart,axes", [("fan_chart", 1), ("hydrograph", 2), ("attention_heatmap", 1),
                                        ("before_after", 1)])
def test_date_labels_across_new_year_read_as_the_ticks_dates(tmp_path, monkeypatch, chart, axes):
    """A fan chart issued 2012-12-29, a flood on 2013-01-02 (the hydrographs' zoom and the attention's days around
    it): each tick label, read with the labels left of it and the corner, is the tick's own date. matplotlib's
    corner named the last tick's year and month: December's 21, 25, 29 read as January 2013."""
    figs = []
    monkeypatch.setattr(P, "_save", lambda fig, path: figs.append(fig) or path)
    dates = pd.date_range("2012-11-20", "2013-02-28", freq="D")
    obs = 2.0 + 8.0 * np.exp(-(((dates - pd.Timestamp("2013-01-02")).days / 10.0) ** 2))
    if chart == "fan_chart":
        hist = pd.date_range("2012-12-20", "2012-12-29", freq="D")
        valid = pd.date_range("2012-12-30", periods=7, freq="D")
        med = np.linspace(6.0, 4.0, 7)
        P.plot_fan_chart(hist, np.linspace(3.0, 7.0, 10), valid, med, {"90 %": (med * 0.6, med * 1.8)},
                         tmp_path / "fan.png", title="issued 2012-12-29")
    elif chart == "hydrograph":
        P.plot_hydrograph(dates, obs, obs * 1.1, tmp_path / "h.png", title="Nov..Feb")
    elif chart == "attention_heatmap":
        w = np.random.default_rng(5).random((len(dates), 2))
        P.plot_attention_heatmap(dates, w / w.sum(axis=1, keepdims=True), ["precipitation", "discharge_lag1"],
                                 tmp_path / "a.png", obs=obs)
    else:
        P.plot_before_after(dates, obs, obs * 1.3, obs * 1.1, tmp_path / "b.png")
    fig = figs[0]
    fig.canvas.draw()
    date_axes = [ax for ax in fig.axes
                 if any(c.__module__ == "matplotlib.dates" for c in type(ax.xaxis.get_major_formatter()).__mro__)
                 and any(t.get_visible() and t.get_text() for t in ax.get_xticklabels())]
    assert len(date_axes) == axes
    for ax in date_axes:
        read = _date_labels_as_read(ax)
        assert len({tick.year for _, _, tick in read}) == 2            # the ticks cross New Year
        assert [(text, seen) for text, seen, _ in read] == [(text, tick) for text, _, tick in read], \
            f"corner {ax.xaxis.get_offset_text().get_text()!r}"


def test_the_verification_figure_says_when_there_are_no_warning_levels_to_score(tmp_path, monkeypatch):
    """A reforecast without levels (levels.json holds none): the F1 panel says so, over the same leads as the NSE
    panel, rather than that no level was reached."""
    import pandas as pd

    from sca2lstm.evaluation import plots as P

    figs = []
    monkeypatch.setattr(P, "_save", lambda fig, path: figs.append(fig) or path)
    per_lead = pd.DataFrame({"lead": [1, 2, 3], "nse": [0.8, 0.6, 0.4], "persistence_nse": [0.7, 0.4, 0.1],
                             "below_q05": [0.05] * 3, "above_q95": [0.05] * 3})
    P.plot_verification(per_lead, pd.DataFrame(), tmp_path / "v.png", title="basin 1")
    ax_nse, ax_f1 = figs[0].axes[:2]
    texts = [t.get_text() for t in ax_f1.texts]
    assert texts == ["no warning levels to score\n(levels.json holds none)"]
    lo, hi = ax_f1.get_xlim()
    assert lo < 1 < 3 < hi and hi - lo < 3.0


@pytest.mark.parametrize("interval", [True, False])
def test_the_verification_figure_names_the_nse_interval_only_where_it_has_one(tmp_path, monkeypatch, interval):
    """Under a year or two of issue dates there is no interval over resampled years (NaN): no band, and no legend
    entry for one."""
    import pandas as pd

    from sca2lstm.evaluation import plots as P

    figs = []
    monkeypatch.setattr(P, "_save", lambda fig, path: figs.append(fig) or path)
    nan = float("nan")
    per_lead = pd.DataFrame({"lead": [1, 2], "nse": [0.8, 0.6], "persistence_nse": [0.7, 0.4],
                             "nse_lo90": [0.7, 0.5] if interval else [nan, nan],
                             "nse_hi90": [0.9, 0.7] if interval else [nan, nan]})
    P.plot_verification(per_lead, pd.DataFrame(), tmp_path / "v.png")
    labels = [t.get_text() for t in figs[0].axes[0].get_legend().get_texts()]
    assert ("90 % interval over years" in labels) == interval, labels


def test_a_long_gap_in_the_observed_flow_is_shaded_and_named_in_the_legend(tmp_path, series, monkeypatch):
    """Only the predicted line runs through a gauge's outage: the full-period panel shades the runs of
    GAP_SHADE_DAYS or more missing days and the legend says what the shade is; a short break is not shaded."""
    dates, obs, sim = series
    obs = obs.copy()
    obs[50:50 + P.GAP_SHADE_DAYS] = np.nan            # a long gap: shaded (the fixture's 10..13 is a break only)
    assert P.gap_runs(obs, P.GAP_SHADE_DAYS) == [(50, 50 + P.GAP_SHADE_DAYS)]
    figs = []
    monkeypatch.setattr(P, "_save", lambda fig, path: figs.append(fig) or path)
    P.plot_hydrograph(dates, obs, sim, tmp_path / "h.png", title="Basin 32006")
    labels = [t.get_text() for t in figs[0].legends[0].get_texts()]
    assert labels.count(f"no observed flow ({P.GAP_SHADE_DAYS} days or more)") == 1
    full = figs[0].axes[0]
    shaded = [p for p in full.patches if p.get_label().startswith("no observed flow")]
    assert len(shaded) == 1


def test_day_weights_chart_shows_an_input_missing_on_a_day_as_missing(tmp_path, monkeypatch):
    """A lead day's rain without a weather forecast, or a gap in the record, has weight exactly 0: its cell is grey and
    says "missing", as in the heatmap, and the day's other weights are drawn as they are."""
    names = ["precipitation", "temperature", "discharge_lag1"]
    w = pd.DataFrame([[0.5, 0.2, 0.3], [0.0, 0.4, 0.6], [0.0, 0.0, 1.0]], columns=names,
                     index=pd.date_range("2015-09-01", periods=3))
    figs = []
    monkeypatch.setattr(P, "_save", lambda fig, path: figs.append(fig) or path)
    P.plot_day_weights(w, tmp_path / "d.png")
    ax = figs[0].axes[0]
    shown = ax.get_images()[0].get_array()
    assert shown.mask.tolist() == (w.to_numpy().T == 0).tolist()
    texts = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in ax.texts}
    assert texts[(0, 1)] == texts[(0, 2)] == texts[(1, 2)] == "missing"
    assert texts[(0, 0)] == "0.50" and texts[(2, 2)] == "1.00"


def test_day_weights_chart_lays_out_without_measuring_its_cell_texts_and_draws_the_same_picture(tmp_path, monkeypatch):
    # Every forecast draws this chart; measuring each cell's text for the constrained layout cost a third of the
    # forecast's drawing and moved nothing: the picture is the one drawn with every text in the layout.
    rng = np.random.default_rng(0)
    names = ["precipitation", "temperature", "pet", "forecast_flag"] + [f"attr_{i}" for i in range(8)]
    w = pd.DataFrame(rng.dirichlet(np.ones(len(names)), 8), index=pd.date_range("2015-09-01", periods=8),
                     columns=names)
    w.iloc[1:, 2] = 0.0
    args = dict(title="Basin 32006: attention weights issued 2015-09-01 and of each lead day",
                values={"forecast_flag": np.r_[0, np.ones(7)]})
    seen = []
    save = P._save

    def spy(fig, path):
        seen.extend(t.get_in_layout() for t in fig.axes[0].texts)
        return save(fig, path)

    monkeypatch.setattr(P, "_save", spy)
    fast = P.plot_day_weights(w, tmp_path / "fast.png", **args).read_bytes()
    assert len(seen) == w.size and not any(seen)
    import matplotlib.artist

    monkeypatch.setattr(matplotlib.artist.Artist, "get_in_layout", lambda self: True)
    assert P.plot_day_weights(w, tmp_path / "all_measured.png", **args).read_bytes() == fast


def test_warning_levels_are_coloured_by_their_height_whatever_order_they_were_given_in(tmp_path, monkeypatch):
    """Given as danger=30,alert=20,watch=12 (a user's order), the lowest level is yellow and the highest red, as the
    service's page colours them; each label is in its line's colour (darkened where yellow would not read)."""
    from matplotlib.colors import to_hex

    obs = np.linspace(4.0, 26.0, 60)
    for levels in ({"danger": 30.0, "alert": 20.0, "watch": 12.0}, {"watch": 12.0, "alert": 20.0, "danger": 30.0}):
        fig = _fan_chart_figure(monkeypatch, tmp_path, obs, np.linspace(25.0, 20.0, 7), levels=levels)
        ax = fig.axes[0]
        lines = {ln.get_ydata()[0]: to_hex(ln.get_color()) for ln in ax.get_lines() if ln.get_linestyle() == "--"}
        assert lines == {12.0: "#d4a017", 20.0: "#e67e22", 30.0: "#c0392b"}, (levels, lines)
        labels = {t.get_text(): to_hex(t.get_color()) for t in ax.texts}
        assert labels == {"watch 12.0": "#8a6a0f", "alert 20.0": "#a8520f", "danger 30.0": "#c0392b"}, labels


def test_scores_of_0_and_1_in_the_verification_figure_are_drawn_inside_its_panels(tmp_path, monkeypatch):
    """A level the model never caught (F1 0 at every lead) lay on the F1 panel's lower edge, its line hidden in the
    frame; a share of 0 or 1 on the reliability panel's. Each panel reaches past 0 and 1."""
    figs = []
    monkeypatch.setattr(P, "_save", lambda fig, path: figs.append(fig) or path)
    per_lead = pd.DataFrame({"lead": [1, 2], "nse": [0.7, 0.5], "persistence_nse": [0.6, 0.4],
                             "below_q05": [0.0, 0.0], "below_median": [0.5, 0.6], "above_q95": [0.0, 0.0]})
    rows = [{"level": "alert", "lead": k, "forecast": who, "count": "day", "f1": 0.0, "hits": 0, "misses": 2}
            for k in (1, 2) for who in ("model", "persistence")]
    P.plot_verification(per_lead, pd.DataFrame(rows), tmp_path / "v.png")
    _, ax_f1, ax_rel = figs[0].axes[:3]
    lo, hi = ax_f1.get_ylim()
    assert lo < 0.0 and hi > 1.0, (lo, hi)
    for lim in (ax_rel.get_xlim(), ax_rel.get_ylim()):
        assert lim[0] < 0.0 and lim[1] > 1.0, lim


def test_the_verification_figure_colours_each_level_as_the_fan_chart_does(tmp_path, monkeypatch):
    """The F1 lines of danger and alert were orange and red by their order in the table, whatever their height: the
    lower level (alert) orange-yellow on the fan chart and the page was red here. Each level now keeps its colour."""
    from matplotlib.colors import to_hex

    figs = []
    monkeypatch.setattr(P, "_save", lambda fig, path: figs.append(fig) or path)
    per_lead = pd.DataFrame({"lead": [1, 2], "nse": [0.7, 0.5], "persistence_nse": [0.6, 0.4]})
    rows = [{"level": name, "lead": k, "forecast": who, "count": "day", "f1": 0.5, "hits": 1, "misses": 1}
            for name in ("danger", "alert") for k in (1, 2) for who in ("model", "persistence")]
    levels = {"danger": 30.0, "alert": 20.0}
    P.plot_verification(per_lead, pd.DataFrame(rows), tmp_path / "v.png", levels=levels)
    drawn = {ln.get_label().split(" ")[0].rstrip(","): to_hex(ln.get_color()) for ln in figs[0].axes[1].get_lines()}
    fan = {name: colour for name, _, (colour, _) in P.level_colours(levels)}
    assert drawn == fan == {"alert": "#d4a017", "danger": "#e67e22"}, drawn
