"""``sca2lstm forecast``: an issue-time forecast of the next days, from what is known on the issue date.

Example: ``sca2lstm forecast --model ./model_output/sca2lstm.pth --basin 32006 --leads 7``
(the issue date defaults to the basin's last day with observed discharge). Prints the table and
writes, into one folder swapped in atomically: forecast.csv (and forecast.json with --format json),
the fan chart, the issue day's attention weights (CSV and bar chart) and report.html.
"""

from __future__ import annotations

from ..data.tables import parse_csv, read_bytes
from ..weather.lagged import WEATHER_LAGS
from ..weather.mapping import PRECIP_MAPPINGS
from ..words import LANGUAGES, listed, phrase, rjust, say, width
from .common import ArgumentParser, add_common_flags, basin_id, output_folder, positive_int, run_main
from .warnings_flags import add_warning_flags, run_reforecast, warned

PROG = "sca2lstm forecast"


#: command lines that --help ends with (tests parse each)
EXAMPLES = [
        'sca2lstm forecast --model ./model_output/sca2lstm.pth --basin 32006 --leads 7 --issue_date 2015-09-01',
        'sca2lstm forecast --model ./model_output/sca2lstm.pth --basin 32006 --warning_levels alert=45.0,danger=80.0',
        'sca2lstm forecast --model ./model_output/sca2lstm.pth --basin 32006 --from 2010-10-01 --to 2015-09-30',
        'sca2lstm forecast --model ./model_output/sca2lstm.pth --basin 32006 --warning_levels alert=45.0 --language zh',
]


def build_parser(prog: str = PROG) -> ArgumentParser:
    p = ArgumentParser(prog=prog, examples=EXAMPLES, description="Issue-time forecast of a basin's flow for the next days, with "
                                              "quantiles, from what is known on the issue date.")
    p.add_argument("--model", action="extend", nargs="+", required=True, help="checkpoint path or glob: the newest match, preferring those fine-tuned for --basin (best_model_basin_<id>.pth)")
    p.add_argument("--basin", type=basin_id, required=True, help="basin (gauge) id")
    p.add_argument("--issue_date", default=None,
                   help="YYYY-MM-DD; the forecast covers the days after it (default: the last day with "
                        "observed discharge)")
    p.add_argument("--leads", type=positive_int, default=None, help="lead days, 1 .. the model's training."
                                                                    "forecast_leads (default: 7, or fewer if the "
                                                                    "model was trained for fewer)")
    p.add_argument("--weather_forecast", default=None,
                   help="weather of the lead days: a CSV with date and the model's meteorological input columns "
                        "(one row per lead day); a saved Open-Meteo response (.json, deterministic or ensemble, "
                        "from 'sca2lstm weather fetch'); or a long table issue_date, lead_days, valid_date"
                        "[, member], <inputs> (an ensemble runs as one batch; the quantiles are the mixture "
                        "over members; an archive gives the forecast of the issue date)")
    p.add_argument("--precip_mapping", choices=list(PRECIP_MAPPINGS), default="auto",
                   help="map forecast precipitation, per lead, to the station's observed rain of its training "
                        "years by rank among the archive's forecasts issued before the issue date (an archive given "
                        "as --weather_forecast, or for one forecast the station's own DATA_DIR/weather_archive/"
                        "<id>.csv): auto (default) only where those forecasts are drizzly with damped storms (more "
                        "wet days, smaller storms than the station's record) and the model did not train on the "
                        "station's archive, quantile always (needs an archive), none never; one forecast of a "
                        "station without an archive is never mapped (docs/weather.md)")
    p.add_argument("--weather_lags", choices=list(WEATHER_LAGS), default="auto",
                   help="an archive given as --weather_forecast, or one deterministic forecast of a station with "
                        "its own archive (DATA_DIR/weather_archive/<id>.csv): auto (default) combines each day's "
                        "forecast with the same day's forecasts of the archive's three issue dates before, weighted "
                        "per lead by least squares on the days already observed (as given until a year of them is), "
                        "then mapped back to the forecast's own climate; none reads each issue date's run as given; "
                        "an ensemble and a model trained on the station's archive are never combined "
                        "(docs/weather.md)")
    p.add_argument("--format", choices=["csv", "json"], default="csv",
                   help="table format (forecast.csv is always written for the report; default csv); a reforecast, "
                        "--from/--to, writes reforecast.csv only")
    p.add_argument("--output_dir", default=None, help="default: a forecasts/ folder beside the model")
    p.add_argument("--language", choices=list(LANGUAGES), default=LANGUAGES[0],
                   help="language of what the forecast says to a person: warnings.txt and the printed warning "
                        "sentence, level lines and notes, the report's forecast section, and the fan chart where "
                        "matplotlib finds a Chinese font (else its labels stay English, and a line says so); "
                        "en (default) or zh (Chinese). Numbers, dates, level names and units are the same, and "
                        "forecast.csv/forecast.json keep their English columns and keys")
    add_warning_flags(p)
    p.add_argument("--allow_missing_inputs", action="store_true",
                   help="forecast even when precipitation, or every meteorological input, is absent from the "
                        "basin's whole file, or precipitation from the days a forecast reads (a feed that "
                        "stopped; a warning line and the outputs name it)")
    add_common_flags(p, config=False)
    return p


