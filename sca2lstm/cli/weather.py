"""``sca2lstm weather``: weather forecasts for a station from Open-Meteo.

``weather fetch`` saves today's forecast (deterministic, or every member with ``--ensemble``) for the
lead days of a model, as a table ``forecast --weather_forecast`` reads, with the raw response beside it::

    sca2lstm weather fetch --basin 32006 --model ./model_output/sca2lstm.pth [--ensemble] [--points 'lat,lon;lat,lon']

``weather archive`` builds an archive of past forecasts (issue_date, lead_days, valid_date, inputs) from
Open-Meteo's previous-runs API (2024 on), which training, fine-tuning and reforecasts read::

    sca2lstm weather archive --basin 32006 --model M.pth --from 2024-01-01 --to 2024-12-31 \\
        --out DIR/weather_archive/32006.csv

The free API is for non-commercial use (no key); its data are CC BY 4.0. Use ``--api_key`` for a paid
plan (its ``customer-`` host of each API is asked) and ``--base_url`` for a self-hosted instance. Without
network, on a refusal or an unusable answer: one line, exit 1, nothing written.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import UsageError
from .common import ArgumentParser, basin_id, iso_date, non_negative_int, output_file, positive_float, run_main

#: The first day of Open-Meteo's previous-runs API (docs: data from January 2024 for most models).
PREVIOUS_RUNS_FIRST_DAY = "2024-01-01"

PROG = "sca2lstm weather"


#: command lines that --help ends with (tests parse each)
EXAMPLES = [
        'sca2lstm weather fetch --basin 32006 --model ./model_output/sca2lstm.pth --ensemble',
        'sca2lstm weather archive --basin 32006 --model ./model_output/sca2lstm.pth --from 2024-03-01 --to 2024-09-30',
]


def build_parser(prog: str = PROG) -> ArgumentParser:
    p = ArgumentParser(prog=prog, examples=EXAMPLES, description="Weather forecasts from Open-Meteo: 'fetch' today's forecast, "
                                              "'archive' past forecasts (previous-runs API).")
    sub = p.add_subparsers(dest="action", required=True, metavar="{fetch,archive}", parser_class=ArgumentParser)
    f = sub.add_parser("fetch", help="save today's weather forecast for a station's lead days")
    a = sub.add_parser("archive", help="build an archive of past forecasts (issue date x lead) for a station")
    for q in (f, a):
        q.add_argument("--basin", type=basin_id, required=True, help="basin (gauge) id")
        q.add_argument("--model", action="extend", nargs="+", required=True,
                       help="checkpoint path or glob: its inputs and lead days decide what is fetched")
        q.add_argument("--data_dir", default=None, help="data folder (default: the one recorded in the checkpoint)")
        q.add_argument("--source", choices=["open-meteo"], default="open-meteo", help="weather source")
        q.add_argument("--models", action="extend", nargs="+", default=None,
                       help="Open-Meteo weather model(s), e.g. ecmwf_ifs025 (default: its best match; several "
                            "models are kept as members)")
        q.add_argument("--points", default=None,
                       help="lat,lon pairs separated by ';', averaged (default: the station metadata's weather "
                            "points, else the gauge)")
        q.add_argument("--base_url", default=None,
                       help="a self-hosted Open-Meteo, e.g. http://host:8080 (default: the free API, "
                            "non-commercial use only; with --api_key the paid plan's host of each API)")
        q.add_argument("--api_key", default=None,
                       help="key of a paid Open-Meteo plan (sent as apikey to customer-*.open-meteo.com; default "
                            "$SCA2LSTM_OPENMETEO_API_KEY, which keeps it out of the process list and shell history)")
        q.add_argument("--timeout", type=positive_float, default=20.0,
                       help="seconds one attempt may take in all: connecting and reading the whole answer, however "
                            "slowly it comes (default 20)")
        q.add_argument("--retries", type=non_negative_int, default=3,
                       help="retries after a failed attempt, waiting 1, 2, 4 ... s between them (default 3): a "
                            "request gives up after about (retries + 1) x timeout plus the waits")
        q.add_argument("--out", default=None, help="output CSV (the raw response is saved beside it)")
        q.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
        q.add_argument("--quiet", action="store_true", help="print only the output paths")
    f.add_argument("--ensemble", action="store_true", help="every member of the ensemble API")
    a.add_argument("--from", dest="start", type=iso_date, required=True,
                   help=f"first valid date, YYYY-MM-DD ({PREVIOUS_RUNS_FIRST_DAY} or later)")
    a.add_argument("--to", dest="end", type=iso_date, required=True, help="last valid date, YYYY-MM-DD")
    return p


def default_out(args, issue=None) -> Path:
    """--out, else ``weather_<id>_<issue date>.csv`` (fetch) or ``weather_archive_<id>.csv`` (archive)."""
    if args.out:
        return Path(args.out).expanduser()
    return Path(f"weather_{args.basin}_{issue}.csv" if args.action == "fetch" else f"weather_archive_{args.basin}.csv")


def _context(args):
    from ..checkpoint import load_model
    from ..evaluation.context import basin_file, data_folder
    from ..evaluation.predict import resolve_model_path
    from ..weather.fetch import output_paths, parse_points, station_location

    if args.out:  # checked before the download: the table and the raw answer saved beside it
        output_file(args.out, "--out", f"weather_{args.basin}.csv")
        output_paths(args.out, "--out")
    elif args.action == "archive":  # a fetch's default name has the issue date: save_forecast checks it
        output_paths(default_out(args))
    path = resolve_model_path(args.model)
    bundle = load_model(path)
    cfg = bundle[1]
    data_dir, _ = data_folder(bundle, args.data_dir)
    # an unknown basin is named, with the ones there are; without --data_dir, with how to name a station's own
    # folder, as forecast does (the guide's station lives in a folder of its own, not the model's)
    basin_file(data_dir, args.basin, args.data_dir)
    if args.base_url and not str(args.base_url).startswith(("http://", "https://")):
        raise UsageError(f"--base_url {args.base_url!r}: expected an http:// or https:// address")
    pts = parse_points(args.points) if args.points else None
    loc = station_location(data_dir, args.basin, pts)
    leads = max(1, int(cfg.training.forecast_leads or 7))
    opts = {"timeout": args.timeout, "retries": args.retries}
    return cfg, loc, leads, opts


def _body(args) -> int:
    import os

    from ..weather.fetch import fetch_archive, fetch_forecast, save_forecast

    # the service reads the key from the same variable
    args.api_key = args.api_key or os.environ.get("SCA2LSTM_OPENMETEO_API_KEY") or None
    cfg, loc, leads, opts = _context(args)
    horizon = "the model's forecast horizon (training.forecast_leads)"
    if args.action == "fetch":
        docs, table = fetch_forecast(loc, leads, ensemble=args.ensemble, models=args.models, base_url=args.base_url,
                                     api_key=args.api_key, client_options=opts, leads_from=horizon)
        issue = table["issue_date"].iloc[0].date()
        out = default_out(args, issue)
    else:
        if args.start > args.end:
            raise UsageError(f"--from {args.start} is after --to {args.end}")
        if args.start < PREVIOUS_RUNS_FIRST_DAY:
            raise UsageError(f"--from {args.start}: Open-Meteo's previous-runs archive starts on "
                             f"{PREVIOUS_RUNS_FIRST_DAY}; choose a later date")
        docs, table = fetch_archive(loc, args.start, args.end, leads, models=args.models, base_url=args.base_url,
                                    api_key=args.api_key, client_options=opts, leads_from=horizon,
                                    progress=not args.quiet)
        out = default_out(args)
    csv, raw = save_forecast(table, docs, out)
    if not args.quiet:
        members = int(table["member"].nunique()) if "member" in table else 1
        pts = "; ".join(f"{a:.3f},{b:.3f}" for a, b in loc.points)
        what = (f"{members} member(s), issued {table['issue_date'].iloc[0].date()}" if args.action == "fetch"
                else archive_summary(table, leads))
        # the previous-runs archive is always read hourly (its *_previous_dayN values), then summed to station days
        hourly = loc.hourly or args.action == "archive"
        print(f"Open-Meteo {'ensemble' if getattr(args, 'ensemble', False) else args.action} for basin "
              f"{args.basin} at {pts} ({'hourly, station day from ' + loc.day_start if hourly else 'daily'}): "
              f"{what}. Data: Open-Meteo.com, CC BY 4.0.")
    print(f"Output: {csv}\nRaw response: {raw}")
    return 0


def archive_summary(table, leads: int) -> str:
    """What an archive holds, as written: its issue dates, and how many of them have every lead 1..``leads``
    (the first ``leads`` - 1 issue dates reach only into --from, the last ones end at --to, and a gap of
    Open-Meteo's leaves a date without a lead; a reforecast leaves such dates out)."""
    n = table["issue_date"].nunique()
    have = table[table["lead_days"].between(1, leads)].groupby("issue_date")["lead_days"].nunique()
    full = have[have == leads].index
    span = f" (from {full.min().date()} to {full.max().date()})" if len(full) else ""
    return f"{n} issue dates, {len(full)} of them with every lead 1..{leads}{span}"


def main(argv=None, prog: str = PROG) -> int:
    return run_main(prog, _body, build_parser(prog), argv)
