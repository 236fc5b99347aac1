#!/usr/bin/env python
"""Real-browser check of the page of ``sca2lstm serve`` (headless Debian chromium driven by Playwright).

Starts the server on a free 127.0.0.1 port, loads ``/``, picks station 32006 and checks that the
forecast table and the chart's median points show the numbers of ``GET /stations/32006/forecast``, that
the attention bars and the 90 observed days are drawn; then picks an issue day a week earlier (its
chart shows the days observed since) and saves a screenshot (default docs/figures/serve.png).
Not in CI (CI has no chromium). Needs ``pip install playwright`` and a chromium (``apt-get install chromium``,
or any chromium binary given as ``--chromium``, which may be a shell script that adds the flags that binary
needs); it never downloads a browser (``executable_path`` points at it).

Usage:
    python scripts/browser_check.py                          # tiny synthetic basins + a tiny model
    python scripts/browser_check.py --model M --data_dir D   # a real checkpoint and data folder
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from load_test import TOKEN, _free_port, _start_server, tiny_model  # noqa: E402

STATION = "32006"
#: A second station of the tiny basins given a rating curve (Q = a h^2) and two levels, one a flow and one a water
#: level: its page in Chinese shows the water levels beside the flows and names the levels as the alert mails do.
STAGE_STATION = "10002"


def check(url: str, chromium: str, screenshot: Path) -> list[str]:
    import httpx
    import pandas as pd
    from playwright.sync_api import sync_playwright

    from sca2lstm.evaluation.operational import interval_bands, quantile_levels

    problems = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True,
                                     args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1100})
            messages = []
            page.on("console", lambda m: messages.append(f"{m.type}: {m.text}") if m.type == "error" else None)
            page.on("requestfailed", lambda r: messages.append(f"request failed: {r.url}"))
            # Two earlier forecasts first, so the verification table has days that were observed since. Asked with
            # the token: only a token holder's forecasts are stored (an anonymous one is computed and not kept).
            latest = httpx.get(f"{url}/stations/{STATION}/forecast", timeout=60).json()["issue_date"]
            for back in (14, 7):
                day = (dt.date.fromisoformat(latest) - dt.timedelta(days=back)).isoformat()
                r = httpx.get(f"{url}/stations/{STATION}/forecast", params={"issue_date": day}, timeout=60,
                              headers={"Authorization": f"Bearer {TOKEN}"})
                if r.status_code != 200:
                    problems.append(f"forecast of {day}: HTTP {r.status_code} {r.text[:200]}")
            page.goto(url + "/", wait_until="networkidle", timeout=180_000)  # /warnings issues every station first
            page.select_option("#station", STATION)
            page.wait_for_selector(f'body[data-ready="1"][data-station="{STATION}"]', timeout=60_000)
            leads = int(page.input_value("#leads"))
            api = httpx.get(f"{url}/stations/{STATION}/forecast", params={"leads": leads}, timeout=60).json()

            # the table's quantile columns are the levels the model gives (q05 .. q95, or q10/q90 of deciles)
            given = sorted(api["forecast"][0]["quantiles"], key=lambda c: quantile_levels([c])[c])
            heads = page.eval_on_selector_all("#forecast-table thead th.quantile", "ths => ths.map(t => t.textContent)")
            if heads != [f"{quantile_levels([c])[c] * 100:g} %" for c in given]:
                problems.append(f"table's quantile headers {heads} != the model's levels {given}")
            rows = page.eval_on_selector_all("#forecast-table tbody tr", """(rows, cols) => rows.map(r => ({
                valid_date: r.dataset.validDate, median: r.querySelector('.median').textContent,
                ...Object.fromEntries(cols.map(c => [c, r.querySelector('.' + c).textContent]))}))""", given)
            want = [{"valid_date": f["valid_date"], "median": f"{f['median']:.2f}",
                     **{c: f"{f['quantiles'][c]:.2f}" for c in given}} for f in api["forecast"]]
            if rows != want:
                problems.append(f"table {rows} != API {want}")
            points = page.eval_on_selector_all("#chart circle.median-point", """cs => cs.map(c => ({
                valid_date: c.dataset.validDate, median: Number(c.dataset.median)}))""")
            if [(p["valid_date"], p["median"]) for p in points] != [(f["valid_date"], f["median"])
                                                                   for f in api["forecast"]]:
                problems.append(f"chart points {points} != API forecast")
            # the fan shades the intervals the CLI's fan chart shades, and the legend names those only
            bands = interval_bands(pd.DataFrame([f["quantiles"] for f in api["forecast"]], dtype=float))
            want_bands = [[lo, hi, f"{quantile_levels([lo])[lo] * 100:g}–{quantile_levels([hi])[hi] * 100:g} %"]
                          for lo, hi in bands.values()]
            drawn_bands = page.eval_on_selector_all("#chart polygon", """ps => ps.map(p => [p.dataset.lo, p.dataset.hi,
                p.dataset.label])""")
            if drawn_bands != want_bands:
                problems.append(f"chart's bands {drawn_bands} != the model's intervals {want_bands}")
            legend = page.eval_on_selector_all(".legend .key.band50, .legend .key.band90", """ks => ks
                .filter(k => getComputedStyle(k).display !== 'none').map(k => k.nextSibling.textContent.trim())""")
            if sorted(legend) != sorted(b[2] for b in want_bands):
                problems.append(f"legend's intervals {legend} != those drawn {want_bands}")
            if page.locator("#chart path.observed-line").count() != 1:
                problems.append("chart: the observed line not drawn once")
            verified = page.eval_on_selector_all("#verification tbody tr", "rs => rs.length")
            if verified != 2 * leads:  # the page's own forecast is anonymous: computed, not stored
                problems.append(f"verification table: {verified} rows, expected {2 * leads} (the two stored forecasts)")
            heading = page.text_content("#verification th.interval")
            if want_bands and heading != want_bands[0][2]:
                problems.append(f"verification table's interval heading {heading!r} != {want_bands[0][2]!r}")
            bars = page.eval_on_selector_all("#weights .bar-row", "rs => rs.map(r => r.dataset.feature)")
            if sorted(bars) != sorted(api["weights"]):
                problems.append(f"attention bars {bars} != API weights {list(api['weights'])}")
            drawn = page.eval_on_selector_all("#chart line.level-line", "ls => ls.map(l => l.dataset.level)")
            off_text = page.text_content("#levels-off") or ""
            for name in api["levels"]:
                if api["levels"][name]["value"] is not None and name not in drawn and name not in off_text:
                    problems.append(f"level {name}: neither drawn nor named in the legend ({off_text!r})")
            n_obs = sum(h["observed"] is not None for h in api["history"])
            print(f"station {STATION}: issue day {api['issue_date']}, {len(rows)} leads in the table and the "
                  f"chart, {len(bars)} attention bars, {n_obs} observed days drawn")
            # An earlier issue day: the days observed since are drawn dashed beside its forecast.
            earlier = (dt.date.fromisoformat(latest) - dt.timedelta(days=7)).isoformat()
            page.fill("#issue-date", earlier)
            page.dispatch_event("#issue-date", "change")
            page.wait_for_function(f"document.querySelector('#forecast-meta').textContent.includes('{earlier}') "
                                   "&& document.body.dataset.ready === '1'", timeout=60_000)
            if page.locator("#chart path.observed-after-line").count() != 1:
                problems.append(f"chart of the forecast issued for {earlier}: no line of the days observed since")
            problems += messages
            page.evaluate("document.activeElement && document.activeElement.blur()")
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=True)
            print(f"screenshot: {screenshot}")
        finally:
            browser.close()
    return problems


def give_stage_station(data_dir: Path, station: str = STAGE_STATION) -> float:
    """``station``'s metadata file with a rating curve whose 2 m is its record's highest flow (Q = a h^2), an alert
    level at half that flow and a danger level as a water level of 1.8 m; returns the curve's ``a``."""
    import json

    from sca2lstm.data.reader import read_timeseries
    from sca2lstm.data.station_meta import StationMeta, WarningLevel, meta_path

    top = float(read_timeseries(data_dir, station)["discharge_vol"].max())
    curve = {"kind": "power", "segments": [{"a": top / 4.0, "b": 2.0, "h0": 0.0, "h_max": None, "valid_from": None,
                                            "valid_to": None}]}
    meta = StationMeta(station, warning_levels={"alert": WarningLevel(round(top / 2, 2)),
                                                "danger": WarningLevel(1.8, "m")}, rating_curve=curve)
    path = meta_path(data_dir, station)
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(meta.to_dict(), indent=2) + "\n", encoding="utf-8")
    return top / 4.0


