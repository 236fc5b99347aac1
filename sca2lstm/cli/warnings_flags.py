"""The flood-warning flags of ``sca2lstm forecast``: levels, warning probabilities and reforecasts.

``--warning_levels alert=45.0,danger=80.0`` (m3/s, or water levels in m with ``--levels_in stage``),
``--warn_probability danger=0.3``, ``--distribution glo|gev|pe3`` for the return-period levels, and
``--from DATE --to DATE`` for a reforecast (every day of the span an issue date).
"""

from __future__ import annotations

from ..words import Said, phrase, say


def add_warning_flags(p) -> None:
    from ..evaluation.levels import DEFAULT_DISTRIBUTION, DISTRIBUTIONS

    p.add_argument("--warning_levels", default=None,
                   help="named warning levels, e.g. alert=45.0,danger=80.0 (m3/s; water levels in m with "
                        "--levels_in stage); added to the station file's levels and the fitted 2/5/10/20-year "
                        "flows q2y..q20y")
    p.add_argument("--levels_in", choices=["flow", "stage"], default="flow",
                   help="unit of --warning_levels: flow (m3/s, default) or stage (m, through the rating curve)")
    p.add_argument("--warn_probability", default=None,
                   help="warn when P(flow > level) reaches this, per level, e.g. danger=0.3 (default: chosen on "
                        "validation to maximise F1, stored beside the model)")
    p.add_argument("--distribution", choices=list(DISTRIBUTIONS), default=None,
                   help="distribution of the return-period levels: glo (UK Flood Estimation Handbook), gev, pe3 "
                        f"(China's SL 44) (default: the station's, set at import, else {DEFAULT_DISTRIBUTION})")
    p.add_argument("--from", dest="from_date", default=None,
                   help="reforecast: first issue date (YYYY-MM-DD); with --to, every day of the span is issued and "
                        "reforecast.csv and levels.json are written")
    p.add_argument("--to", dest="to_date", default=None, help="reforecast: last issue date (YYYY-MM-DD)")


def threshold_text(lv, language: str = "en") -> str:
    """The warning probability a level is warned at: one figure, or one per lead where the calibration chose
    one per lead (what the warnings apply)."""
    by_lead = lv.extra.get("warn_probability_by_lead")
    if by_lead:
        return say("threshold_by_lead", language, values="/".join(map(_probability, by_lead)), n=len(by_lead))
    return _probability(lv.warn_probability)


def _probability(v: float) -> str:
    """Two decimals, or as many as it takes (up to 4) to show the threshold that is applied (0.333)."""
    return f"{v:.2f}" if round(v, 2) == v else f"{v:.4g}"


def level_line(name: str, lv, language: str = "en", stage: float | None = None) -> str:
    """``   alert:    62.009 m3/s daily mean (water level 2.5 m)``: a level as both commands print it.

    "daily mean" because the level is warned on against daily-mean forecasts, and a fitted level (q2y ..) is a
    quantile of annual maxima of daily means: lower than the instantaneous peak flow of the same return period an
    agency publishes, which a bare "m3/s" invites comparing it with. A fitted level carries its 90 % interval,
    ``(90 % CI 51.2-74.0)``, the sampling uncertainty of a fit on a few decades of maxima. ``stage``: the level's
    water level through the station's rating curve (:func:`~sca2lstm.evaluation.reforecast.level_stages`), where it
    was not given as one.
    """
    if getattr(lv, "stage", None) is not None:
        stage = lv.stage
    ci = getattr(lv, "ci", None)
    return say("level_line", language, name=name, value=lv.value,
               ci=say("level_ci", language, lo=ci[0], hi=ci[1]) if ci is not None else "",
               stage=say("level_stage", language, stage=stage) if stage is not None else "")


