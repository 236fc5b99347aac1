"""``sca2lstm station import``: bring a gauge's own daily CSV into a data folder the commands read.

Example::

    sca2lstm station import pegel.csv --id my-gauge --out ./my_stations --sep ';' --decimal , \\
        --map date=Datum,precipitation=Niederschlag,discharge=Abfluss --discharge_unit m3/s \\
        --area_km2 120 --lat 48.1 --lon 9.3

A township station logged hourly in GBK, with a water level, a rating curve and three rain gauges::

    sca2lstm station import 水文站.csv --id zhen-01 --out ./my_stations \\
        --map date=时间,stage=水位(m),precipitation=雨量1+雨量2+雨量3,temperature=气温 \\
        --precipitation_weights 0.5,0.3,0.2 --rating a=12.5,b=1.6,h0=0.15 --day_start 08:00 \\
        --timezone Asia/Shanghai --warning_levels alert=2.5,danger=3.2 --levels_in stage

``--spec stations.yaml`` gives the same options in YAML: one mapping, or ``stations:`` with a list of
them (keys as the flags without ``--``; ``file``, ``rating`` and ``out`` relative to the YAML's folder, ``--out`` beside
``--spec`` to the working directory; ``map`` and ``attr``
as mappings; a key beside the ``stations:`` list is refused); beside ``--spec`` only ``--out`` and ``--overwrite``
are read, another flag is refused. Every station is checked before anything is written.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..errors import UsageError
from .common import ArgumentParser, run_main

log = logging.getLogger(__name__)

PROG = "sca2lstm station"
_SPEC_KEYS = {"file", "id", "out", "map", "discharge_unit", "area_km2", "lat", "lon", "attr", "sep", "decimal",
              "thousands", "date_format", "na_value", "overwrite", "encoding", "sheet", "skiprows", "day_start",
              "day_label", "stamp", "timezone", "station_timezone", "max_missing", "rating", "warning_levels",
              "levels_in", "precipitation_weights", "distribution", "water_year_start", "precipitation_unit",
              "max_reading_gap", "below_h0"}


#: command lines that --help ends with (tests parse each)
EXAMPLES = [
        'sca2lstm station import pegel.csv --id my-gauge --out ./my_stations --map date=Datum,precipitation=Niederschlag,discharge=Abfluss --discharge_unit l/s --area_km2 120 --lat 48.07 --lon 9.37',
]


def build_parser(prog: str = PROG) -> ArgumentParser:
    p = ArgumentParser(prog=prog, examples=EXAMPLES, description="Station tools: 'import' writes a station's record (CSV or Excel, daily "
                                              "or sub-daily, discharge or water level) into a data folder.")
    sub = p.add_subparsers(dest="action", required=True, metavar="{import}", parser_class=ArgumentParser)
    q = sub.add_parser("import", help="import a station's record into a data folder")
    q.add_argument("file", nargs="?", help="the station's record: CSV (plain or .gz, any encoding) or .xlsx")
    q.add_argument("--spec", default=None, help="YAML with these options (one station or a 'stations:' list)")
    q.add_argument("--id", dest="id", default=None, help="station id: ASCII letters, digits, '-', '_' (e.g. DE110000)")
    q.add_argument("--out", default=None, help="data folder to write into (created; other stations kept)")
    q.add_argument("--map", default=None,
                   help="KEY=COLUMN pairs: date=, precipitation= and discharge= (or stage= with --rating) required; "
                        "time=, temperature=, pet= optional; precipitation=P1+P2+P3 combines rain gauges")
    q.add_argument("--discharge_unit", default=None, help="m3/s, l/s or mm/d (mm/d needs --area_km2); "
                                                          "required with discharge=, m3/s with stage=")
    q.add_argument("--precipitation_unit", default=None,
                   help="mm, 0.1mm (tenths of a mm, as in 降水量(0.1mm): divided by 10) or mm/h (an intensity, "
                        "as in 雨强(mm/h), of a regular sub-daily record: times the readings' step in hours); default "
                        "mm, but a record averaging over 5000 mm a year is then refused until the unit is given")
    q.add_argument("--area_km2", type=float, default=None, help="catchment area in km2")
    q.add_argument("--lat", type=float, default=None, help="gauge latitude, degrees north")
    q.add_argument("--lon", type=float, default=None, help="gauge longitude, degrees east")
    q.add_argument("--attr", action="append", default=[], metavar="NAME=VALUE",
                   help="a static attribute, CAMELS-GB name (e.g. elev_mean=450); repeatable")
    q.add_argument("--sep", default=None, help="column separator (default ',')")
    q.add_argument("--decimal", default=None, help="decimal mark: '.' (default) or ','")
    q.add_argument("--thousands", default=None,
                   help="mark grouping thousands: ',' (1,234.5), '.' (1.234,5), ' ' or \"'\" (default: read where a "
                        "value shows it, e.g. 1,234.5; a lone 1,234 is refused as 1234 or 1.234 until this is given)")
    q.add_argument("--date_format", default=None, help="strftime form of the dates, e.g. %%d/%%m/%%Y "
                   "(default: recognised: YYYY-MM-DD, YYYY/MM/DD, YYYYMMDD, YYYY年M月D日, each with an optional HH:MM, "
                   "and Excel dates; day- or month-first only where "
                   "the values show the order)")
    q.add_argument("--na_value", action="append", default=[], help="a cell value that means missing (e.g. -999); repeat the flag for several codes: --na_value -99 --na_value 9999")
    q.add_argument("--encoding", default=None, help="text encoding, e.g. gbk, utf-8, utf-16, latin-1 (default: "
                                                    "detected and printed)")
    q.add_argument("--sheet", default=None, help="spreadsheet sheet: its name or its number from 1 (default: the first)")
    q.add_argument("--skiprows", type=int, default=None, help="title rows above the header (default: the header is "
                                                               "found as the first row with the mapped names)")
    q.add_argument("--day_start", default=None, help="HH:MM, start of the hydrological day in the station's standard "
                                                     "time (default 00:00; China 08:00, UK 09:00)")
    q.add_argument("--day_label", default=None, choices=["start", "end"],
                   help="a day is named by the date on which it starts (default) or ends")
    q.add_argument("--stamp", default=None, choices=["start", "end"],
                   help="a sub-daily timestamp marks the start (default) or the end of its interval (e.g. 时段雨量)")
    q.add_argument("--timezone", default=None, help="zone the timestamps are in: IANA name (Asia/Shanghai) or offset "
                                                    "(UTC+08:00); default: the station's standard time")
    q.add_argument("--station_timezone", default=None,
                   help="zone whose standard time the day boundary is in (default: --timezone)")
    q.add_argument("--max_missing", type=float, default=None,
                   help="share of a day that may lack sub-daily values before the day is missing (default 0.1)")
    q.add_argument("--max_reading_gap", default=None, metavar="HOURS",
                   help="excerpt records (摘录: a reading a day, several on flood days) only: the longest silence "
                        "between readings a day is drawn across, in hours from 24 to 720 (default 48); the days inside a "
                        "longer one are missing. Given for another record it changes nothing (a warning says so)")
    q.add_argument("--rating", default=None, help="rating curve for stage=: a=12.5,b=1.6,h0=0.15[,h_max=3.2] "
                                                  "(Q = a·(h − h0)^b), or a file of (h, Q) pairs or power-law segments")
    q.add_argument("--below_h0", default=None, choices=["missing", "zero"],
                   help="a water level below the rating curve's zero-flow stage (h0; a table's lowest row at Q = 0): "
                        "missing (default) or zero flow (an ephemeral stream's dry season); a record all below it is "
                        "refused either way")
    q.add_argument("--warning_levels", default=None, help="NAME=VALUE pairs, e.g. alert=45.0,danger=80.0 (警戒, 保证)")
    q.add_argument("--levels_in", default=None, choices=["flow", "stage"],
                   help="unit of --warning_levels: flow in m3/s (default) or stage (water level) in m")
    q.add_argument("--distribution", default=None, choices=["glo", "gev", "pe3"],
                   help="distribution of the station's return-period levels, stored for its forecasts: glo (UK "
                        "Flood Estimation Handbook, the default), gev, pe3 (China's SL 44)")
    q.add_argument("--water_year_start", default=None,
                   help="month the year of the annual maxima starts, stored for its forecasts: 10 (October, the "
                        "UK water year, the default), 1 (calendar years, as SL 44)")
    q.add_argument("--precipitation_weights", default=None,
                   help="Thiessen weights of the gauges in precipitation=P1+P2+..., e.g. 0.5,0.3,0.2 (sum 1; "
                        "default: their mean)")
    q.add_argument("--overwrite", action="store_true", help="replace a station of the same id")
    q.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    q.add_argument("--quiet", action="store_true", help="print only warnings and errors")
    return p


def _from_flags(args) -> list[dict]:
    if args.file is None:
        raise UsageError("give the station's FILE, or --spec station.yaml")
    return [{"file": args.file, "id": args.id, "out": args.out, "map": args.map,
             "discharge_unit": args.discharge_unit, "area_km2": args.area_km2, "lat": args.lat, "lon": args.lon,
             "attr": args.attr, "sep": args.sep, "decimal": args.decimal, "thousands": args.thousands,
             "date_format": args.date_format,
             "na_value": args.na_value, "overwrite": args.overwrite, "encoding": args.encoding, "sheet": args.sheet,
             "skiprows": args.skiprows, "day_start": args.day_start, "day_label": args.day_label,
             "stamp": args.stamp, "timezone": args.timezone, "station_timezone": args.station_timezone,
             "max_missing": args.max_missing, "rating": args.rating, "warning_levels": args.warning_levels,
             "levels_in": args.levels_in, "precipitation_weights": args.precipitation_weights,
             "distribution": args.distribution, "water_year_start": args.water_year_start,
             "precipitation_unit": args.precipitation_unit, "max_reading_gap": args.max_reading_gap,
             "below_h0": args.below_h0}]


def _from_spec(path, args) -> list[dict]:
    import re

    import yaml

    from ..data.tables import read_text

    # every station's options come from the YAML: a flag given beside it would be dropped without a word
    given = [k for k in sorted(_SPEC_KEYS - {"out", "overwrite"}) if getattr(args, k, None) not in (None, [])]
    if given:
        flags = ", ".join("FILE" if k == "file" else f"--{k}" for k in given)
        raise UsageError(f"{flags} {'is' if len(given) == 1 else 'are'} given with --spec, which reads each station's "
                         f"options from the YAML only: write {', '.join(k + ':' for k in given)} in the station's entry")
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"--spec {p}: no such file")
    try:
        doc = yaml.load(read_text(p, None, "station spec").text, Loader=_spec_loader())   # UTF-8 or GBK
    except _KeyGivenTwice as e:
        raise UsageError(f"--spec {p}, line {e.line}: {e.key!r} is given twice in one entry (first on line "
                         f"{e.first}); write it once") from None
    except yaml.YAMLError as e:
        # `decimal: ,` written as the flag is typed: a lone ',' (or a lone quote) is YAML's syntax, not a value
        line = getattr(getattr(e, "problem_mark", None), "line", None)
        text = read_text(p, None, "station spec").text.splitlines()
        key = re.match(r"\s*-?\s*(\w+):\s*([,'])\s*$", text[line]) if line is not None and line < len(text) else None
        hint = (f"; quote the {key[1]} mark: {key[1]}: \"{key[2]}\"" if key else "")
        raise UsageError(f"--spec {p} is not valid YAML: {' '.join(str(e).split())[:200]}{hint}") from None
    items = doc.get("stations") if isinstance(doc, dict) and "stations" in doc else doc
    beside = sorted(str(k) for k in doc if k != "stations") if items is not doc else []
    if beside:  # written once for all stations, they would be dropped without a word
        raise UsageError(f"--spec {p}: key(s) {beside} beside 'stations:' are not read; write them in each station's "
                         "entry")
    items = [items] if isinstance(items, dict) else items
    if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
        raise UsageError(f"--spec {p}: expected a mapping of options or 'stations:' with a list of them")
    out = []
    for i, item in enumerate(items):
        unknown = sorted(set(item) - _SPEC_KEYS)
        if unknown:
            raise UsageError(f"--spec {p}, station {i + 1}: unknown key(s) {unknown}; allowed: {sorted(_SPEC_KEYS)}")
        d = dict(item)
        # Paths in the spec are the spec's own: a station file, a rating table and a data folder written beside it
        # are found there from any working directory (a rating table of the same name in the working directory
        # would otherwise be read, and a relative out: written under whichever folder the command ran in).
        for key in ("file", "out"):
            if d.get(key) not in (None, ""):
                d[key] = _beside(p, d[key])
        rating = d.get("rating")
        if isinstance(rating, str) and rating.strip() and ("=" not in rating or (p.parent / rating).is_file()):
            d["rating"] = _beside(p, rating)   # a=..,b=..,h0=.. is a curve, not a file
        # YAML 1.1 reads an unquoted 8:00 as the base-60 number 480: it was a time of day
        if isinstance(d.get("day_start"), int) and not isinstance(d["day_start"], bool) and 60 <= d["day_start"] < 1440:
            d["day_start"] = f"{d['day_start'] // 60:02d}:{d['day_start'] % 60:02d}"
        d.setdefault("out", args.out)
        d["overwrite"] = bool(d.get("overwrite", False) or args.overwrite)
        out.append(d)
    return out


def _beside(spec: Path, value) -> str:
    """``value``, a path written in the ``spec`` file, as a path from the working directory: a relative one is taken
    from the spec's folder (``~`` expanded; an absolute one kept)."""
    path = Path(str(value).strip()).expanduser()
    return str(path if path.is_absolute() else spec.parent / path)


