"""The sentences a forecast carries beside its numbers (its notes), said in the reader's language.

A :class:`Note` is its English text, a ``str`` as the logs, the files of ``sca2lstm forecast`` and the service's
records keep it, that also keeps the kind and values it was said from: the service says it in Chinese on the page
of a reader who prefers it, and in the language of its alerts (``sca2lstm serve --alert_language``). A note without
a kind (a plain ``str``, as every note stored before notes had kinds) is said as it is, in English.

A stored note is :meth:`Note.record` (JSON) and is read back by :func:`note_of`.
"""

from __future__ import annotations

#: The notes a forecast may carry: kind -> language -> template. The values are the same in every language (days
#: as 'YYYY-MM-DD', flows in m3/s; ``source`` a file or an address, as the reader gave it), except a note (said in
#: the reader's language too), a list (lead days), said as the language lists things (:data:`LIST_SEPARATOR`), and
#: one of the English phrases of :data:`PHRASES`, said in the reader's language.
NOTES = {
    "stale_flow": {
        "en": "basin {basin}: no flow observed on the issue date {day}; the forecast starts from the last observed "
              "flow, {flow:.3g} m3/s on {last}, {days} day(s) before it",
        "zh": "测站 {basin}：发布日 {day} 没有实测流量；预报从最近一次实测流量起算，即 {last} 的 {flow:.3g} m3/s"
              "（发布日前 {days} 天）"},
    "short_record": {
        "en": "basin {basin}: only {days} day(s) of record up to the issue date {day}, where the model reads "
              "{window}: its state starts from a partly empty window, and forecasts this early in a record are less "
              "reliable",
        "zh": "测站 {basin}：截至发布日 {day} 只有 {days} 天记录，而模型需读取 {window} 天：模型状态从部分为空的时段起算，"
              "记录开头这样早的预报可靠性较低"},
    "members_left_out": {
        "en": "{source}: {left} of its {held} members left out, incomplete on the lead days; the forecast is the "
              "mixture of the other {used}",
        "zh": "{source}：{held} 个集合成员中有 {left} 个在预见期内数据不全，已剔除；本预报由其余 {used} 个成员合成"},
    "members_left_one": {
        "en": "{source}: {left} of its {held} members left out, incomplete on the lead days; the forecast is issued "
              "from the other one alone, as one weather forecast (with its spread)",
        "zh": "{source}：{held} 个集合成员中有 {left} 个在预见期内数据不全，已剔除；本预报仅由剩下的那一个成员作为单一天气预报"
              "发布（采用单一预报的区间）"},
    "members_left_mean": {
        "en": "{source}: {left} of its {held} members left out, incomplete on the lead days; the forecast is the mean "
              "of the other {used} members' point forecasts (a model without quantiles)",
        "zh": "{source}：{held} 个集合成员中有 {left} 个在预见期内数据不全，已剔除；本预报为其余 {used} 个成员点预报的平均值"
              "（模型不输出分位数）"},
    "old_weather_forecast": {
        "en": "{source} was issued {issued}, {days} day(s) before the issue date {day}: its lead days are days "
              "{next}.. of that forecast, less skilful than the intervals assume; use the forecast of the issue date "
              "where there is one",
        "zh": "{source} 发布于 {issued}，比发布日 {day} 早 {days} 天：本次预见期用的是该天气预报第 {next} 天及以后的数据，"
              "精度低于预报区间的假定；如有发布日当天的天气预报，请改用"},
    "foreign_id": {
        "en": "basin {basin} in {data_dir} is a station imported from {source}; the model was pretrained on another "
              "basin {basin} (from {trained_in}): it is treated as a new station (its own discharge scale and "
              "blend). Give your station an id of its own (station import --id) to keep the two apart",
        "zh": "{data_dir} 中的测站 {basin} 导入自 {source}；模型预训练时用的是另一个同为 {basin} 的流域（来自 {trained_in}）："
              "该测站按新测站处理（使用其自身的流量尺度与混合系数）。请为该测站另起编号（station import --id），以免二者混淆"},
    "gauge_elsewhere": {
        "en": "basin {basin}'s gauge in {data_dir} ({here}) lies {km} km from that of the basin {basin} the model "
              "learned ({learned}, in {trained_in}): another river under the same id; it is treated as a new station "
              "(its own discharge scale and blend). Give your station an id of its own to keep the two apart",
        "zh": "{data_dir} 中测站 {basin} 的测站位置（{here}）与模型学过的同编号流域 {basin}（{learned}，位于 {trained_in}）"
              "相距 {km} km：是同一编号下的另一条河流；该测站按新测站处理（使用其自身的流量尺度与混合系数）。请为该测站另起编号，以免二者混淆"},
    "finetuned_for_other": {
        "en": "the model was fine-tuned for basin {other}; basin {basin} runs on its weights as on a pretrained model "
              "(use basin {basin}'s own fine-tuned model, or the pretrained one, where there is one)",
        "zh": "该模型是为测站 {other} 微调的；测站 {basin} 按预训练模型使用其权重（如有测站 {basin} 自己的微调模型或预训练模型，"
              "请改用）"},
    "flows_changed": {
        "en": "basin {basin}: the flows of {start}..{end} in {data_dir} differ from those the model was fine-tuned on "
              "(mean {mean_then} m3/s over {days_then} days then, {mean_now} m3/s over {days_now} days now): the data "
              "changed since fine-tuning (another rating curve, unit or folder?); its discharge scale and calibration "
              "belong to the old flows: fine-tune again",
        "zh": "测站 {basin}：{data_dir} 中 {start}..{end} 的流量与模型微调时所用的不同（当时 {days_then} 天平均 {mean_then} m3/s，"
              "现在 {days_now} 天平均 {mean_now} m3/s）：微调后数据有变化（换了水位流量关系、单位或数据目录？）；"
              "模型的流量尺度和校准仍对应旧流量：请重新微调"},
    "rain_changed": {
        "en": "basin {basin}: the precipitation of {start}..{end} in {data_dir} averages {mean_now:.4g} mm/d, but "
              "{mean_then:.4g} mm/d when the model was fine-tuned on it: rain in another unit (0.1 mm read as mm, m "
              "for mm)? Forecasts from it are not to be trusted: import the station with its rain's unit, or fine-tune "
              "again",
        "zh": "测站 {basin}：{data_dir} 中 {start}..{end} 的降水平均为 {mean_now:.4g} mm/d，而模型微调时为 {mean_then:.4g} mm/d："
              "降水单位不同（把 0.1 mm 当成 mm，或把 m 当成 mm）？据此做出的预报不可信：请按降水的实际单位重新导入测站，或重新微调"},
    "unit_mismatch_flow": {
        "en": "basin {basin}: its flows of {start}..{end} average {flow:.4g} m3/s, but the model learned them as "
              "{learned:.4g} m3/s: data in another unit? Forecasts from them are not to be trusted",
        "zh": "测站 {basin}：{start}..{end} 的流量平均为 {flow:.4g} m3/s，而模型学到的是 {learned:.4g} m3/s：数据单位不同？"
              "据此做出的预报不可信"},
    "unit_mismatch_rain": {
        "en": "basin {basin}: its precipitation averages {rain:.4g} mm/d, but its attribute p_mean is {p_mean:.4g} "
              "mm/d: data in another unit? Forecasts from them are not to be trusted",
        "zh": "测站 {basin}：降水平均为 {rain:.4g} mm/d，而其属性 p_mean 为 {p_mean:.4g} mm/d：数据单位不同？据此做出的预报不可信"},
    "unit_mismatch_flow_rain": {
        "en": "basin {basin}: its flows of {start}..{end} average {flow:.4g} m3/s, but the model learned them as "
              "{learned:.4g} m3/s; its precipitation averages {rain:.4g} mm/d, but its attribute p_mean is "
              "{p_mean:.4g} mm/d: data in another unit? Forecasts from them are not to be trusted",
        "zh": "测站 {basin}：{start}..{end} 的流量平均为 {flow:.4g} m3/s，而模型学到的是 {learned:.4g} m3/s；降水平均为 "
              "{rain:.4g} mm/d，而其属性 p_mean 为 {p_mean:.4g} mm/d：数据单位不同？据此做出的预报不可信"},
    # a forecast of valid days the model, its blend, spread or levels learned from (evaluation/reforecast.py)
    "in_sample": {
        "en": "basin {basin}: the valid days {first}..{last} are days the model (or its blend, spread or levels) "
              "learned from: compared with what was observed there, this forecast is in-sample, not a test",
        "zh": "测站 {basin}：预报日期 {first}..{last} 是模型（或其混合系数、预报区间、预警级）学习过的日子：与这些日子的实测相比，"
              "本预报属于样本内，不是检验"},
    # what a reforecast (evaluation/reforecast.py) says of its issue dates, as a single forecast says it of one
    "reforecast_stale_flow": {
        "en": "basin {basin}: {n} issue date(s) between {first} and {last} have no flow observed on them; each starts "
              "from the last observed flow, up to {days} day(s) before it (so does its persistence)",
        "zh": "测站 {basin}：{first} 至 {last} 之间有 {n} 个发布日当天没有实测流量；每个都从最近一次实测流量起算，"
              "最多早于发布日 {days} 天（持续性预报也是如此）"},
    "reforecast_short_record": {
        "en": "basin {basin}: {n} issue date(s) {first}..{last} have fewer days of record up to them than the {window} "
              "the model reads: their state starts from a partly empty window, and forecasts this early in a record are "
              "less reliable",
        "zh": "测站 {basin}：{first}..{last} 的 {n} 个发布日截至当天的记录不足模型需读取的 {window} 天：模型状态从部分为空的"
              "时段起算，记录开头这样早的预报可靠性较低"},
    "reforecast_members_left_out": {
        "en": "{source}: {n} issue date(s) with members incomplete on their lead days, left out as a single forecast "
              "leaves them out (the first, {day}: {used} of {held} members used)",
        "zh": "{source}：{n} 个发布日有集合成员在预见期内数据不全，这些成员已剔除，与单次预报相同（第一个为 {day}：{held} 个"
              "成员中用了 {used} 个）"},
    "reforecast_member_alone": {
        "en": "{source}: {n} issue date(s) with one complete member left of the ensemble, issued from it as one weather "
              "forecast (with its spread), as a single forecast issues them (the first, {day})",
        "zh": "{source}：{n} 个发布日的集合只剩一个完整成员，与单次预报相同，仅由该成员作为单一天气预报发布（采用单一预报的"
              "区间）（第一个为 {day}）"},
    # a weather forecast the service stored (serve/weather.py), as its forecasts' notes name it
    "stored_weather_forecast": {
        "en": "weather forecast {id} of station {station} (issued {issued})",
        "zh": "测站 {station} 第 {id} 号天气预报（{issued} 发布）"},
    # a station's archive of past weather forecasts (weather/archive.py), as notes and lines name it
    "weather_archive": {
        "en": "weather archive {path}",
        "zh": "天气预报存档 {path}"},
    # what one forecast's rain was ranked among (a mapping record's ``ranked_among``; "precip_mapped" says it)
    "ranked_among": {
        "en": "{archive}: its forecasts issued before {day}",
        "zh": "{archive} 中 {day} 之前发布的预报"},
    # the weather forecast's precipitation mapped to the station's observed climate (evaluation/rain_mapping.py):
    # ``method`` is --precip_mapping's (quantile, auto), each a quantile mapping
    "precip_mapped": {
        "en": "Precipitation of {source} {method}-mapped per lead to the observed rain of {observed}, ranked among "
              "{archive}: its forecasts issued before {day}",
        "zh": "{source}的降水已按 {observed} 的实测降水分布逐个预见期作分位数映射（{method}），排位样本为{archive} 中 {day} "
              "之前发布的预报"},
    "precip_mapped_among": {
        "en": "Precipitation of {source} {method}-mapped per lead to the observed rain of {observed}, ranked among "
              "{among}",
        "zh": "{source}的降水已按 {observed} 的实测降水分布逐个预见期作分位数映射（{method}），排位样本为{among}"},
    "precip_not_mapped": {
        "en": "Precipitation of {source} not mapped ({method}): {why}",
        "zh": "{source}的降水未作映射（{method}）：{why}"},
    # why there is no observed rain to map a forecast's to (evaluation/context.py): "precip_not_mapped" says it
    "no_precipitation_input": {
        "en": "the model reads no precipitation (inputs {inputs}): there is no forecast precipitation to map",
        "zh": "模型不读取降水（输入为 {inputs}）：没有可映射的预报降水"},
    "no_training_rain": {
        "en": "basin {basin}: no observed precipitation in its training part (days {first}..{last} of its record) to "
              "map the forecast precipitation to",
        "zh": "测站 {basin}：训练时段（记录的第 {first}..{last} 天）没有实测降水，无法将预报降水映射到实测降水分布"},
    # leads whose forecast has too few earlier forecasts to rank it among keep its rain (weather/mapping.py);
    # ``leads`` a list, ``given`` the forecast or the archive
    "unmapped_leads": {
        "en": "{source}: precipitation of lead(s) {leads} of issue date {day} not quantile-mapped: fewer than "
              "{min_issue_dates} earlier issue dates with a forecast of the lead (at most {most}); left as {given} "
              "gives it",
        "zh": "{source}：发布日 {day} 预见期第 {leads} 天的降水未作分位数映射：此前有该预见期预报的发布日不足 "
              "{min_issue_dates} 个（最多 {most} 个）；按{given}给出的原值使用"},
    "unmapped_leads_later": {
        "en": "{source}: precipitation of lead(s) {leads} of issue date {day} (and {later} later issue date(s)) not "
              "quantile-mapped: fewer than {min_issue_dates} earlier issue dates with a forecast of the lead (at most "
              "{most}); left as {given} gives it",
        "zh": "{source}：发布日 {day}（及其后 {later} 个发布日）预见期第 {leads} 天的降水未作分位数映射：此前有该预见期预报的"
              "发布日不足 {min_issue_dates} 个（最多 {most} 个）；按{given}给出的原值使用"},
    # a checkpoint older than its record of learned archives may have learned the rain it maps (rain_mapping.py)
    "may_have_learned": {
        "en": "The model was trained before checkpoints recorded the archives of forecasts their weights learned, and "
              "it trained on basin {basin}'s days {first}..{last}, when {n} of the forecasts its rain was ranked among "
              "were issued: if its training data folder held that archive, the model learned its rain as given and "
              "mapping corrects it twice; then forecast with --precip_mapping none.",
        "zh": "该模型训练时检查点尚不记录其权重学过的天气预报存档，且它用测站 {basin} 的 {first}..{last} 时段训练过，而本次降水"
              "排位所用的预报中有 {n} 个发布于该时段：若当时训练数据目录中有该存档，模型已按原值学过其降水，再作映射即重复订正；"
              "此时请用 --precip_mapping none 预报。"},
    # the same caution for an archive's runs combined with the same days' earlier runs (rain_mapping.lagged_weather)
    "may_have_learned_runs": {
        "en": "The model was trained before checkpoints recorded the archives of forecasts their weights learned, and "
              "it trained on basin {basin}'s days {first}..{last}, when {n} of the runs its rain was combined from "
              "were issued: if its training data folder held that archive, the model learned its runs as given and "
              "reads a combined forecast it never saw; then forecast with --weather_lags none.",
        "zh": "该模型训练时检查点尚不记录其权重学过的天气预报存档，且它用测站 {basin} 的 {first}..{last} 时段训练过，而本次降水"
              "组合所用的各次预报中有 {n} 个发布于该时段：若当时训练数据目录中有该存档，模型已按原值学过各次预报，组合后的预报是它"
              "从未见过的；此时请用 --weather_lags none 预报。"},
    # one forecast's precipitation combined with its station archive's earlier runs (rain_mapping.lagged_line)
    "runs_combined": {
        "en": "Precipitation of {source}, as the run of {day}: each day's forecast combined with the same day's forecasts "
              "of {runs} issued up to {max_lag} days earlier, weighted per lead by the days already observed "
              "(--weather_lags none reads it as given)",
        "zh": "{source}作为 {day} 的那次预报，其降水已与{runs}中同一天此前最多 {max_lag} 天发布的各次预报组合，权重按已有实测的日子逐个"
              "预见期拟合（--weather_lags none 则按原值使用）"},
    "runs_combined_replaced": {
        "en": "Precipitation of {source}, as the run of {day}: each day's forecast combined with the same day's forecasts "
              "of {runs} issued up to {max_lag} days earlier, weighted per lead by the days already observed; it "
              "takes the place of that archive's own run of {day} (--weather_lags none reads it as given)",
        "zh": "{source}作为 {day} 的那次预报，其降水已与{runs}中同一天此前最多 {max_lag} 天发布的各次预报组合，权重按已有实测的日子逐个"
              "预见期拟合；它取代了该存档中 {day} 发布的那次预报（--weather_lags none 则按原值使用）"},
    # a weather forecast's PET of the kind the station's history read (weather/files.pet_history_note)
    "pet_oudin_history": {
        "en": "{source}: PET ({pet}) is Oudin PET from its temperature, the kind this station's history read (its data "
              "has no PET column): its {given} is not read",
        "zh": "{source}：潜在蒸散发（{pet}）按其气温用 Oudin 公式推算，与该测站历史资料同类（其数据没有潜在蒸散发列）："
              "未采用其中的 {given}"},
    "pet_station_own": {
        "en": "{source}: PET ({pet}) is its {column} column, as this station's own {column} column gives the model's "
              "{pet} in its history",
        "zh": "{source}：潜在蒸散发（{pet}）采用其 {column} 列，因为该测站历史资料中模型的 {pet} 取自测站自己的 {column} 列"},
    "pet_station_et0": {
        "en": "{source}: PET ({pet}) is its et0 (FAO-56), as this station's own pet column gives the model's {pet} in "
              "its history",
        "zh": "{source}：潜在蒸散发（{pet}）采用其 et0（FAO-56），因为该测站历史资料中模型的 {pet} 取自测站自己的 pet 列"},
    "precip_mapped_plain": {
        "en": "Precipitation of {source} {method}-mapped per lead to the observed rain of {observed}",
        "zh": "{source}的降水已按 {observed} 的实测降水分布逐个预见期作分位数映射（{method}）"},
    # an archive's runs combined with the same days' earlier runs (rain_mapping.lagged_line); ``left``: the dates
    # of several runs left as given ("several_runs_left", or "")
    "archive_runs_combined": {
        "en": "Precipitation of {source}: each day's forecast combined with the same day's forecasts issued up to "
              "{max_lag} days earlier, weighted per lead by the days already observed ({n} issue date(s) from "
              "{first}{left}; --weather_lags none reads it as given)",
        "zh": "{source}的降水：每天的预报已与同一天此前最多 {max_lag} 天发布的各次预报组合，权重按已有实测的日子逐个预见期拟合"
              "（自 {first} 起共 {n} 个发布日{left}；--weather_lags none 则按原值使用）"},
    "several_runs_left": {
        "en": "; {n} issue date(s) holding several runs (the first {first}) left as given",
        "zh": "；有 {n} 个发布日存有多次预报（第一个为 {first}），按原值使用"},
    "runs_not_combined": {
        "en": "Precipitation of {source}: each day's forecast as given, not combined with its earlier runs "
              "(--weather_lags {method}): {why}{left}",
        "zh": "{source}的降水：每天的预报按原值使用，未与此前各次预报组合（--weather_lags {method}）：{why}{left}"},
    "runs_not_combined_one": {
        "en": "Precipitation of {source}: as given, not combined with the earlier runs of {runs} "
              "(--weather_lags {method}): {why}{left}",
        "zh": "{source}的降水：按原值使用，未与{runs}中此前的各次预报组合（--weather_lags {method}）：{why}{left}"},
    # why an archive's runs were not combined (weather/lagged.py combine_lagged, rain_mapping._lagged_one)
    "lags_no_precipitation": {"en": "the archive has no precipitation", "zh": "存档中没有降水"},
    "lags_ensemble_archive": {
        "en": "an ensemble archive ({runs} runs on {n} of {dates} issue dates, the first {first}): its members' spread "
              "already carries the rain's uncertainty",
        "zh": "这是集合预报存档（{dates} 个发布日中有 {n} 个存有多达 {runs} 次预报，第一个为 {first}）：其成员的离散度已体现"
              "降水的不确定性"},
    "lags_ensemble_forecast": {
        "en": "the weather forecast is an ensemble of {n} members: their spread already carries the rain's uncertainty",
        "zh": "该天气预报是 {n} 个成员的集合预报：其离散度已体现降水的不确定性"},
    "lags_short_leads": {
        "en": "the archive's forecasts reach lead {leads} only: no day has a forecast from an earlier issue date",
        "zh": "存档的预报只到预见期第 {leads} 天：没有哪一天有更早发布日的预报"},
    "lags_several_runs": {
        "en": "the archive holds several runs issued on {day}: which is the run of the day is not known",
        "zh": "存档中 {day} 发布的预报有多次：不知哪一次是当天的预报"},
    "lags_several_runs_more": {
        "en": "the archive holds several runs issued on {day} and {more} more of the dates asked: which is the run of "
              "the day is not known",
        "zh": "存档中 {day} 及所请求的另外 {more} 个发布日发布的预报都有多次：不知哪一次是当天的预报"},
    "lags_gap": {
        "en": "the archive lacks, for every lead, a forecast of the day from one of the {max_lag} issue dates before "
              "(a gap in its issue dates or leads)",
        "zh": "每个预见期都缺少之前 {max_lag} 个发布日之一对该日的预报（存档的发布日或预见期有缺口）"},
    "lags_short_rain": {
        "en": "the station's observed precipitation covers {n} of the archive's {days} days; the weights need "
              "{min_pairs}",
        "zh": "测站的实测降水只覆盖存档 {days} 天中的 {n} 天；拟合权重需要 {min_pairs} 天"},
    "lags_few_pairs": {
        "en": "fewer than {min_pairs} verified days of forecasts from {runs} consecutive issue dates before each issue "
              "date's month",
        "zh": "各发布日所在月份之前，有连续 {runs} 个发布日预报且有实测可验证的日子不足 {min_pairs} 天"},
    "lags_older_forecast": {
        "en": "the weather forecast was issued {issued}, before the issue date {day}: only the run of the issue date "
              "(or of the morning after) is combined",
        "zh": "该天气预报发布于 {issued}，早于发布日 {day}：只组合发布日当天（或次日早晨）的那次预报"},
    "lags_runs_begin": {
        "en": "the archive's runs begin {first}, not before the issue date {day}",
        "zh": "存档的预报始于 {first}，不早于发布日 {day}"},
    "lags_no_runs": {
        "en": "the archive's runs begin nowhere, not before the issue date {day}",
        "zh": "存档中没有任何预报，没有早于发布日 {day} 的"},
    # an input the days a forecast reads lack though the record holds it (evaluation/operational.check_recent_inputs)
    "basin_named": {"en": "basin {basin}", "zh": "测站 {basin}"},
    "station_named": {"en": "station {station}", "zh": "测站 {station}"},
    "days_read": {
        "en": "the {n} days read for the forecast issued {day} ({first}..{last})",
        "zh": "{day} 发布的预报所读取的 {n} 天（{first}..{last}）"},
    "last_value_on": {"en": "its last value is on {day}", "zh": "其最后一个值在 {day}"},
    "first_value_on": {"en": "its first value is on {day}", "zh": "其第一个值在 {day}"},
    "no_recent_input": {"en": "{who}: no {col} in {read}; {when}", "zh": "{who}：{read}中没有 {col}；{when}"},
    "no_recent_input_several": {
        "en": "{who}: no {col} in the days read for {n} of the {issues} issue dates {first}..{last} (the first: "
              "{read}); {when}",
        "zh": "{who}：{first}..{last} 的 {issues} 个发布日中有 {n} 个所读取的日子里没有 {col}（第一个：{read}）；{when}"},
    "masked_input": {
        "en": "{what}; the model runs without it ({col} masked through its whole window), which can cost much accuracy",
        "zh": "{what}；模型在没有该输入的情况下运行（{col} 在整个读取时段内被屏蔽），精度可能明显下降"},
    "blind_input": {
        "en": "{what}; forecast anyway (--allow_missing_inputs): the model runs blind to it, {col} masked through its "
              "whole window",
        "zh": "{what}；仍照常预报（--allow_missing_inputs）：模型看不到该输入，{col} 在整个读取时段内被屏蔽"},
}
# leads left unmapped, and a caution that the model may have learned the rain mapped: one note
for _kind in ("unmapped_leads", "unmapped_leads_later"):
    NOTES[f"{_kind}_may_have_learned"] = {
        lang: NOTES[_kind][lang] + {"en": " ", "zh": "。"}[lang] + NOTES["may_have_learned"][lang]
        for lang in ("en", "zh")}


