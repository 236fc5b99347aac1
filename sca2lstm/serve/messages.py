"""What the service's error answers say to a client: one line, without the server's file paths.

The errors of the library name the files they read by their full path, which helps whoever runs the
service (the log keeps them whole) but tells a client how the server's disk is laid out. An answer
names the file by its name alone.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..notes import Note

# An absolute path of two or more parts (not a URL's, a unit's "m3/s" or one of the service's own addresses, which
# the answers may name: "/stations/32006/levels"): the name of its last part is kept.
_ABS_PATH = re.compile(r"(?<![\w.~:/-])(?!/(?:stations|warnings|alerts|daily_issue|health|docs|openapi)\b)"
                       r"(?:/[^\s/'\"()\[\];,]+)+/([^\s/'\"()\[\];,]+)")


def one_line(text) -> str:
    """``text`` on one line (runs of white space, newlines included, as one space)."""
    return " ".join(str(text).split())


def public_detail(text) -> str:
    """``text`` as a client may read it: on one line, each absolute file path cut to its file name."""
    return _ABS_PATH.sub(lambda m: m.group(1), one_line(text))


def in_data_folder(note, folder):
    """A forecast's ``note`` (a :class:`~sca2lstm.notes.Note`, or its text) with each file of the data folder
    ``folder`` named by its path in that folder (``weather_archive/32006.csv``), as the service stores and answers
    it: the library's notes name a file by the path it was read from (the CLI's lines by the one the user gave), which
    on a server tells a reader of the page, even an anonymous one, how its disk is laid out. A note's values are
    renamed, its sentence said again from them, so that it is still said in every language."""
    if isinstance(note, Note):
        return type(note)(note.kind, **{k: in_data_folder(v, folder) for k, v in note.values.items()})
    if isinstance(note, str):
        # the folder as given and as resolved: the worker may read it by either
        for prefix in dict.fromkeys((str(Path(folder)), str(Path(folder).resolve()))):
            note = note.replace(prefix.rstrip(os.sep) + os.sep, "")
        return note
    if isinstance(note, (list, tuple)):
        return type(note)(in_data_folder(v, folder) for v in note)
    return note


#: What the service says to a person, in each language of the page (:data:`~.page.LANGUAGES`): kind -> language ->
#: template. English is what the API says by default; the values (names, days, numbers, a reader's own line) are
#: the same in every language.
MESSAGES = {
    "unknown_station": {"en": "station: unknown station {station!r}; available: {shown}",
                        "zh": "测站：未知测站 {station!r}；可用的测站：{shown}"},
    "station_unreadable": {"en": "station {station}: its data cannot be read ({reason})",
                           "zh": "测站 {station}：数据无法读取（{reason}）"},
    "meta_unwritable": {"en": "station {station}: its metadata file cannot be written ({reason}); it is unchanged",
                        "zh": "测站 {station}：元数据文件无法写入（{reason}）；文件保持不变"},
    "issue_outside": {"en": "issue_date: {day} is outside the station's data ({first} .. {last})",
                      "zh": "发布日：{day} 不在该测站的数据范围内（{first} .. {last}）"},
    "too_many_leads": {"en": "leads: {leads} is more than the {most} lead days this model forecasts",
                       "zh": "预见期：{leads} 天超过了该模型可预报的 {most} 天"},
    "worker_stopped": {"en": "forecast: a model worker stopped; the service must be restarted",
                       "zh": "预报：一个模型工作进程已停止；需要重启服务"},
    "wrong_token": {"en": "authorization: wrong token", "zh": "授权：令牌错误"},
    "missing_token": {"en": "authorization: missing token; send 'Authorization: Bearer <token>'",
                      "zh": "授权：缺少令牌；请发送 'Authorization: Bearer <令牌>'"},
    "writes_off": {"en": "authorization: writes are off (the server was started without a token)",
                   "zh": "授权：写入已关闭（服务启动时没有设置令牌）"},
    "rate": {"en": "rate: over {limit} requests a minute from this client without the token; retry in {wait} s",
             "zh": "请求频率：未持令牌的客户端每分钟超过 {limit} 次请求；请在 {wait} 秒后重试"},
    "unusual_flow": {"en": "observations: discharge {flow:g} m3/s on {day} is {times} times the largest flow of the "
                           "station's record ({top:g} m3/s); a typo or another unit? If the river really ran so high, "
                           "post it again with ?unusual=true",
                     "zh": "观测：{day} 的流量 {flow:g} m3/s 是该测站记录最大流量（{top:g} m3/s）的 {times} 倍；是输入错误"
                           "还是单位不同？如果河流确实涨得这么高，请加上 ?unusual=true 再次上报"},
    "unusual_stage": {"en": "observations: water level {stage:g} m on {day} gives {flow:g} m3/s by the station's rating "
                            "curve, {times} times the largest flow of its record ({top:g} m3/s, a water level of "
                            "{top_stage:g} m); a water level in cm or dm? Post it in metres. If the river really stood "
                            "so high, post it again with ?unusual=true",
                      "zh": "观测：{day} 的水位 {stage:g} m 按该测站水位流量关系换算为 {flow:g} m3/s，是记录最大流量（{top:g} "
                            "m3/s，水位 {top_stage:g} m）的 {times} 倍；是否按厘米或分米填写了？水位请以米为单位上报。如果水位"
                            "确实这么高，请加上 ?unusual=true 再次上报"},
    "no_rating_curve": {"en": "observations: station {station} has no rating curve (its metadata file) to convert the "
                              "stage of {day} with; post its discharge in m3/s",
                        "zh": "观测：测站 {station} 没有水位流量关系曲线（元数据文件中），无法换算 {day} 的水位；请上报流量（m3/s）"},
    "pet_without_column": {"en": "observations: pet on {day}: station {station}'s file has no PET column (pet or peti), "
                                 "so the PET its models read over its whole record is derived from its temperature "
                                 "(Oudin PET); a posted pet would be PET of another kind on the posted days alone. Post "
                                 "the days without pet (their temperature gives their PET), or give the station's file a "
                                 "pet column over its whole record",
                           "zh": "观测：{day} 的 pet：测站 {station} 的数据文件没有潜在蒸散发列（pet 或 peti），其模型在整个记录中"
                                 "读取由气温推算的潜在蒸散发（Oudin 公式）；上报的 pet 只在上报的几天是另一种潜在蒸散发。请去掉 pet "
                                 "再上报（由气温推算），或在该测站的数据文件中为整个记录加入 pet 列"},
    "stage_extrapolated": {"en": "observations: water level {stage:g} m on {day} lies above the rating curve's highest "
                                 "gauged stage ({top:g} m): its discharge, {flow:g} m3/s, is extrapolated",
                           "zh": "观测：{day} 的水位 {stage:g} m 高于水位流量关系曲线的最高实测水位（{top:g} m）：其流量 "
                                 "{flow:g} m3/s 为外延所得"},
    "stage_below_zero_flow": {"en": "observations: water level {stage:g} m on {day} lies below the rating curve's "
                                    "zero-flow stage ({h0:g} m): stored as zero flow (the station was imported with "
                                    "--below_h0 zero)",
                              "zh": "观测：{day} 的水位 {stage:g} m 低于水位流量关系曲线的断流水位（{h0:g} m）：按流量 0 存储"
                                    "（该测站导入时用了 --below_h0 zero）"},
    "stage_off_curve": {"en": "observations: stage on {day}: {reason}",
                        "zh": "观测：{day} 的水位：{reason}"},
    "unforeseen": {"en": "internal error ({error}); the server's log has the details",
                   "zh": "内部错误（{error}）；详情见服务器日志"},
    "no_weather_stored": {"en": "weather_archive: no weather forecast is stored for station {station}; post one (POST "
                                "/stations/{station}/weather) or name a weather source in its metadata file for the "
                                "daily issue to fetch",
                          "zh": "天气预报存档：测站 {station} 没有已存储的天气预报；请上报一份（POST /stations/{station}/weather），"
                                "或在其元数据文件中设置天气来源，由每日发布自动获取"},
    "weather_content_type": {"en": "Content-Type: {ctype} is not read; post a weather forecast as application/json "
                                   "(a saved Open-Meteo answer) or text/csv (a table)",
                             "zh": "Content-Type：无法读取 {ctype}；天气预报请以 application/json（保存的 Open-Meteo 结果）"
                                   "或 text/csv（表格）上报"},
    "json_content_type": {"en": "Content-Type: {ctype} is not read here; send the body as JSON with Content-Type: "
                                "application/json (curl: -H \"Content-Type: application/json\")",
                          "zh": "Content-Type：此处无法读取 {ctype}；请以 JSON 发送请求体，并设置 Content-Type: application/json"
                                "（curl：-H \"Content-Type: application/json\"）"},
    "of_station": {"en": "station {station}: {text}", "zh": "测站 {station}：{text}"},
    # a request the service cannot read (FastAPI's validation, app.py): one part per refused field or value, in a
    # frame of the reader's language around the field's name, what is wrong (pydantic's words, in Chinese where
    # :data:`VALIDATION_WORDS` has them) and the value sent
    "invalid_field": {"en": "{where}: {msg}{got}", "zh": "字段 {where}：{msg}{got}"},
    "invalid_body": {"en": "body: {msg}{got}", "zh": "请求体：{msg}{got}"},
    "invalid_got": {"en": " (got {shown})", "zh": "（收到的值：{shown}）"},
    "malformed_json": {"en": "body: malformed JSON at character {at} ({error})",
                       "zh": "请求体：JSON 格式错误，位于第 {at} 个字符（{error}）"},
    "unknown_field": {"en": "unknown field; allowed: {allowed}", "zh": "未知字段；可用字段：{allowed}"},
    "unknown_query": {"en": "{name}: unknown query parameter; allowed: {allowed}",
                      "zh": "{name}：未知的查询参数；可用参数：{allowed}"},
    "unknown_query_none": {"en": "{name}: unknown query parameter; allowed: none",
                           "zh": "{name}：未知的查询参数；该地址不接受查询参数"},
    # the daily issue's alerts (serve/notify.py), in the language of --alert_language
    "alert_subject": {"en": "sca2lstm: {n} warning change(s) on {day}: {changes}{more}{again}",
                      "zh": "sca2lstm：{day} 预警变化 {n} 项：{changes}{more}{again}"},
    "alert_subject_more": {"en": " ...", "zh": " 等"},
    "alert_subject_again": {"en": " (sent again)", "zh": "（重发）"},
    "alert_heading": {"en": "Daily issue of {day} ({issued_at}):", "zh": "{day} 每日预报发布（{issued_at}）："},
    "alert_end": {"en": "station {station}: the {from_level} warning ends{again}",
                  "zh": "测站 {station}：{from_level}级预警解除{again}"},
    "alert_change": {"en": "station {station}: {to_level} ({value:.1f} m3/s{stage}) {what}, from {valid_date} (day "
                           "{first_lead} of the forecast){probability}{stale}{again}",
                     "zh": "测站 {station}：{to_level}级（{value:.1f} m3/s{stage}）{what}，自 {valid_date} 起（预见期第 "
                           "{first_lead} 天）{probability}{stale}{again}"},
    "alert_start": {"en": "starts", "zh": "预警开始"},
    "alert_rise": {"en": "rises from {from_level}", "zh": "预警由{from_level}级升级"},
    "alert_fall": {"en": "falls from {from_level}", "zh": "预警由{from_level}级降级"},
    "alert_stage": {"en": ", water level {stage:g} m", "zh": "，水位 {stage:g} m"},
    "alert_probability": {"en": ", probability {p:.0%}", "zh": "，超过概率 {p:.0%}"},
    "alert_stale": {"en": "; ON OLD DATA: the last observed flow is of {issue_date}, {age} days ago",
                    "zh": "；注意：依据的是旧数据，最近一次实测流量为 {issue_date}，已过 {age} 天"},
    "alert_again": {"en": "; SENT AGAIN: it had not reached every receiver when first sent",
                    "zh": "；重发：首次发送时未送达所有接收方"},
}

#: How the parts of one refused request are joined, in each language.
PART_SEPARATOR = {"en": "; ", "zh": "；"}

#: What pydantic says of a refused value, by its error ``type``, in Chinese (templates of the error's ``ctx``); a
#: type not here, or the service's own checks (``value_error``, whose words name the allowed range), keep
#: pydantic's English words inside the Chinese frame.
VALIDATION_WORDS = {"zh": {
    "missing": "缺少必填字段",
    "int_parsing": "应为整数，无法将该字符串解析为整数",
    "int_type": "应为整数",
    "int_from_float": "应为整数，不能有小数部分",
    "float_parsing": "应为数值，无法将该字符串解析为数值",
    "float_type": "应为数值",
    "finite_number": "应为有限数值",
    "bool_parsing": "应为布尔值（true 或 false）",
    "bool_type": "应为布尔值",
    "string_type": "应为字符串",
    "date_from_datetime_parsing": "应为有效日期（YYYY-MM-DD）：{error}",
    "date_parsing": "应为有效日期（YYYY-MM-DD）：{error}",
    "date_type": "应为有效日期（YYYY-MM-DD）",
    "list_type": "应为列表",
    "dict_type": "应为对象",
    "model_type": "应为对象",
    "enum": "应为 {expected}",
    "literal_error": "应为 {expected}",
    "greater_than": "应大于 {gt}",
    "greater_than_equal": "应大于或等于 {ge}",
    "less_than": "应小于 {lt}",
    "less_than_equal": "应小于或等于 {le}",
    "string_pattern_mismatch": "不符合要求的格式 {pattern}",
}}


def validation_words(error: dict, lang: str) -> str:
    """What pydantic's ``error`` (one of :meth:`RequestValidationError.errors`) says is wrong, in ``lang`` where
    :data:`VALIDATION_WORDS` has its type, else pydantic's English (without its "Value error, ")."""
    english = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    template = VALIDATION_WORDS.get(lang, {}).get(error.get("type"))
    if template is None:
        return english
    ctx = {k: str(v).replace(" or ", " 或 ") for k, v in (error.get("ctx") or {}).items()}
    try:
        return template.format(**ctx)
    except (KeyError, IndexError, ValueError):
        return english