class _KeyGivenTwice(Exception):
    """A key written twice in one mapping of a station spec, on 1-based ``line`` (first on ``first``)."""

    def __init__(self, key: str, line: int, first: int):
        super().__init__(key)
        self.key, self.line, self.first = key, line, first


def _spec_loader():
    """A safe YAML loader that keeps an integer as written where its number would read otherwise: YAML 1.1
    reads ``id: 01010500`` (a station code) as the octal number 266560 and ``1_000`` as 1000, which would
    import the station under another id without a word."""
    import re

    import yaml

    class SpecLoader(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):
            # YAML keeps the last of a key written twice (two `alert:` levels, two `lat:`) without a word
            first = {}
            for key, _ in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value != "<<":
                    if key.value in first:
                        raise _KeyGivenTwice(key.value, key.start_mark.line + 1, first[key.value])
                    first[key.value] = key.start_mark.line + 1
            return super().construct_mapping(node, deep=deep)

    def integer(loader, node):
        text = loader.construct_scalar(node)
        value = loader.construct_yaml_int(node)
        # base-60 times (day_start: 8:00 -> 480) are turned back into HH:MM by _from_spec
        return value if ":" in text or re.fullmatch(r"[-+]?[1-9][0-9]*|[-+]?0", text) else text

    SpecLoader.add_constructor("tag:yaml.org,2002:int", integer)
    return SpecLoader