def _stage_axis_problems(page, a: float) -> list[str]:
    """The chart's water-level axis on the right of a station whose curve is Q = ``a`` h^2: at least two ticks,
    each water level h where the flow axis has a h^2 (to a pixel: the page interpolates the curve's table of 500
    flows, whose chord is off by at most a quarter of a table step, 0.25 % of its 5-fold reach, about 0.7 px of the
    plot's 285), and the axis named as the CLI's fan chart names it."""
    from sca2lstm.words import say

    flow = page.eval_on_selector_all("#chart text.flow-tick", """ts => ts.map(t => [Number(t.textContent),
        Number(t.getAttribute('y'))])""")
    ticks = page.eval_on_selector_all("#chart text.stage-tick", """ts => ts.map(t => [Number(t.textContent),
        Number(t.getAttribute('y'))])""")
    problems = []
    if len(ticks) < 2:
        return [f"stage station: the chart's water-level axis has {len(ticks)} tick(s): {ticks}"]
    (v0, y0), (v1, y1) = flow[0], flow[-1]
    for h, y in ticks:
        want = y0 + (a * h * h - v0) * (y1 - y0) / (v1 - v0)
        if abs(y - want) > 1.0:
            problems.append(f"stage station: water level {h} m drawn at y={y:.1f}, its flow {a * h * h:.3f} m3/s at "
                            f"y={want:.1f} on the flow axis")
    unit = page.text_content("#chart text.stage-unit")
    if unit != say("fan_stage", "zh"):
        problems.append(f"stage station: the water-level axis is named {unit!r}, not {say('fan_stage', 'zh')!r}")
    return problems