def _read_weather(path, data_dir, basin):
    """A plain ``date`` CSV as a table; a saved Open-Meteo JSON or a long table as a WeatherForecast."""
    from pathlib import Path


    from ..errors import DataError
    from ..weather.files import csv_dialect, header_names, read_forecast_for_station

    p = Path(path)
    if p.is_dir():
        raise DataError(f"--weather_forecast {p} is a folder; expected a weather forecast file (.csv or .json)")
    if not p.is_file():
        raise DataError(f"--weather_forecast {p}: no such file")
    wf = read_forecast_for_station(p, data_dir, basin)
    if wf is not None:
        return wf
    raw = read_bytes(p, "CSV file")[0]  # a plain table, read as a long one is (separator, headers)
    df = parse_csv(raw, str(p), encoding=None, **csv_dialect(raw, str(p)))
    return df.rename(columns=header_names(df.columns, str(p)))


def collapsed_leads(table) -> list:
    """The leads whose interval has no width (the lowest quantile equals the highest): every quantile was
    raised to the recession bound."""
    q = sorted(c for c in table.columns if c.startswith("q") and c[1:].isdigit())
    if len(q) < 2:
        return []
    return [int(r["lead_days"]) for _, r in table.iterrows() if r[q[0]] == r[q[-1]]]


def table_lines(t, language: str = "en") -> list:
    """The forecast table as printed: a line per lead day of the median and quantiles (m3/s), then, for a station
    with a rating curve, the same as water levels (m). The headers in ``language``, each column as wide as its
    header takes on a terminal (:func:`~sca2lstm.words.rjust`: a Chinese header is wider than its English one)."""
    qcols = [c for c in t.columns if c.startswith("q") and c[1:].isdigit()]
    head = {"valid_date": say("table_valid_date", language), "lead_days": say("table_lead", language),
            "median": say("table_median", language), **{c: c for c in qcols}}
    cols = {"valid_date": 10, "lead_days": 4, "median": 9, **{c: 9 for c in qcols}}
    cols = {c: max(w, width(head[c])) for c, w in cols.items()}

    def row(r, names):   # as the headers are joined, a trailing space where no column follows
        return (f"{r['valid_date'].date()!s:>{cols['valid_date']}} {int(r['lead_days']):{cols['lead_days']}d} "
                + " ".join(f"{r[c]:{cols[c.removeprefix('stage_')]}.3f}" for c in names))

    def header(names):
        return (f"{rjust(head['valid_date'], cols['valid_date'])} {rjust(head['lead_days'], cols['lead_days'])} "
                + " ".join(rjust(head[c], cols[c]) for c in names))

    lines = [header(["median"]) + " " + " ".join(rjust(c, cols[c]) for c in qcols) + "   m3/s"]
    lines += [row(r, ["median"]) + " " + " ".join(f"{r[c]:{cols[c]}.3f}" for c in qcols) for _, r in t.iterrows()]
    # the median's and every quantile's water level, whatever levels the model gives (q10, q90 ...)
    scols = [c for c in ("median", *qcols) if f"stage_{c}" in t.columns]
    if scols:  # a station with a rating curve: the same forecast as water levels (daily means)
        lines.append(header(scols) + "   " + say("table_stage_unit", language))
        lines += [row(r, [f"stage_{c}" for c in scols]) for _, r in t.iterrows()]
    return lines


