"""The words of ``sca2lstm forecast``'s outputs in each language of ``--language``: one place for them.

What a forecast says to a person - the warning sentence (``warnings.txt``), the per-level lines it prints, the fan
chart's title, axis labels and legend, and the report's forecast section - is said from :data:`WORDS`; the notes a
forecast carries are said from :data:`sca2lstm.notes.NOTES` (and the service's messages from
:data:`sca2lstm.serve.messages.MESSAGES`, whose wording the Chinese here follows: 超过概率, 预见期第 N 天, 水位). The
values are the same in every language: numbers, dates, level names (``alert``, ``q2y``) and units (m3/s, m) as
the English outputs give them, so that a Chinese ``warnings.txt`` holds the English one's figures. What machines
read - ``forecast.csv``/``forecast.json`` keys and columns, ``levels.json`` - stays in English whatever the language.
"""

from __future__ import annotations

import re
import unicodedata

from .notes import LIST_SEPARATOR, Note

#: The languages of ``sca2lstm forecast --language`` (the first is the default).
LANGUAGES = ("en", "zh")

#: kind -> language -> template (:meth:`str.format`); English is what the outputs said before they had a language.
WORDS = {
    # --- the warning sentence (evaluation/reforecast.warning_sentence): warnings.txt and its printed line
    "warning_for": {"en": "Basin {basin}: warning for {parts}.{now}",
                    "zh": "测站 {basin}：预警 {parts}。{now}"},
    "warning_part": {"en": "{name} ({value:.1f} m3/s{stage}) from lead {lead} ({day}, P up to {p:.0%})",
                     "zh": "{name}（{value:.1f} m3/s{stage}）自预见期第 {lead} 天（{day}）起，超过概率最高 {p:.0%}"},
    "warning_parts_separator": {"en": "; ", "zh": "；"},
    "warning_stage": {"en": ", water level {stage:g} m", "zh": "，水位 {stage:g} m"},
    "no_warning": {"en": "Basin {basin}: no warning level is forecast to be crossed in the next {days} days{levels}."
                         "{now}",
                   "zh": "测站 {basin}：预报未来 {days} 天不超过任何预警级{levels}。{now}"},
    "levels_named": {"en": " (levels: {names})", "zh": "（预警级：{names}）"},
    "no_levels": {"en": " (no levels)", "zh": "（未设预警级）"},
    "already_above": {"en": " Observed on {day}: {flow:.1f} m3/s, above {names}.",
                      "zh": "{day} 实测流量 {flow:.1f} m3/s，已超过 {names}。"},
    # --- what sca2lstm forecast prints around them (cli/forecast.py)
    "forecast_heading": {"en": "\nBasin {basin}: forecast issued {day} ({setting}{members}; model {model}; {ms:.0f} ms)",
                         "zh": "\n测站 {basin}：{day} 发布的预报（{setting}{members}；模型 {model}；{ms:.0f} ms）"},
    "collapsed": {"en": "Note: at lead(s) {leads} the whole interval lay below the basin's fastest observed recession "
                        "and was raised to it; the interval is not a certainty: the model and this basin's data "
                        "disagree there (data in another unit? a model trained on other basins?)",
                  "zh": "注意：预见期第 {leads} 天的整个预报区间都低于该流域实测最快的退水过程，已抬高到该退水线；"
                        "区间宽度为零并不表示确定：模型与该流域的数据在此不一致（数据单位不同？模型是用其他流域训练的？）"},
    "output": {"en": "Output: {folder}", "zh": "输出：{folder}"},
    # how an ensemble's flow forecast combines its members (the heading's {members}: evaluation/operational.py)
    "heading_members": {"en": ", {phrase}", "zh": "，{phrase}"},
    "members_mixture": {"en": "the mixture over {n} weather members", "zh": "{n} 个天气集合成员的混合分布"},
    "members_mean": {"en": "the mean of {n} weather members' point forecasts (a model without quantiles: no interval)",
                     "zh": "{n} 个天气集合成员点预报的平均值（模型不输出分位数：没有预报区间）"},
    # the forecast table's column headers (cli/forecast.py); quantile columns (q05 ..) keep their names
    "table_valid_date": {"en": "valid date", "zh": "预报日期"},
    "table_lead": {"en": "lead", "zh": "预见期"},
    "table_median": {"en": "median", "zh": "中位数"},
    "table_stage_unit": {"en": "m (water level)", "zh": "m（水位）"},
    "reforecast_heading": {"en": "\nBasin {basin}: {n} issue dates {first}..{last}, {leads} leads (model {model})",
                           "zh": "\n测站 {basin}：{first}..{last} 共 {n} 个发布日，{leads} 个预见期（模型 {model}）"},
    "reforecast_output": {"en": "Output: {table}  (score it with: sca2lstm verify {command})",
                          "zh": "输出：{table}（评分：sca2lstm verify {command}）"},
    # the issue dates of a --from/--to span a reforecast left out (evaluation/reforecast.left_out_text), and why
    "left_out": {"en": "left out: {n} of {asked} issue dates asked: {spans}",
                 "zh": "未发布：所请求的 {asked} 个发布日中有 {n} 个：{spans}"},
    "left_out_span": {"en": "{days} ({why})", "zh": "{days}（{why}）"},
    "left_out_separator": {"en": ", ", "zh": "；"},
    "left_out_more": {"en": ", and {n} more span(s)", "zh": "；另有 {n} 段"},
    "no_recent_flow": {"en": "no observed flow in the {days} days up to it", "zh": "此前 {days} 天内没有实测流量"},
    "no_archive_forecast": {"en": "no forecast in the archive", "zh": "存档中没有该日的预报"},
    "no_complete_archive_forecast": {"en": "no complete forecast in the archive", "zh": "存档中没有该日的完整预报"},
    "few_complete_archive_members": {"en": "{used} of its {held} members complete in the archive, fewer than half",
                                     "zh": "存档中该日 {held} 个成员只有 {used} 个完整，不足一半"},
    "several_runs_on_date": {"en": "{runs} runs on this date in an archive of one run a day: which is the day's run "
                                   "is not known",
                             "zh": "该存档每天一次预报，而这一天有 {runs} 次：不知哪一次是当天的预报"},
    "not_issued": {"en": "not issued", "zh": "未发布"},
    # a water-level warning level of a reforecast over a change of the station's rating curve (cli/warnings_flags.py)
    "level_by_curve": {"en": "{name:>8}: water level {stage} m is {low}-{high} m3/s over the span, through the rating "
                             "curve valid on each valid day (reforecast.csv: level_{name})",
                       "zh": "{name:>8}：水位 {stage} m 按各预报日有效的水位流量关系，在本时段为 {low}-{high} m3/s"
                             "（reforecast.csv 的 level_{name} 列）"},
    "outside_record": {"en": "outside the data of basin {basin}, {first}..{last}",
                       "zh": "在测站 {basin} 的资料 {first}..{last} 之外"},
    # a line a reforecast prints of what weather.json holds
    "in_weather_json": {"en": "{line} (weather.json)", "zh": "{line}（见 weather.json）"},
    "of_archive": {"en": "{source}: {line}", "zh": "{source}：{line}"},
    # how an archive's runs got the model's PET, each as it alone gets it (weather/files.pet_ways_text)
    "pet_ways": {"en": "PET ({pet}) of its {n} runs, each as it alone gets it: {ways}",
                 "zh": "其 {n} 次预报的 PET（{pet}）各按单独使用时的方式得到：{ways}"},
    "pet_way_count": {"en": "{n} {way}", "zh": "{n} 次{way}"},
    "pet_way_given": {"en": "its own {pet} column", "zh": "取自其自身的 {pet} 列"},
    "pet_way_et0": {"en": "its et0 (FAO-56)", "zh": "取自其 et0（FAO-56）"},
    "pet_way_oudin": {"en": "Oudin from its temperature", "zh": "由其气温按 Oudin 公式算出"},
    "pet_way_masked": {"en": "masked (the station has no such input)", "zh": "屏蔽（该测站没有此输入）"},
    "pet_way_none": {"en": "none (this model never derives PET)", "zh": "无（该模型从不推算 PET）"},
    # an archive's rain against the observed (weather/mapping.archive_rain_text); "n/a": too few days to say
    "archive_rain": {"en": "archive rain against the observed, lead 1 ({days} days): wet days (>= {wet_mm:g} mm) "
                           "{wet_forecast}{mapped} vs {wet_observed}, 99th percentile {p99_forecast} vs "
                           "{p99_observed} mm, total {total}, correlation {corr}",
                     "zh": "存档降水与实测对比，预见期第 1 天（{days} 天）：雨日（>= {wet_mm:g} mm）占 {wet_forecast}"
                           "{mapped}，实测 {wet_observed}；99 百分位数 {p99_forecast} mm，实测 {p99_observed} mm；"
                           "总量 {total}；相关系数 {corr}"},
    "archive_rain_mapped": {"en": " ({pct} mapped)", "zh": "（映射后 {pct}）"},
    "not_available": {"en": "n/a", "zh": "无"},
    "drizzly_not_mapped": {"en": "; drizzly with damped storms, not mapped: {why}",
                           "zh": "；小雨偏多、暴雨偏弱，未作映射：{why}"},
    "drizzly_none": {"en": "; drizzly with damped storms: --precip_mapping auto (the default) maps such forecasts "
                           "(docs/weather.md)",
                     "zh": "；小雨偏多、暴雨偏弱：--precip_mapping auto（默认）会映射这样的预报（见 docs/weather.md）"},
    "drizzly_quantile": {"en": "; drizzly with damped storms: the case --precip_mapping quantile is for "
                               "(docs/weather.md)",
                         "zh": "；小雨偏多、暴雨偏弱：正是 --precip_mapping quantile 适用的情形（见 docs/weather.md）"},
    "drizzly_auto": {"en": "; drizzly with damped storms: mapped where the forecasts issued before each date were so "
                           "(docs/weather.md)",
                     "zh": "；小雨偏多、暴雨偏弱：各发布日之前发布的预报也是如此时已作映射（见 docs/weather.md）"},
    # --- the per-level lines (cli/warnings_flags.py) of a forecast and of a reforecast
    "level_line": {"en": "{name:>8}: {value:9.3f} m3/s daily mean{ci}{stage}",
                   "zh": "{name:>8}: {value:9.3f} m3/s（日均流量）{ci}{stage}"},
    "level_ci": {"en": " (90 % CI {lo:.3f}-{hi:.3f})", "zh": "（90 % 置信区间 {lo:.3f}-{hi:.3f}）"},
    "level_stage": {"en": " (water level {stage:g} m)", "zh": "（水位 {stage:g} m）"},
    "level_warns": {"en": ", warn at P >= {threshold} ({source}); P(exceed) by lead (* warns) {probs}",
                    "zh": "，超过概率 >= {threshold} 时预警（{source}）；各预见期超过概率（* 为预警）{probs}"},
    "threshold_by_lead": {"en": "{values} at leads 1-{n}", "zh": "{values}（预见期第 1-{n} 天）"},
    "reforecast_level": {"en": " ({source}), warn at P >= {threshold}; {n} warned (issue date, lead) pairs",
                         "zh": "（{source}），超过概率 >= {threshold} 时预警；共 {n} 个（发布日, 预见期）预警"},
    "rare_levels": {"en": "q10y, q20y: not given; the training years {held}, and {needed} are needed",
                    "zh": "q10y、q20y：未给出；训练年份{held}，至少需要 {needed} 个"},
    "rare_levels_held": {"en": "hold {n} annual maxima", "zh": "只有 {n} 个年最大值"},
    "rare_levels_few": {"en": "hold too few annual maxima", "zh": "的年最大值太少"},
    "no_return_levels": {"en": "no return-period levels (q2y ..): the training years hold fewer than {n} complete "
                               "water years (or annual maxima that are all alike)",
                         "zh": "没有重现期流量（q2y ..）：训练年份中完整的水文年不足 {n} 个（或各年最大值都相同）"},
    "calibrated": {"en": "Blend with persistence: {blend}; intervals: {spread}.",
                   "zh": "与持续性预报的混合：{blend}；预报区间：{spread}。"},
    # --- the fan chart (evaluation/plots.plot_fan_chart), in Chinese only where matplotlib has a Chinese font
    "fan_title": {"en": "Basin {basin}: forecast issued {day} ({setting})",
                  "zh": "测站 {basin}：{day} 发布的预报（{setting}）"},
    "fan_discharge": {"en": "discharge (m$^3$/s)", "zh": "流量 (m³/s)"},
    "fan_stage": {"en": "water level (m), by the rating curve", "zh": "水位 (m)，按水位流量关系"},
    "fan_observed": {"en": "observed", "zh": "实测"},
    # as the service's page names them (serve/page.py)
    "fan_observed_after": {"en": "observed after the issue day", "zh": "发布日之后的实测"},
    "fan_band": {"en": "{label} interval", "zh": "{label} 区间"},
    "fan_members": {"en": "median of each of {n} weather members", "zh": "{n} 个天气集合成员各自的中位数"},
    "fan_members_point": {"en": "point forecast of each of {n} weather members", "zh": "{n} 个天气集合成员各自的点预报"},
    "fan_median": {"en": "median forecast", "zh": "预报中位数"},
    "fan_issue_date": {"en": "issue date", "zh": "发布日"},
    "fan_level_stage": {"en": "{name} {flow} m³/s (water level {stage} m)", "zh": "{name} {flow} m³/s（水位 {stage} m）"},
    "fan_above": {"en": "levels above the chart (m$^3$/s):\n", "zh": "超出图幅的预警级 (m³/s)：\n"},
    "fan_no_font": {"en": "fan chart: matplotlib finds no Chinese font (such as {fonts}): its labels stay in English "
                          "rather than show as boxes; install one (e.g. Debian/Ubuntu's fonts-noto-cjk) and delete "
                          "matplotlib's font cache fontlist-*.json",
                    "zh": "扇形图：matplotlib 未找到中文字体（如 {fonts}），图中文字保持英文，以免显示成方框；装上其中一种字体"
                          "（如 Debian/Ubuntu 的 fonts-noto-cjk）并删除 matplotlib 的字体缓存 fontlist-*.json 后即显示中文"},
    # --- report.html's forecast section (evaluation/report.py)
    "report_title": {"en": "SCA2LSTM forecast, basin {basin}, issued {day}",
                     "zh": "SCA2LSTM 预报，测站 {basin}，{day} 发布"},
    "report_forecast": {"en": "Operational forecast", "zh": "业务预报"},
    "report_intro": {"en": "<p>Flow forecast for the lead days after the issue date, from what was known on it "
                           "(setting <code>issue-time</code>: weather up to the issue date only; "
                           "<code>issue-time+weather-forecast</code>: the lead days' weather from a forecast file). "
                           "Median and quantiles in m&sup3;/s.</p>",
                     "zh": "<p>发布日之后各预见期的流量预报，只用发布日当时已知的信息（setting 为 <code>issue-time</code>："
                           "只用到发布日为止的气象数据；<code>issue-time+weather-forecast</code>：预见期的气象取自天气预报文件）。"
                           "中位数（median）与各分位数（q05 等）单位为 m&sup3;/s。</p>"},
    "report_stage": {"en": " The <code>stage_*</code> columns are the same quantiles as water levels, in m, "
                           "through the station's rating curve.</p>",
                     "zh": "<code>stage_*</code> 列是按该测站水位流量关系换算的同一组分位数水位，单位 m。</p>"},
    "report_levels": {"en": "Warning levels: probability of exceedance by lead", "zh": "预警级：各预见期的超过概率"},
    "report_levels_intro": {"en": "<p>P(flow &gt; level) for each lead day, from the forecast's quantiles, and the "
                                  "level's warning probability: a lead warns (highlighted) where P reaches it, or "
                                  "where a higher level warns.</p>",
                            "zh": "<p>各预见期流量超过预警级的概率 P（由预报分位数算出）与该预警级的预警概率：P 达到预警概率，"
                                  "或更高的预警级已预警时，该预见期预警（突出显示）。</p>"},
    "report_daily_mean": {"en": "daily mean", "zh": "日均"},
    "report_interval": {"en": " (90 % interval {lo}-{hi} m&sup3;/s)", "zh": "（90 % 区间 {lo}-{hi} m&sup3;/s）"},
    "report_stage_m": {"en": " (water level {stage} m)", "zh": "（水位 {stage} m）"},
    "report_first": {"en": "first warning at lead {lead}", "zh": "自预见期第 {lead} 天起预警"},
    "report_none": {"en": "no lead warns", "zh": "各预见期均不预警"},
    "report_source": {"en": "level: {source}", "zh": "预警级来源：{source}"},
    "report_probability_source": {"en": "warning probability: {source}", "zh": "预警概率来源：{source}"},
    "report_meta_separator": {"en": "; ", "zh": "；"},
    "report_yes": {"en": "yes", "zh": "是"},
    "report_yes_as": {"en": "yes, as {level} warns", "zh": "是（{level} 已预警）"},
    "report_yes_higher": {"en": "yes, as a higher level warns", "zh": "是（更高的预警级已预警）"},
    "report_lead": {"en": "lead", "zh": "预见期（天）"},
    "report_valid_date": {"en": "valid date", "zh": "预报日期"},
    "report_p": {"en": "P(flow &gt;{unit})", "zh": "P(流量 &gt;{unit})"},
    "report_warn_probability": {"en": "warning probability", "zh": "预警概率"},
    "report_warns": {"en": "warns", "zh": "是否预警"},
}