#: The words of a warning's change in an alert's subject (the webhook's ``change`` stays the code).
CHANGE_WORDS = {"en": {}, "zh": {"start": "开始", "rise": "升级", "fall": "降级", "end": "解除"}}
#: The usual level names in words (``alert=45.0,danger=80.0``: 警戒, 保证; ``q20y``: 20年一遇); other names, a
#: station's own, are said as they are named.
LEVEL_WORDS = {"en": {}, "zh": {"alert": "警戒", "danger": "保证"}}
#: A return-period level ``q{n}y`` in words (the page says them so too: page.SCRIPT_TEXT).
RETURN_PERIOD_WORDS = {"zh": "{n}年一遇"}
_RETURN_PERIOD = re.compile(r"^q(\d+)y$")


def level_word(name, lang: str) -> str:
    """The level ``name`` as an alert in ``lang`` says it (:data:`LEVEL_WORDS`, :data:`RETURN_PERIOD_WORDS`)."""
    if lang in RETURN_PERIOD_WORDS and isinstance(name, str) and _RETURN_PERIOD.match(name):
        return RETURN_PERIOD_WORDS[lang].format(n=_RETURN_PERIOD.match(name).group(1))
    return LEVEL_WORDS.get(lang, {}).get(name, name)


class Message(Note):
    """A message of :data:`MESSAGES`: its English text (a ``str``, as logs and records keep it) that keeps its kind
    and values, so that an answer can say it in the language the request prefers (:meth:`said_in`), as a
    forecast's notes are said (:class:`~sca2lstm.notes.Note`)."""

    catalog = MESSAGES


def said_in(text, lang: str) -> str:
    """``text`` in ``lang`` where it is a :class:`Message` or a forecast's :class:`~sca2lstm.notes.Note`, else as it
    is; for a client (:func:`public_detail`)."""
    return public_detail(text.said_in(lang) if isinstance(text, Note) else text)