def rare_levels_note(levels: dict, language: str = "en") -> list:
    """A line saying why the 10- and 20-year levels are missing, where they are (too few annual maxima)."""
    import re

    from ..evaluation.levels import MIN_MAXIMA_FIT, MIN_MAXIMA_FOR_RARE

    if "q10y" in levels:
        return []
    if "q2y" in levels:
        m = re.search(r"\((\d+) annual maxima\)", levels["q2y"].source or "")
        held = say("rare_levels_held", language, n=m.group(1)) if m else say("rare_levels_few", language)
        return [say("rare_levels", language, held=held, needed=MIN_MAXIMA_FOR_RARE)]
    return [say("no_return_levels", language, n=MIN_MAXIMA_FIT)]


def _level_args(args):
    from ..evaluation.levels import parse_levels, parse_probabilities

    user = parse_levels(args.warning_levels) if args.warning_levels else None
    override = parse_probabilities(args.warn_probability) if args.warn_probability else None
    return {"user_levels": user, "levels_in": args.levels_in, "warn_override": override, "dist": args.distribution}


def warned(args, bundle, path, weather):
    """The warned forecast of one issue date: (forecast, write_forecast's extra arguments, lines to print)."""
    from ..evaluation.reforecast import level_stages, warned_forecast, warning_sentence

    fc, warnings, first = warned_forecast(
        bundle, args.basin, data_dir=args.data_dir, issue_date=args.issue_date,
        leads=args.leads or max(1, min(7, bundle[1].training.forecast_leads)), weather_forecast=weather,
        allow_missing_inputs=args.allow_missing_inputs, model_path=path, precip_mapping=args.precip_mapping,
        weather_lags=getattr(args, "weather_lags", "auto"),
        **_level_args(args))
    seen = fc.history.dropna(subset=["observed"])
    last = (seen["date"].iloc[-1], float(seen["observed"].iloc[-1])) if len(seen) else None
    language = getattr(args, "language", "en")
    # each level as a water level too at a station with a rating curve, as the service's page and mails give it
    stages = level_stages(warnings.levels, fc.rating_curve, fc.issue_date, digits=2)
    sentence = warning_sentence(fc.basin, first, warnings, fc.table, last, language, stages)
    # the fan chart's labels give each level's water level too, as the page does (a level given as one, as typed)
    extra = {"levels": {n: lv.value for n, lv in warnings.levels.items()}, "level_stages": stages,
             "extra_files": {"levels.json": warnings.json_text(first), "warnings.txt": sentence + "\n"}}
    # each lead's P(exceed) to the 4 decimals the warning is decided on; * where the lead warns
    lines = [level_line(n, lv, language, stages.get(n))
             + say("level_warns", language, threshold=threshold_text(lv, language),
                   source=phrase(warnings.warn_source.get(n), language),
                   probs=" ".join(f"{p:.4g}{'*' if w else ''}" for p, w in
                                  zip(fc.table[f"p_exceed_{n}"], fc.table[f"warn_{n}"])))
             for n, lv in warnings.levels.items()]
    lines += rare_levels_note(warnings.levels, language)
    calibrated = say("calibrated", language, blend=phrase(fc.calibration["blend"], language),
                     spread=phrase(fc.calibration["spread"], language))
    return fc, extra, [*lines, calibrated, sentence]