#: The fixed English phrases the lines above may carry as a value (where a level, its warning probability, the
#: blend or the intervals came from): phrase -> language -> words. Any other value (one that names a basin, a
#: span or a file) is said as it is.
PHRASES = {
    "user": {"zh": "用户给定"},
    "station metadata": {"zh": "测站元数据文件"},
    "chosen on validation (F1)": {"zh": "在验证期按 F1 选定"},
    # (said inside the level line's parentheses: no parentheses of their own)
    "default, as no calibration lies beside the model": {"zh": "默认值：模型旁没有校准文件"},
    "default, as the calibration holds no warning probability": {"zh": "默认值：校准文件中没有预警概率"},
    "default, as this station's record gives no return-period level whose calibrated probability it could take":
        {"zh": "默认值：该测站记录没有可借用其校准概率的重现期流量"},
    "stored beside the model": {"zh": "模型旁保存的值"},
    "pooled over the calibration basins": {"zh": "各校准流域合并拟合"},
    "off (model.persistence_blend is false)": {"zh": "关闭（model.persistence_blend 为 false）"},
    "the model's own quantiles (no calibration stored beside the model)": {"zh": "模型自身的分位数（模型旁没有校准文件）"},
    "fitted on the validation days": {"zh": "在验证期上拟合"},
    "raw model (no validation issue dates)": {"zh": "模型原始输出（没有验证期发布日）"},
    "the pretrained model": {"zh": "预训练模型"},
    "an earlier calibration of this model": {"zh": "该模型此前的一次校准"},
    "station metadata (water level)": {"zh": "测站元数据文件（水位）"},
    "user (water level)": {"zh": "用户给定（水位）"},
}