#: How a list value is said in each language (``1, 2, 3``; ``1、2、3``).
LIST_SEPARATOR = {"en": ", ", "zh": "、"}

#: The English phrases a note's value may be (the weather forecast a service's note names, what rain was ranked
#: among, why it was not mapped, what a lead left unmapped keeps, the unnamed source of a station or of a
#: model's pretraining): phrase -> language -> words. Any other value is
#: said as it is.
PHRASES = {
    "the weather forecast": {"zh": "天气预报"},
    "the forecast": {"zh": "该预报"},
    "the archive": {"zh": "存档"},
    "the archive's forecasts issued before each issue date": {"zh": "该存档中各发布日之前发布的预报"},
    "the model's weights trained on this station's archive of forecasts, its rain as given":
        {"zh": "模型权重训练时用的就是该测站天气预报存档中的原始降水"},
    "the model's weights trained on this station's archive of forecasts, its runs as given":
        {"zh": "模型权重训练时用的就是该测站天气预报存档中的各次原始预报"},
    # what a foreign_id note says where the station's import or the checkpoint does not name its source
    "a file": {"zh": "某个文件"},
    "built-in data": {"zh": "内置数据"},
}


def said_value(value, lang: str):
    """A note's ``value`` as a sentence in ``lang`` says it (:data:`NOTES`)."""
    if isinstance(value, Note):
        return value.said_in(lang)
    if isinstance(value, (list, tuple)):
        return LIST_SEPARATOR.get(lang, ", ").join(str(v) for v in value)
    if isinstance(value, str):
        return PHRASES.get(value, {}).get(lang, value)
    return value