def _options(d: dict):
    from ..data.station import ImportOptions

    for key in ("file", "id", "out", "map"):
        if d.get(key) in (None, "", []):
            flag = key.upper() if key == "file" else f"--{key}"
            raise UsageError(f"{flag} is required")
    na = d.get("na_value") or []
    na = [na] if isinstance(na, (str, int, float)) else na
    skip = d.get("skiprows")
    if isinstance(skip, str) and skip.strip().isdigit():  # a spec's skiprows: 02, kept as written
        skip = int(skip)
    if skip is not None and (not isinstance(skip, int) or skip < 0):
        raise UsageError(f"--skiprows {skip!r} must be a whole number >= 0")
    opt = {k: d.get(k) for k in ("day_start", "day_label", "stamp", "levels_in", "max_missing", "distribution",
                                 "water_year_start", "below_h0") if d.get(k) is not None}
    return ImportOptions(str(d["id"]), d["map"], None if d.get("discharge_unit") in (None, "") else str(d["discharge_unit"]),
                         _num(d, "area_km2"), _num(d, "lat"), _num(d, "lon"), d.get("attr") or {},
                         sep=str(d.get("sep") or ","), decimal=str(d.get("decimal") or "."),
                         thousands=None if d.get("thousands") is None else str(d["thousands"]),
                         date_format=d.get("date_format"), na_values=tuple(str(v) for v in na),
                         overwrite=bool(d.get("overwrite")), encoding=d.get("encoding"), sheet=d.get("sheet"),
                         skiprows=skip, timezone=d.get("timezone"), station_timezone=d.get("station_timezone"),
                         rating=d.get("rating"), warning_levels=d.get("warning_levels"),
                         precipitation_weights=d.get("precipitation_weights"),
                         precipitation_unit=d.get("precipitation_unit"), max_reading_gap=d.get("max_reading_gap"),
                         **opt)