#: Where a level, its warning probability, the blend or the intervals came from, said from its parts (a span, a count,
#: a weather setting, another source): kind -> language -> template, as :data:`WORDS`. A source is built as a
#: :class:`Source` (its English text, kept in forecast.json and levels.json as before); read back from a file as
#: text, it is recognised by its English template (:func:`phrase`), each value as :data:`_SOURCE_VALUES` allows.
SOURCES = {
    # the intervals (evaluation/calibration.py spread_origin, station_spread, issue_setup)
    "taken_from": {"en": "taken from {source}", "zh": "取自{source}"},
    "fitted_on_own_validation": {"en": "fitted on this basin's validation days {days}",
                                 "zh": "在该流域的验证期 {days} 上拟合"},
    "no_training_forecasts": {"en": "{origin} (no training-year forecasts)", "zh": "{origin}（没有训练年份的预报）"},
    "few_training_forecasts": {"en": "{origin} ({n} training-year forecasts per lead)",
                               "zh": "{origin}（每个预见期只有 {n} 个训练年份的预报）"},
    "rescaled_to_station": {"en": "pooled, rescaled to the station's training years {span} ({n} forecasts per lead)",
                            "zh": "各校准流域合并拟合，再按该测站训练年份 {span} 重新缩放（每个预见期 {n} 个预报）"},
    "own_quantiles_no_setting": {
        "en": "the model's own quantiles (the calibration beside the model holds no '{weather}' spread; sca2lstm "
              "calibrate --model M.pth --settings {weather} fits it)",
        "zh": "模型自身的分位数（模型旁的校准文件中没有 '{weather}' 的预报区间；sca2lstm calibrate --model M.pth "
              "--settings {weather} 可拟合）"},
    "of_setting": {"en": "{origin} ({weather})", "zh": "{origin}（{weather}）"},
    # the blend with persistence (issue_setup)
    "blend_pooled": {"en": "pooled over basins ({weather})", "zh": "各流域合并拟合（{weather}）"},
    "blend_fitted": {"en": "fitted on the validation days {span}", "zh": "在验证期 {span} 上拟合"},
    # a level's warning probability (calibration.warn_probabilities) and a fitted level (levels.fit_return_levels)
    "chosen_taken_from": {"en": "chosen on validation (F1), taken from {source}",
                          "zh": "在验证期按 F1 选定，取自{source}"},
    "as_nearest": {"en": "as {near}, the nearest return-period level", "zh": "同 {near}（最接近的重现期流量）"},
    "fitted_level": {"en": "{dist}, {years} ({n} annual maxima)", "zh": "{dist}，{years}（{n} 个年最大值）"},
    "fitted_level_dry": {"en": "{dist}, {years} ({n} annual maxima, {dry} without flow)",
                         "zh": "{dist}，{years}（{n} 个年最大值，其中 {dry} 个无流量）"},
    # a level fitted on annual maxima that no year label names (levels.fit_return_levels without ``label``)
    "fitted_level_unlabelled": {"en": "{dist} ({n} annual maxima)", "zh": "{dist}（{n} 个年最大值）"},
    "fitted_level_unlabelled_dry": {"en": "{dist} ({n} annual maxima, {dry} without flow)",
                                    "zh": "{dist}（{n} 个年最大值，其中 {dry} 个无流量）"},
    "calendar_years": {"en": "calendar years {years}", "zh": "日历年 {years}"},
}

