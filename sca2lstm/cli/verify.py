"""``sca2lstm verify reforecast.csv``: how good were the forecasts of a station's past years, per lead.

Example: ``sca2lstm verify ./model_output/forecasts/basin_32006_reforecast_2010-10-01_2015-09-30/reforecast.csv``
(``levels.json`` is read from beside the table). Prints and writes ``verify_per_lead.csv`` (NSE, CRPS,
coverage, reliability, beside persistence), ``verify_per_level.csv`` (POD, FAR, CSI, F1 by day and by
event, Brier skill) and ``verify.png`` (NSE and F1 by lead beside persistence, the quantiles' reliability)
into the table's folder, the NSE and the F1 by day with 90 % intervals from resampled
years (few floods make them wide). Definitions: :mod:`sca2lstm.evaluation.verify`.
"""

from __future__ import annotations

from .common import ArgumentParser, output_folder, run_main

PROG = "sca2lstm verify"


#: command lines that --help ends with (tests parse each)
EXAMPLES = [
        'sca2lstm verify ./model_output/forecasts/basin_32006_reforecast_2010-10-01_2015-09-30/reforecast.csv',
]


def build_parser(prog: str = PROG) -> ArgumentParser:
    p = ArgumentParser(prog=prog, examples=EXAMPLES, description="Score a reforecast table (sca2lstm forecast --from --to, or what a service "
                                              "issued: GET /stations/<id>/issued.csv) per lead, "
                                              "beside persistence: NSE, CRPS, coverage, reliability, and per "
                                              "warning level POD, FAR, CSI, F1 by day and by event, Brier skill.")
    p.add_argument("table", help="reforecast.csv")
    p.add_argument("--levels", default=None, help="levels.json (default: the one beside the table)")
    p.add_argument("--output_dir", default=None, help="where the scores go (default: the table's folder)")
    p.add_argument("--encoding", default=None, help="the table's text encoding (default: detected; e.g. gbk, utf-8)")
    p.add_argument("--date_format", default=None,
                   help="strftime form of issue_date and valid_date, e.g. %%d/%%m/%%Y, where a table saved again from a "
                        "spreadsheet does not show day against month (default: YYYY-MM-DD, or an order the dates show)")
    p.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    p.add_argument("--quiet", action="store_true", help="less output")
    return p


def _body(args) -> int:
    from pathlib import Path

    import pandas as pd

    from ..errors import DataError
    from ..evaluation.plots import plot_verification
    from ..evaluation.settings import SETTING_WORDS
    from ..evaluation.verify import (level_names, level_value_lines, no_event_lines, read_reforecast,
                                     read_station_levels, table_basins, unobserved_leads, verify, verified_levels)
    from ..fileio import atomic_write_text

    if args.output_dir:
        args.output_dir = str(output_folder(args.output_dir, "--output_dir"))  # '~' expanded
    table = Path(args.table)
    df = read_reforecast(table, encoding=args.encoding, date_format=args.date_format)
    lp = Path(args.levels) if args.levels else table.parent / "levels.json"
    levels, named = {}, None
    basin = next(iter(table_basins(df)), None)   # None: a table written before tables named their station
    if lp.is_file():
        levels, named = read_station_levels(lp, basin)
    elif args.levels:
        raise DataError(f"--levels {lp}: no such file")
    setting = ", ".join(sorted(df["setting"].dropna().astype(str).unique())) if "setting" in df.columns else ""
    per_lead, per_level = verify(df, levels)
    if setting:  # what the scored forecasts saw goes with the scores
        per_lead.insert(1, "setting", setting)
        if len(per_level):
            per_level.insert(0, "setting", setting)
    out = Path(args.output_dir) if args.output_dir else table.parent
    atomic_write_text(out / "verify_per_lead.csv", per_lead.to_csv(index=False, float_format="%.4f"))
    atomic_write_text(out / "verify_per_level.csv", per_level.to_csv(index=False, float_format="%.4f"))
    plot_verification(per_lead, per_level, out / "verify.png",   # the folder names the station and the span
                      title=f"{table.parent.name}: {df['issue_date'].nunique()} issue dates"
                            + (f", forecasts {setting}" if setting else ""), levels=levels)
    pd.set_option("display.width", 200)
    pd.set_option("display.max_columns", 40)
    print(f"\n{table}: " + (f"basin {basin}, " if basin is not None else "") + f"{df['issue_date'].nunique()} issue dates, leads 1..{int(df['lead_days'].max())}"
          + (f"; forecasts {setting} ({SETTING_WORDS.get(setting, 'as the table says')})" if setting else "")
          + "; persistence = the last observed flow up to the issue date, same days")
    if levels and (basin is None) != (named is None):  # one names its station: the other cannot be checked against it
        print(f"{lp} names no station (written before levels named theirs): its levels are taken as basin {basin}'s, "
              "unchecked" if named is None else
              f"{table} names no station (written before tables named theirs): the levels of basin {named} are taken "
              "as its, unchecked")
    seen = per_lead["in_sample_share"].max() if "in_sample_share" in per_lead.columns else 0.0
    if seen > 0:
        share = f"up to {seen:.0%} of the scored days per lead are" if seen >= 0.01 else "a few scored days are"
        print(f"WARNING: {share} days the model (or its blend, spread or levels) learned from (column in_sample): "
              "scores on them are in-sample, not a test")
    shown = per_lead.drop(columns=[c for c in ("pit_deciles", "setting") if c in per_lead.columns])
    print(shown.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    blind = unobserved_leads(df)
    if blind:  # a row of NaN says nothing of why
        print(f"lead(s) {', '.join(map(str, blind))}: no row has an observed flow (valid days not observed yet, or a "
              "gap in the record), so every score there is NaN")
    if len(per_level):
        cols = ["level", "lead", "forecast", "count", "pod", "far", "csi", "f1", "f1_lo90", "f1_hi90", "brier_skill"]
        print(per_level[cols].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        print("count 'event': a warning within +-1 day of an event detects it, so a warning a day late is a hit "
              "(persistence is); 'day' is the stricter score")
        for line in no_event_lines(per_level, levels, blind):
            print(line)
        # what was issued over months: a level set, moved or removed meanwhile (the service's issued.csv)
        for line in level_value_lines(df, levels):
            print(line)
    elif not verified_levels(df, levels):
        print("no warning scores: " + (f"{lp} holds no levels" if lp.is_file() else "no levels.json beside the table"))
    # a level the table warns on whose flow the levels file lacks cannot be scored: say so rather than drop it
    unscored = [n for n in level_names(df) if n not in verified_levels(df, levels)] if levels else []
    if unscored:
        print(f"not scored: the warnings of {', '.join(unscored)} (the table has warn_ columns for them, but {lp} gives "
              "no value to tell the days above them; give a levels file that has them with --levels)")
    print(f"Saved {out / 'verify_per_lead.csv'}, {out / 'verify_per_level.csv'} and {out / 'verify.png'}")
    return 0


def main(argv=None, prog: str = PROG) -> int:
    return run_main(prog, _body, build_parser(prog), argv)
