"""The service's page in the reader's language: English, or Chinese when the browser asks for ``zh``.

``static/index.html`` holds ``{{key}}`` placeholders; :func:`render_page` fills them from :data:`TEXT` for
the language :func:`choose_language` picks from the ``Accept-Language`` header, and embeds the strings the
script writes itself (as JSON, in ``<script id="i18n">``).
"""

from __future__ import annotations

import html
import json
import re
from functools import lru_cache
from pathlib import Path

from ..evaluation.operational import FORECAST_FLAG, OBSERVED_FLAG_LABEL  # the attention charts' label of the flag
from ..evaluation.operational import input_words
from ..evaluation.settings import SETTING_ISSUE, SETTING_WEATHER
from ..words import say
from .messages import LEVEL_WORDS, RETURN_PERIOD_WORDS
from .notify import STALE_DAYS

STATIC_DIR = Path(__file__).resolve().parent / "static"
LANGUAGES = ("en", "zh")

TEXT = {
    "en": {
        "lang": "en", "title": "sca2lstm forecast service", "heading": "River-flow forecast", "station": "Station",
        "issue_day": "Issue day", "issue_day_hint": "empty: the latest day with data", "days_ahead": "Days ahead",
        "warnings": "Warnings", "chart_title": "Observed flow and forecast",
        "chart_label": "observed discharge, forecast fan and warning levels", "observed": "observed (m³/s)",
        "observed_after": "observed after the issue day", "median": "forecast median", "levels": "warning levels",
        "forecast": "Forecast", "day": "Day", "lead": "Lead", "median_short": "Median", "warning": "Warning",
        "stage_col": "Water level (m)",
        "flows_note": "Flows in m³/s, daily means, and so are the warning levels: a 20-year level (q20y) is lower "
                      "than the instantaneous 20-year peak. A day warns on a level when the chance of a flow above it "
                      "reaches the level's warning probability.",
        "weights": "What the model looked at on the issue day", "post": "Post observations", "rain": "Rain (mm)",
        "temperature": "Temperature (°C)", "flow": "Flow (m³/s)",
        "stage": "or water level (m; a station with a rating curve)", "token": "Token", "post_button": "Post",
        "verification": "Issued forecasts against what was observed", "issued_for": "Issued for",
        "observed_col": "Observed", "api_docs": "API documentation",
    },
    "zh": {
        "lang": "zh-CN", "title": "sca2lstm 径流预报服务", "heading": "河道流量预报", "station": "测站",
        "issue_day": "发布日", "issue_day_hint": "留空：最近有数据的一天", "days_ahead": "预见期（天）",
        "warnings": "预警", "chart_title": "实测流量与预报", "chart_label": "实测流量、预报区间与预警水平",
        "observed": "实测（m³/s）", "observed_after": "发布日之后的实测", "median": "预报中位数",
        "levels": "预警流量", "forecast": "预报", "day": "日期", "lead": "预见期", "median_short": "中位数",
        "stage_col": "水位（m）",
        "warning": "预警", "flows_note": "流量单位 m³/s，均为日平均流量，预警流量亦然：20 年一遇流量（q20y）低于同重现期的瞬时洪峰流量。"
                      "当超过某预警流量的概率达到该级别的预警概率时，该日发出预警。",
        "weights": "发布日模型关注的输入", "post": "上报观测", "rain": "降水（mm）", "temperature": "气温（°C）",
        "flow": "流量（m³/s）", "stage": "或水位（m，有水位流量关系曲线的测站）", "token": "令牌", "post_button": "上报", "verification": "已发布预报与实测对比",
        "issued_for": "发布日", "observed_col": "实测", "api_docs": "API 文档",
    },
}

# The names of the model's inputs beside the attention bars, in words (the identifier of the config and the docs is
# each bar's tooltip). English takes the words of the CLI's attention charts (operational.input_words), so a page and
# a chart of the same forecast name an input alike; the weather-forecast flag is said to be 0 there, as the charts
# say: the bars are of the issue day, whose weather is observed. "discharge_lag{n}" is written with "lag_flow".
FEATURE_TEXT = {
    "en": {**input_words(), FORECAST_FLAG: OBSERVED_FLAG_LABEL},
    "zh": {"precipitation": "降水", "pet": "潜在蒸散发", "peti": "潜在蒸散发（含截留）", "temperature": "气温",
           "humidity": "湿度", "shortwave_rad": "短波辐射", "longwave_rad": "长波辐射", "windspeed": "风速",
           "precip_sum_7d": "近 7 日累计降水", "precip_sum_30d": "近 30 日累计降水",
           "high_precip_days": "连续强降水日数", "low_precip_days": "连续少雨日数",
           "doy_sin": "年内日序（正弦）", "doy_cos": "年内日序（余弦）", "ssi": "流量状态指数（SSI）",
           FORECAST_FLAG: "天气预报标记（= 0：实测天气）"},
}