#: What each value of a :data:`SOURCES` template may be, where a source read back as text is recognised (anything
#: else: any text).
_SOURCE_VALUES = {"n": r"\d+", "dry": r"\d+", "weather": r"none|forecast|ensemble|perfect", "dist": r"\w+",
                  "near": r"q\d+y", "span": r"\S+", "days": r"\S+", "years": r"(?:calendar years )?[\d-]+"}


class Source(Note):
    """Where a level, its warning probability, the blend or the intervals came from (:data:`SOURCES`): its English
    text (a ``str``, as forecast.json and levels.json keep it) that keeps its kind and values, said in another
    language from them (:func:`phrase`: a value that is a source or a phrase of :data:`PHRASES` too)."""

    catalog = SOURCES

    def said_in(self, lang: str) -> str:
        template = self.catalog.get(self.kind, {}).get(lang)
        if lang == "en" or template is None:
            return str(self)
        return template.format(**{k: phrase(v, lang) for k, v in self.values.items()})


class Said(Source):
    """A line or a phrase of :data:`WORDS` that keeps its kind and values (its English text, a ``str``, where a
    caller keeps a text: the reasons a reforecast left its issue dates out), said in another language from them."""

    catalog = WORDS


def _source_pattern(template: str):
    parts = re.split(r"\{(\w+)\}", template)   # literal, name, literal, name, ..., literal
    pattern = ""
    for i, p in enumerate(parts):
        if i % 2 == 0:
            pattern += re.escape(p)
        else:   # a value said twice is the same value both times
            pattern += f"(?P={p})" if f"(?P<{p}>" in pattern else f"(?P<{p}>{_SOURCE_VALUES.get(p, '.+')})"
    return re.compile(pattern)