def _body(args) -> int:
    from pathlib import Path

    from ..errors import DataError
    from ..evaluation.operational import write_forecast
    from ..evaluation.predict import resolve_model_path
    from ..checkpoint import load_model
    from ..training.runtime import resolve_device

    if args.output_dir:
        args.output_dir = str(output_folder(args.output_dir, "--output_dir"))  # '~' expanded
    if args.language != "en":  # the notes the forecast logs as it goes, said as the rest of its words
        from ..logs import say_notes_in

        say_notes_in(args.language)
    device = resolve_device(args.device, args.no_cuda)
    path = resolve_model_path(args.model, args.basin)
    bundle = load_model(path, device)
    from ..evaluation.context import check_basins

    weather = None
    data_dir = check_basins(bundle, args.data_dir, [args.basin])  # a basin not there: said before the weather
    # the forecast reads this folder: resolved (and said where it is the model's synthetic one) once, not again
    args.data_dir = str(data_dir)
    if args.weather_forecast:
        weather = _read_weather(args.weather_forecast, data_dir, args.basin)
    from ..weather.archive import archive_path
    from ..weather.mapping import check_mappable

    # before the model reads the basin: one forecast ranks among the station's own archive, if it has one
    check_mappable(weather, args.precip_mapping, args.weather_forecast,
                   station_archive=archive_path(data_dir, args.basin) is not None)
    out_dir = Path(args.output_dir) if args.output_dir else path.parent / "forecasts"
    if args.from_date or args.to_date:
        return run_reforecast(args, bundle, path, out_dir, weather)
    try:
        fc, extra, lines = warned(args, bundle, path, weather)
    except DataError as e:
        if weather is not None and str(e).startswith(("weather forecast", "the weather forecast")):
            raise DataError(f"--weather_forecast {args.weather_forecast}: {e}") from None
        raise
    folder = write_forecast(fc, out_dir, args.format, **extra, language=args.language)
    t = fc.table
    members = fc.members_said(args.language)
    print(say("forecast_heading", args.language, basin=fc.basin, day=fc.issue_date.date(), setting=fc.setting,
              members=members and say("heading_members", args.language, phrase=members), model=path,
              ms=fc.seconds * 1000))
    for line in table_lines(t, args.language):
        print(line)
    from ..evaluation.rain_mapping import lagged_line, mapping_line

    wf = fc.data.get("weather_forecast", {})
    for line in (lagged_line(wf.get("lagged"), args.weather_forecast),
                 mapping_line(wf.get("precip_mapping"), args.weather_forecast)):   # the file as the user named it
        if line:
            print(phrase(line, args.language))
    for line in lines:
        print(line)
    from ..evaluation.plots import CJK_FONTS, chart_language

    if chart_language(args.language) != args.language:  # drawn in English rather than as boxes: say why
        print(say("fan_no_font", args.language, fonts=listed(CJK_FONTS[:7], args.language)))
    flat = collapsed_leads(t)
    if flat:  # every quantile raised to the recession bound: the model forecast a fall faster than the river can
        print(say("collapsed", args.language, leads=listed(flat, args.language)))
    # An input the basin lacks was named once, by the data loading (--format json lists it: missing_inputs).
    print(say("output", args.language, folder=folder))
    return 0


def main(argv=None, prog: str = PROG) -> int:
    return run_main(prog, _body, build_parser(prog), argv)