# Strings the script writes (statuses, table cells, the warnings list, the inputs' and settings' names).
SCRIPT_TEXT = {
    "en": {"loading": "Loading", "issued_for": "Forecast issued for", "station": "Station",
           "chart_title": "observed flow and forecast", "from_cache": "from the cache", "data_version": "data version",
           "no_warning": "no warning", "warns": "warning", "from_lead": "from lead", "old_data": "data {d} days old", "no_levels": "no levels",
           "stored": "Stored {n} day(s); data version {v}.", "none": "No station is warned.",
           "none_other": "No other station is warned.", "not_forecast": "could not be forecast",
           "unreachable": "The forecast service cannot be reached", "input_missing": "missing",
           "weather": "with the weather forecast issued {d} ({m} member(s))",
           "features": FEATURE_TEXT["en"], "lag_flow": "observed discharge {n} day(s) earlier, m³/s", "settings": {},
           "levels_off": "(not drawn, far above this chart: {l})",
           "water_level": "water level {h} m",
           "comma": ", ", "stop": ". ", "paren": " ({s})"},
    "zh": {"loading": "正在加载", "issued_for": "预报发布日", "station": "测站", "chart_title": "实测流量与预报",
           "from_cache": "来自缓存", "data_version": "数据版本", "no_warning": "无预警", "warns": "预警",
           "from_lead": "起始预见期", "old_data": "数据已过 {d} 天", "no_levels": "无预警流量", "stored": "已保存 {n} 天；数据版本 {v}。",
           "none": "目前没有测站发出预警。", "none_other": "其他测站没有预警。", "not_forecast": "无法预报",
           "unreachable": "无法连接预报服务", "input_missing": "缺测",
           "weather": "采用 {d} 发布的天气预报（{m} 个成员）",
           "features": FEATURE_TEXT["zh"], "lag_flow": "{n} 天前的实测流量",
           "settings": {SETTING_ISSUE: "仅用发布时已知的数据", SETTING_WEATHER: "发布时已知的数据与天气预报"},
           "levels_off": "（远高于图中流量，未画出：{l}）",
           "water_level": "水位 {h} m",
           "comma": "，", "stop": "。", "paren": "（{s}）"},
}
# The levels' names as the alert mails say them (messages.level_word: alert 警戒, danger 保证, q20y 20年一遇); a
# station's own names, and every name in English, as they are named. The JSON keeps the names.
# The chart's water-level axis (a station with a rating curve) is named as the CLI's fan chart names it.
for _lang in LANGUAGES:
    SCRIPT_TEXT[_lang].update(level_words=LEVEL_WORDS.get(_lang, {}),
                              return_period=RETURN_PERIOD_WORDS.get(_lang, "q{n}y"), stage_axis=say("fan_stage", _lang))

_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
_RANGE = re.compile(r"^\s*([A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*|\*)\s*(?:;\s*q\s*=\s*([0-9.]+))?\s*$")


def choose_language(accept_language: str | None) -> str:
    """The language of :data:`LANGUAGES` the ``Accept-Language`` header prefers (by its q-values), else ``en``."""
    best, best_q = "en", 0.0
    for part in (accept_language or "").split(","):
        m = _RANGE.match(part)
        if not m:
            continue
        try:
            q = float(m.group(2)) if m.group(2) is not None else 1.0
        except ValueError:
            continue
        primary = m.group(1).split("-")[0].lower()
        if primary in LANGUAGES and q > best_q:  # ties keep the earlier range, as the header orders them
            best, best_q = primary, q
    return best


def lead_options(max_leads: int) -> str:
    """The page's choice of lead days: 1, 3 and 7 up to what the model forecasts, and that; 7 (or the most) chosen."""
    days = sorted({d for d in (1, 3, 7) if d <= max_leads} | {max_leads})
    pick = min(7, max_leads)
    return "".join(f"<option{' selected' if d == pick else ''}>{d}</option>" for d in days)


@lru_cache(maxsize=4 * len(LANGUAGES))
def render_page(lang: str, max_leads: int = 7) -> str:
    """``index.html`` in ``lang``, offering the lead days the model forecasts (1..``max_leads``)."""
    text = {k: html.escape(v) for k, v in TEXT[lang].items()}
    text["lead_options"] = lead_options(max_leads)
    # The JSON sits inside <script>: "</" is escaped so no string can close the element.
    # the page marks a warning on old data as the alerts do (notify.STALE_DAYS)
    text["js_text"] = json.dumps({**SCRIPT_TEXT[lang], "stale_days": STALE_DAYS},
                                 ensure_ascii=False).replace("</", "<\\/")
    template = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    return _PLACEHOLDER.sub(lambda m: text[m.group(1)], template)