class Note(str):
    """A sentence of :data:`NOTES`: its English text that keeps its kind and values, so that a reader can be told
    it in another language (:meth:`said_in`). Subclasses say the sentences of another ``catalog`` (the service's
    own messages, :mod:`sca2lstm.serve.messages`)."""

    catalog = NOTES

    def __new__(cls, kind: str, /, **values):
        return cls._of(cls.catalog[kind]["en"].format(**{k: said_value(v, "en") for k, v in values.items()}), kind,
                       values)

    @classmethod
    def _of(cls, text: str, kind: str, values: dict):
        self = super().__new__(cls, text)
        self.kind, self.values = kind, values
        return self

    def __reduce__(self):
        # a forecast's notes come back from the model's worker processes: pickled by text, kind and values
        return type(self)._of, (str(self), self.kind, self.values)

    def said_in(self, lang: str) -> str:
        """The sentence in ``lang`` (a value that is itself a :class:`Note`, a list or a phrase of :data:`PHRASES`
        is said in it too); its English text where the catalog has no ``lang``, or no longer says this kind with
        these values (a note stored by an earlier version)."""
        template = self.catalog.get(self.kind, {}).get(lang)
        if lang == "en" or template is None:
            return str(self)
        values = {k: said_value(v, lang) for k, v in self.values.items()}
        try:
            return template.format(**values)
        except (KeyError, IndexError, ValueError, TypeError):
            return str(self)

    def record(self) -> dict:
        """The note as it is stored (JSON): its English text, kind and values (a value that is itself a note as
        its record, so that it is said in another language when read back too)."""
        return {"text": str(self), "kind": self.kind,
                "values": {k: v.record() if isinstance(v, Note) else v for k, v in self.values.items()}}


def note_value(value):
    """``value`` as a note keeps it: a :class:`Note` as it is (said in the reader's language too, as a weather forecast
    or archive named by a note), anything else as its text."""
    return value if isinstance(value, Note) else str(value)


def note_of(stored) -> str:
    """A note as :meth:`Note.record` stored it (its English text is kept as stored), or a plain ``str`` (a note
    without a kind, one stored before notes had kinds) as it is."""
    if isinstance(stored, dict) and isinstance(stored.get("text"), str):
        if stored.get("kind") in NOTES and isinstance(stored.get("values"), dict):
            values = {k: note_of(v) if isinstance(v, dict) else v for k, v in stored["values"].items()}
            return Note._of(stored["text"], stored["kind"], values)
        return stored["text"]
    return str(stored)


def note_record(note) -> dict | str:
    """How ``note`` is stored: :meth:`Note.record` for a :class:`Note`, a plain ``str`` as it is."""
    return note.record() if isinstance(note, Note) else str(note)