#: the templates with the most words of their own first: "pooled over basins (forecast)" is "blend_pooled", not any
#: "{origin} ({weather})"
_SOURCE_PATTERNS = {kind: _source_pattern(SOURCES[kind]["en"]) for kind in
                    sorted(SOURCES, key=lambda k: -len(re.sub(r"\{\w+\}", "", SOURCES[k]["en"])))}


def source_of(text: str):
    """``text`` as a :class:`Source` where it is one a :data:`SOURCES` template says in English (a source read back
    from levels.json), else None."""
    for kind, pattern in _SOURCE_PATTERNS.items():
        m = pattern.fullmatch(text)
        if m:
            return Source._of(text, kind, m.groupdict())
    return None


def phrase(value, lang: str = "en"):
    """``value`` in ``lang``: a :class:`Source` (or a text that is one, :func:`source_of`) from its parts, one of
    :data:`PHRASES` as it says it, anything else as it is."""
    if lang == "en":
        return value
    if isinstance(value, Note):
        return value.said_in(lang)
    if not isinstance(value, str):
        return value
    if value in PHRASES:
        return PHRASES[value].get(lang, value)
    found = source_of(value)
    return found.said_in(lang) if found is not None else value


def say(kind: str, lang: str = "en", /, **values) -> str:
    """The words ``kind`` of :data:`WORDS` in ``lang`` (its English where it has no ``lang``), with ``values``."""
    said = WORDS[kind]
    return (said.get(lang) or said["en"]).format(**values)


def width(text: str) -> int:
    """The columns ``text`` takes on a terminal: two for a wide (CJK) character, one for any other."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in str(text))


def rjust(text: str, columns: int) -> str:
    """``text`` right-aligned in ``columns`` terminal columns (:func:`width`), as ``f"{text:>{columns}}"`` aligns a
    text of one-column characters: a Chinese table header lines up with its figures."""
    return " " * max(0, columns - width(text)) + str(text)


def listed(names, lang: str = "en") -> str:
    """``names`` as ``lang`` lists them (``a, b``; ``a、b``), as the notes list values."""
    return LIST_SEPARATOR.get(lang, ", ").join(str(n) for n in names)