def run_reforecast(args, bundle, path, out_dir, weather) -> int:
    """``--from/--to``: reforecast.csv and levels.json in ``out_dir/basin_<id>_reforecast_<from>_<to>/``."""
    import shlex

    import pandas as pd

    from ..errors import UsageError
    from ..evaluation.operational import WEATHER_FOLDER_SUFFIX
    from ..evaluation.rain_mapping import lagged_line, mapping_line
    from ..evaluation.reforecast import left_out_text, reforecast, write_reforecast
    from ..weather.files import pet_input, pet_ways_text
    from ..weather.mapping import archive_rain_text

    if not (args.from_date and args.to_date):
        raise UsageError("--from and --to go together: the first and the last issue date of the reforecast")
    if args.issue_date:
        raise UsageError("--issue_date with --from/--to: a reforecast issues every day of the span; give one or "
                         "the other")
    if getattr(args, "format", "csv") != "csv":  # not silently a CSV where JSON was asked for
        raise UsageError(f"--format {args.format} with --from/--to: a reforecast writes reforecast.csv (and "
                         "levels.json); leave --format out")
    from ..weather.files import WeatherForecast

    if weather is not None and not isinstance(weather, WeatherForecast):
        if "date" not in weather.columns:  # neither layout: say what it holds rather than guess which was meant
            from ..errors import DataError

            raise DataError(f"--weather_forecast {args.weather_forecast}: columns {[str(c) for c in weather.columns]} "
                            "are not an archive's (issue_date, lead_days, valid_date[, member], <inputs>)")
        raise UsageError(f"--weather_forecast {args.weather_forecast} with --from/--to: a reforecast reads an archive "
                         "of past forecasts (issue_date, lead_days, valid_date[, member], <inputs>), not a table of "
                         "one forecast's days")
    table, warnings = reforecast(bundle, args.basin, args.from_date, args.to_date, leads=args.leads,
                                 data_dir=args.data_dir, model_path=path, weather_archive=weather,
                                 allow_missing_inputs=args.allow_missing_inputs, precip_mapping=args.precip_mapping,
                                 weather_lags=getattr(args, "weather_lags", "auto"),
                                 progress=not args.quiet, **_level_args(args))
    first, last = table["issue_date"].min().date(), table["issue_date"].max().date()
    folder = out_dir / (f"basin_{args.basin}_reforecast_{first}_{last}" + (WEATHER_FOLDER_SUFFIX if weather is not None
                                                                          else ""))
    write_reforecast(table, warnings, folder)
    n_issue = table["issue_date"].nunique()
    language = getattr(args, "language", "en")
    print(say("reforecast_heading", language, basin=args.basin, n=n_issue, first=first, last=last,
              leads=table["lead_days"].max(), model=path))
    record = (table.attrs.get("weather") or {}).get("precip_mapping")
    # the file as the user named it, as a single forecast prints it (the archive's source names the flag too)
    for line in (lagged_line((table.attrs.get("weather") or {}).get("lagged"), args.weather_forecast),
                 mapping_line(record, args.weather_forecast)):
        if line:
            print(say("in_weather_json", language, line=phrase(line, language)))
    pet = pet_ways_text((table.attrs.get("weather") or {}).get("pet"), pet_input(bundle[1]), language,
                        (table.attrs.get("weather") or {}).get("pet_column"))
    if pet:
        print(say("in_weather_json", language,
                  line=say("of_archive", language, source=phrase(weather.source, language), line=pet)))
    rain = archive_rain_text(table.attrs.get("weather", {}).get("archive_rain"), args.precip_mapping,
                             (record or {}).get("not_mapped_because"), language)
    if rain:
        print(say("of_archive", language, source=phrase(weather.source, language), line=rain))
    asked = pd.date_range(args.from_date, args.to_date, freq="D")
    left = asked.difference(pd.DatetimeIndex(table["issue_date"].unique()))
    if len(left):
        why = table.attrs.get("left_out", {})
        print(say("left_out", language, n=len(left), asked=len(asked),
                  spans=left_out_text({d: why.get(d, Said("not_issued")) for d in left}, language=language)))
    for n, lv in warnings.levels.items():
        print(level_line(n, lv, language) + say("reforecast_level", language, source=phrase(lv.source, language),
                                                threshold=threshold_text(lv, language),
                                                n=int(table[f"warn_{n}"].sum())))
        if f"level_{n}" in table.columns and table[f"level_{n}"].nunique() > 1:  # the curve changed in the span
            flows = table[f"level_{n}"]
            print(say("level_by_curve", language, name=n, stage=f"{lv.stage:g}", low=f"{flows.min():.3f}",
                      high=f"{flows.max():.3f}"))
    for line in rare_levels_note(warnings.levels, language):
        print(line)
    table = folder / "reforecast.csv"
    print(say("reforecast_output", language, table=table, command=shlex.quote(str(table))))
    return 0

