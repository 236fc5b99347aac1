"""``sca2lstm station import``: bring a gauge's own daily CSV into a data folder the commands read.

Example::

    sca2lstm station import pegel.csv --id my-gauge --out ./my_stations --sep ';' --decimal , \\
        --map date=Datum,precipitation=Niederschlag,discharge=Abfluss --discharge_unit m3/s \\
        --area_km2 120 --lat 48.1 --lon 9.3

``--spec stations.yaml`` gives the same options in YAML: one mapping, or ``stations:`` with a list of
them (keys as the flags without ``--``; ``file`` relative to the YAML's folder; ``map`` and ``attr``
as mappings). Every station is checked before anything is written.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..errors import UsageError
from .common import ArgumentParser, run_main

log = logging.getLogger(__name__)

PROG = "sca2lstm station"
_SPEC_KEYS = {"file", "id", "out", "map", "discharge_unit", "area_km2", "lat", "lon", "attr", "sep", "decimal",
              "date_format", "na_value", "overwrite"}


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog=PROG, description="Station tools: 'import' writes a station's CSV into a data folder.")
    sub = p.add_subparsers(dest="action", required=True, metavar="{import}", parser_class=ArgumentParser)
    q = sub.add_parser("import", help="import a station's daily CSV into a data folder")
    q.add_argument("file", nargs="?", help="the station's daily CSV (plain or .gz)")
    q.add_argument("--spec", default=None, help="YAML with these options (one station or a 'stations:' list)")
    q.add_argument("--id", dest="id", default=None, help="station id: letters, digits, '-', '_' (e.g. DE110000)")
    q.add_argument("--out", default=None, help="data folder to write into (created; other stations kept)")
    q.add_argument("--map", default=None,
                   help="KEY=COLUMN pairs: date=,precipitation=,discharge= required; temperature=, pet= optional")
    q.add_argument("--discharge_unit", default=None, help="m3/s, l/s or mm/d (mm/d needs --area_km2)")
    q.add_argument("--area_km2", type=float, default=None, help="catchment area in km2")
    q.add_argument("--lat", type=float, default=None, help="gauge latitude, degrees north")
    q.add_argument("--lon", type=float, default=None, help="gauge longitude, degrees east")
    q.add_argument("--attr", action="append", default=[], metavar="NAME=VALUE",
                   help="a static attribute, CAMELS-GB name (e.g. elev_mean=450); repeatable")
    q.add_argument("--sep", default=None, help="column separator (default ',')")
    q.add_argument("--decimal", default=None, help="decimal mark: '.' (default) or ','")
    q.add_argument("--date_format", default=None, help="strftime form of the dates, e.g. %%d/%%m/%%Y "
                   "(default: YYYY-MM-DD, YYYY/MM/DD or DD.MM.YYYY, recognised)")
    q.add_argument("--na_value", action="append", default=[], help="a cell value that means missing (e.g. -999)")
    q.add_argument("--overwrite", action="store_true", help="replace a station of the same id")
    q.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    q.add_argument("--quiet", action="store_true", help="print only warnings and errors")
    return p


def _from_flags(args) -> list[dict]:
    if args.file is None:
        raise UsageError("give the station's FILE, or --spec station.yaml")
    return [{"file": args.file, "id": args.id, "out": args.out, "map": args.map,
             "discharge_unit": args.discharge_unit, "area_km2": args.area_km2, "lat": args.lat, "lon": args.lon,
             "attr": args.attr, "sep": args.sep, "decimal": args.decimal, "date_format": args.date_format,
             "na_value": args.na_value, "overwrite": args.overwrite}]


def _from_spec(path, args) -> list[dict]:
    import yaml

    p = Path(path)
    try:
        doc = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as e:
        raise UsageError(f"--spec {p}: cannot read it ({e.strerror})") from None
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise UsageError(f"--spec {p} is not valid YAML: {' '.join(str(e).split())[:200]}") from None
    items = doc.get("stations") if isinstance(doc, dict) and "stations" in doc else doc
    items = [items] if isinstance(items, dict) else items
    if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
        raise UsageError(f"--spec {p}: expected a mapping of options or 'stations:' with a list of them")
    out = []
    for i, item in enumerate(items):
        unknown = sorted(set(item) - _SPEC_KEYS)
        if unknown:
            raise UsageError(f"--spec {p}, station {i + 1}: unknown key(s) {unknown}; allowed: {sorted(_SPEC_KEYS)}")
        d = dict(item)
        if d.get("file") is not None and not Path(str(d["file"])).expanduser().is_absolute():
            d["file"] = str(p.parent / str(d["file"]))
        d.setdefault("out", args.out)
        d["overwrite"] = bool(d.get("overwrite", False) or args.overwrite)
        out.append(d)
    return out


def _options(d: dict):
    from ..data.station import ImportOptions

    for key in ("file", "id", "out", "map", "discharge_unit"):
        if d.get(key) in (None, "", []):
            flag = key.upper() if key == "file" else f"--{key}"
            raise UsageError(f"{flag} is required" + (" (--discharge_unit: m3/s, l/s or mm/d)"
                                                      if key == "discharge_unit" else ""))
    na = d.get("na_value") or []
    na = [na] if isinstance(na, (str, int, float)) else na
    return ImportOptions(str(d["id"]), d["map"], str(d["discharge_unit"]), _num(d, "area_km2"), _num(d, "lat"),
                         _num(d, "lon"), d.get("attr") or {}, sep=str(d.get("sep") or ","),
                         decimal=str(d.get("decimal") or "."), date_format=d.get("date_format"),
                         na_values=tuple(str(v) for v in na), overwrite=bool(d.get("overwrite")))


def _num(d: dict, key: str):
    v = d.get(key)
    if v is None:
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        raise UsageError(f"--{key} {v!r} is not a number") from None


def _body(args) -> int:
    from ..data.station import import_files

    items = _from_spec(args.spec, args) if args.spec else _from_flags(args)
    prepared = import_files([(d["file"], Path(d["out"]).expanduser(), _options(d)) for d in items])
    for _, st in prepared:
        for w in st.warnings:
            log.warning("warning: %s", w)
    if args.quiet:
        return 0
    for out, st in prepared:
        print(f"Station {st.station_id} -> {out / 'timeseries' / (st.station_id + '.csv')}")
        for line in st.summary:
            print(f"  {line}")
    for out in dict.fromkeys(p[0] for p in prepared):
        ids = [st.station_id for o, st in prepared if o == out]
        print("\nNext: fine-tune a pretrained model on it, then forecast its test part:")
        for sid in ids:
            print(f"  python fine_train.py --data_dir {out} --target_basin {sid} "
                  f"--pretrained_model ./model_output/sca2lstm.pth")
            print(f"  python predict.py --data_dir {out} --basin {sid} "
                  f"--model ./model_output/fine_tune/basin_{sid}/*/best_model_basin_{sid}.pth")
    return 0


def main(argv=None) -> int:
    return run_main(PROG, _body, build_parser(), argv)