def _num(d: dict, key: str):
    v = d.get(key)
    if v is None:
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        raise UsageError(f"--{key} {v!r} is not a number") from None


def _body(args) -> int:
    import shlex  # the commands printed are pasted into a shell: a folder with a space must stay one word

    from ..data.station import import_files

    items = _from_spec(args.spec, args) if args.spec else _from_flags(args)
    prepared = import_files([(d["file"], Path(d["out"]).expanduser(), _options(d)) for d in items])
    for _, st in prepared:
        for w in st.warnings:
            log.warning("warning: %s", w)
    if args.quiet:
        return 0
    for out, st in prepared:
        print(f"Station {st.station_id} -> {out / 'timeseries' / (st.station_id + '.csv')} "
              f"(metadata: {out / 'meta' / (st.station_id + '.json')})")
        for line in st.summary:
            print(f"  {line}")
    for out in dict.fromkeys(p[0] for p in prepared):
        ids = [st.station_id for o, st in prepared if o == out]
        print("\nNext: fine-tune a pretrained model on it, then forecast its test part:")
        for sid in ids:
            print(f"  python fine_train.py --data_dir {shlex.quote(str(out))} --target_basin {sid} "
                  f"--pretrained_model ./model_output/sca2lstm.pth")
            print(f"  python predict.py --data_dir {shlex.quote(str(out))} --basin {sid} "
                  f"--model ./model_output/fine_tune/basin_{sid}/*/best_model_basin_{sid}.pth")
    return 0


def main(argv=None, prog: str = PROG) -> int:
    return run_main(prog, _body, build_parser(prog), argv)