def check_stage_station(url: str, chromium: str, screenshot: Path, a: float, station: str = STAGE_STATION) -> list[str]:
    """The page in Chinese of a station with a rating curve Q = ``a`` h^2: the forecast table's water-level column
    (median and widest interval, m, as the API gives them), each level's water level and Chinese name (as the alert
    mails say it) in the forecast's line and on the chart, the chart's water-level axis; the column and the axis
    stay hidden for a station without a curve."""
    import httpx
    from playwright.sync_api import sync_playwright

    from sca2lstm.serve.messages import level_word

    problems = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True,
                                     args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1100}, locale="zh-CN",
                                    extra_http_headers={"Accept-Language": "zh-CN,zh;q=0.9"})
            messages = []
            page.on("console", lambda m: messages.append(f"{m.type}: {m.text}") if m.type == "error" else None)
            page.goto(url + "/", wait_until="networkidle", timeout=180_000)
            page.select_option("#station", station)
            page.wait_for_selector(f'body[data-ready="1"][data-station="{station}"]', timeout=60_000)
            leads = int(page.input_value("#leads"))
            api = httpx.get(f"{url}/stations/{station}/forecast", params={"leads": leads}, timeout=60).json()
            if page.is_hidden("#forecast-table th.stage-col") or page.text_content("#forecast-table th.stage-col") \
                    != "水位（m）":
                problems.append("stage station: the table's water-level column is not shown as 水位（m）")
            cells = page.eval_on_selector_all("#forecast-table tbody td.stage", "ts => ts.map(t => t.textContent)")
            want = [f"{f['stage_median']:.2f} ({f['stage_quantiles']['q05']:.2f}–{f['stage_quantiles']['q95']:.2f})"
                    for f in api["forecast"]]
            if cells != want:
                problems.append(f"stage station: water-level cells {cells} != API {want}")
            meta = page.text_content("#forecast-meta") or ""
            for name, lv in api["levels"].items():
                said = f"{level_word(name, 'zh')} {lv['value']:.2f} m³/s（水位 {lv['stage']:.2f} m）"
                if said not in meta:
                    problems.append(f"stage station: the forecast's line {meta!r} does not say {said!r}")
            labels = page.eval_on_selector_all("#chart text.level-label:not(.halo)", "ts => ts.map(t => t.textContent)")
            drawn = page.eval_on_selector_all("#chart line.level-line", "ls => ls.map(l => l.dataset.level)")
            for name in drawn:
                if not any(t.startswith(level_word(name, "zh") + " ") and "（水位 " in t for t in labels):
                    problems.append(f"stage station: no chart label of {name} as {level_word(name, 'zh')} with its "
                                    f"water level: {labels}")
            problems += _stage_axis_problems(page, a)
            print(f"station {station} (rating curve, zh): water levels {cells[:2]} ..., line {meta[-120:]!r}, "
                  f"chart labels {labels}, water-level axis {page.eval_on_selector_all('#chart text.stage-tick', 'ts => ts.map(t => t.textContent)')}")
            page.select_option("#station", STATION)
            page.wait_for_selector(f'body[data-ready="1"][data-station="{STATION}"]', timeout=60_000)
            if not page.is_hidden("#forecast-table th.stage-col") or page.locator("td.stage").count():
                problems.append(f"station {STATION} (no rating curve): a water-level column is shown")
            if page.locator("#chart .stage-tick, #chart .stage-unit").count():
                problems.append(f"station {STATION} (no rating curve): the chart has a water-level axis")
            page.select_option("#station", station)
            page.wait_for_selector(f'body[data-ready="1"][data-station="{station}"]', timeout=60_000)
            problems += messages
            page.screenshot(path=str(screenshot), full_page=True)
            print(f"screenshot: {screenshot}")
        finally:
            browser.close()
    return problems


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None, help="checkpoint (default: train a tiny one on synthetic basins)")
    p.add_argument("--data_dir", default=None, help="data folder of the stations (needed with --model)")
    p.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    p.add_argument("--screenshot", default=str(REPO / "docs" / "figures" / "serve.png"))
    p.add_argument("--stage_screenshot", default=None,
                   help="also check a station with a rating curve in Chinese (the tiny model's basins only; its "
                        "metadata file is written), saving its page here")
    args = p.parse_args(argv)
    if not Path(args.chromium).is_file():
        p.error(f"--chromium {args.chromium}: no such file; apt-get install chromium")
    with tempfile.TemporaryDirectory(prefix="sca2lstm_browser_") as tmp:
        tmp = Path(tmp)
        tiny = args.model is None
        if tiny:
            args.model, data_dir = tiny_model(tmp)
            if args.stage_screenshot:
                a = give_stage_station(data_dir)
        elif args.data_dir is None:
            p.error("--data_dir is needed with --model")
        else:
            data_dir = Path(args.data_dir)
        port = _free_port()
        proc = _start_server(args, data_dir, tmp / "serve.sqlite", port)
        try:
            problems = check(f"http://127.0.0.1:{port}", args.chromium, Path(args.screenshot))
            if args.stage_screenshot and tiny:
                problems += check_stage_station(f"http://127.0.0.1:{port}", args.chromium, Path(args.stage_screenshot), a)
        finally:
            proc.terminate()
            proc.wait(timeout=15)
    for prob in problems:
        print("PROBLEM:", prob)
    print("RESULT:", "FAIL" if problems else "PASS")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
