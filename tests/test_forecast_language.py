"""``sca2lstm forecast --language``: what a forecast says to a person in Chinese, its numbers and files unchanged."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from sca2lstm.cli.main import main
from sca2lstm.evaluation import plots
from sca2lstm.evaluation.report import _png_title

# Where a test stands a Latin font in for a Chinese one (this machine may have none), matplotlib warns once per
# Chinese glyph it cannot draw: the words are what is checked here, not the pixels.
pytestmark = pytest.mark.filterwarnings(r"ignore:Glyph \d+ .* missing from font:UserWarning")

ISSUE = "1976-06-15"
#: the figures and days of a sentence: what a Chinese sentence must hold as the English one does
_FIGURES = re.compile(r"\d{4}-\d{2}-\d{2}|\d+(?:\.\d+)?%?")


def _forecast(ckpt, data_dir, out, *extra):
    return main(["forecast", "--model", str(ckpt), "--basin", "32006", "--data_dir", str(data_dir),
                 "--output_dir", str(out), "--issue_date", ISSUE, "--format", "json", *extra])


def _levels(data_dir) -> str:
    """A level the river is already above on the issue date (the sentence's second part) and two it may cross."""
    flows = pd.read_csv(next(data_dir.rglob("*32006*.csv")), index_col="date")["discharge_vol"]
    return f"low={float(flows[ISSUE]) * 0.9:.4f},alert=3.0,danger=6.0"


def _charts(monkeypatch) -> list:
    """Record each chart's title, y-axis label and legend as it is saved."""
    seen = []
    save = plots._save

    def recording(fig, path):
        ax = fig.axes[0]
        legend = ax.get_legend()
        seen.append({"name": path.name, "title": ax.get_title(), "ylabel": ax.get_ylabel(),
                     "legend": [t.get_text() for t in legend.get_texts()] if legend else []})
        return save(fig, path)

    monkeypatch.setattr(plots, "_save", recording)
    return seen


@pytest.mark.slow
def test_zh_says_the_english_forecast_in_chinese_with_the_same_numbers(pretrained_ckpt, tiny_data_dir, tmp_path,
                                                                         capsys, monkeypatch):
    levels = _levels(tiny_data_dir)
    assert _forecast(pretrained_ckpt, tiny_data_dir, tmp_path / "en", "--warning_levels", levels) == 0
    en_out = capsys.readouterr().out
    monkeypatch.setattr(plots, "cjk_font", lambda: None)   # a machine without a Chinese font
    assert _forecast(pretrained_ckpt, tiny_data_dir, tmp_path / "zh", "--warning_levels", levels,
                     "--language", "zh") == 0
    zh_out = capsys.readouterr().out
    en, zh = (next((tmp_path / lang).iterdir()) for lang in ("en", "zh"))
    en_text, zh_text = ((f / "warnings.txt").read_text(encoding="utf-8") for f in (en, zh))
    assert en_text.startswith("Basin 32006: warning for ") and "Observed on" in en_text   # both parts said
    assert zh_text.startswith("测站 32006：预警 ") and "实测流量" in zh_text and "已超过 low" in zh_text, zh_text
    assert _FIGURES.findall(zh_text) == _FIGURES.findall(en_text), (en_text, zh_text)
    for name in ("low", "alert", "danger"):   # level names as given
        assert en_text.count(name) == zh_text.count(name)
    # the sentence and each level's line printed in Chinese, with the English line's probabilities
    assert zh_text.strip() in zh_out and en_text.strip() in en_out
    for name in ("low", "alert", "danger"):
        en_line = next(line for line in en_out.splitlines() if line.lstrip().startswith(f"{name}:"))
        zh_line = next(line for line in zh_out.splitlines() if line.lstrip().startswith(f"{name}:"))
        assert "各预见期超过概率（* 为预警）" in zh_line and "by lead" not in zh_line
        assert en_line.split("(* warns) ")[1] == zh_line.split("（* 为预警）")[1]
    # what machines read is the same, in English
    assert (en / "forecast.csv").read_bytes() == (zh / "forecast.csv").read_bytes()
    assert (en / "levels.json").read_bytes() == (zh / "levels.json").read_bytes()
    en_json, zh_json = (json.loads((f / "forecast.json").read_text(encoding="utf-8")) for f in (en, zh))
    assert en_json["forecast"] == zh_json["forecast"] and list(en_json) == list(zh_json)
    # the report's forecast section in Chinese, the sentence in it
    report = (zh / "report.html").read_text(encoding="utf-8")
    assert '<html lang="en">' in report and '<section id="forecast" lang="zh"><h2>业务预报</h2>' in report and zh_text.strip() in report
    assert "<th>预警概率</th>" in report and "warning probability</th>" not in report
    # no Chinese font: the fan chart keeps its English words, and one printed line says why
    assert _png_title(zh / "forecast_fan_chart.png") == _png_title(en / "forecast_fan_chart.png")
    assert _png_title(en / "forecast_fan_chart.png").startswith("Basin 32006: forecast issued")
    assert sum("matplotlib 未找到中文字体" in line for line in zh_out.splitlines()) == 1
    assert "中文字体" not in en_out


@pytest.mark.slow
def test_zh_fan_chart_is_chinese_where_matplotlib_has_a_chinese_font(pretrained_ckpt, tiny_data_dir, tmp_path,
                                                                      capsys, monkeypatch):
    from matplotlib import font_manager

    seen = _charts(monkeypatch)
    # a font matplotlib knows stands for the Chinese one this machine may lack: the words chosen are checked
    monkeypatch.setattr(plots, "cjk_font", lambda: font_manager.fontManager.ttflist[0].name)
    assert _forecast(pretrained_ckpt, tiny_data_dir, tmp_path, "--warning_levels", "alert=3.0",
                     "--language", "zh") == 0
    assert "中文字体" not in capsys.readouterr().out
    fan = next(s for s in seen if s["name"] == "forecast_fan_chart.png")
    assert fan["title"] == f"测站 32006：{ISSUE} 发布的预报（issue-time）" and fan["ylabel"] == "流量 (m³/s)"
    assert {"实测", "预报中位数", "发布日"} <= set(fan["legend"]) and "90 % 区间" in fan["legend"], fan
    assert _png_title(next(tmp_path.iterdir()) / "forecast_fan_chart.png") == fan["title"]


def test_chart_language_is_english_without_a_chinese_font(monkeypatch):
    monkeypatch.setattr(plots, "cjk_font", lambda: None)
    assert plots.chart_language("zh") == "en" and plots.chart_language("en") == "en"
    monkeypatch.setattr(plots, "cjk_font", lambda: "Noto Sans CJK SC")
    assert plots.chart_language("zh") == "zh"


def test_cjk_font_is_one_matplotlib_knows(monkeypatch):
    from matplotlib import font_manager

    known = [font_manager.FontEntry(name="DejaVu Sans"), font_manager.FontEntry(name="WenQuanYi Zen Hei"),
             font_manager.FontEntry(name="Noto Sans CJK SC")]
    monkeypatch.setattr(font_manager.fontManager, "ttflist", known)
    assert plots.cjk_font() == "Noto Sans CJK SC"   # the first of the preferred, not the first listed
    monkeypatch.setattr(font_manager.fontManager, "ttflist", known[:1])
    assert plots.cjk_font() is None


@pytest.mark.slow
def test_default_language_is_english(pretrained_ckpt, tiny_data_dir, tmp_path, capsys):
    assert _forecast(pretrained_ckpt, tiny_data_dir, tmp_path / "default", "--warning_levels", "alert=3.0") == 0
    default = re.sub(r"\d+ ms", "", capsys.readouterr().out.replace(str(tmp_path / "default"), "OUT"))
    assert _forecast(pretrained_ckpt, tiny_data_dir, tmp_path / "en", "--warning_levels", "alert=3.0",
                     "--language", "en") == 0
    assert re.sub(r"\d+ ms", "", capsys.readouterr().out.replace(str(tmp_path / "en"), "OUT")) == default
    a, b = (next((tmp_path / d).iterdir()) for d in ("default", "en"))
    assert (a / "warnings.txt").read_bytes() == (b / "warnings.txt").read_bytes()
    assert (a / "warnings.txt").read_text(encoding="utf-8").startswith("Basin 32006: ")
    assert '<html lang="en">' in (a / "report.html").read_text(encoding="utf-8")
    assert "\nBasin 32006: forecast issued" in default


def test_an_unknown_language_is_refused(pretrained_ckpt, tiny_data_dir, tmp_path, capsys):
    assert _forecast(pretrained_ckpt, tiny_data_dir, tmp_path, "--language", "fr") == 2
    err = capsys.readouterr().err
    # argparse's own line (how it quotes the choices depends on the Python version)
    assert len(err.splitlines()) == 1 and re.search(r"--language: invalid choice: 'fr' \(choose from '?en'?, '?zh'?\)",
                                                    err), err
    assert not tmp_path.joinpath("basin_32006_issued_1976-06-15").exists()


@pytest.mark.slow
def test_zh_says_the_notes_printed_in_chinese_and_keeps_them_english_in_the_record(pretrained_ckpt, tiny_data_dir,
                                                                                      tmp_path, capsys):
    # an issue date in the model's training years: the forecast notes that its days are in-sample
    argv = ["forecast", "--model", str(pretrained_ckpt), "--basin", "32006", "--data_dir", str(tiny_data_dir),
            "--issue_date", "1974-06-15", "--format", "json"]
    assert main([*argv, "--output_dir", str(tmp_path / "en")]) == 0
    en_out = capsys.readouterr().out
    assert main([*argv, "--output_dir", str(tmp_path / "zh"), "--language", "zh"]) == 0
    zh_out = capsys.readouterr().out
    assert "this forecast is in-sample, not a test" in en_out
    assert "本预报属于样本内，不是检验" in zh_out and "in-sample, not a test" not in zh_out
    said = next(line for line in zh_out.splitlines() if "样本内" in line)
    assert "1974-06-16..1974-06-22" in said
    notes = json.loads(next((tmp_path / "zh").iterdir()).joinpath("forecast.json").read_text())["data"]["notes"]
    assert any("this forecast is in-sample, not a test" in n for n in notes)   # the record stays English


@pytest.mark.slow
def test_zh_reforecast_says_its_level_lines_in_chinese_with_the_same_counts(pretrained_ckpt, tiny_data_dir,
                                                                             tmp_path, capsys):
    argv = ["forecast", "--model", str(pretrained_ckpt), "--basin", "32006", "--data_dir", str(tiny_data_dir),
            "--warning_levels", "alert=3.0", "--from", "1976-06-01", "--to", "1976-06-10", "--quiet"]
    assert main([*argv, "--output_dir", str(tmp_path / "en")]) == 0
    en_out = capsys.readouterr().out
    assert main([*argv, "--output_dir", str(tmp_path / "zh"), "--language", "zh"]) == 0
    zh_out = capsys.readouterr().out
    warned = re.search(r"(\d+) warned \(issue date, lead\) pairs", en_out)
    assert warned and f"共 {warned.group(1)} 个（发布日, 预见期）预警" in zh_out, zh_out
    assert "测站 32006：1976-06-01..1976-06-10 共 10 个发布日" in zh_out
    a, b = (next((tmp_path / d).iterdir()) / "reforecast.csv" for d in ("en", "zh"))
    assert a.read_bytes() == b.read_bytes()


@pytest.mark.slow
def test_report_rebuilds_a_forecast_section_in_chinese(pretrained_ckpt, tiny_data_dir, tmp_path, capsys):
    assert _forecast(pretrained_ckpt, tiny_data_dir, tmp_path, "--warning_levels", "alert=3.0",
                     "--language", "zh") == 0
    folder = next(tmp_path.iterdir())
    assert main(["report", str(folder), "--quiet"]) == 0   # the default: English
    assert "<h2>Operational forecast</h2>" in (folder / "report.html").read_text(encoding="utf-8")
    assert main(["report", str(folder), "--quiet", "--language", "zh"]) == 0
    assert "<h2>业务预报</h2>" in (folder / "report.html").read_text(encoding="utf-8")


def test_zh_warning_sentence_and_level_lines_keep_water_levels_and_every_figure():
    """A station's levels given as water levels: the stage, the intervals and the no-warning sentence in Chinese
    hold the English ones' figures (pure functions: no model)."""
    from sca2lstm.cli.warnings_flags import level_line, rare_levels_note
    from sca2lstm.evaluation.levels import Level
    from sca2lstm.evaluation.reforecast import Warnings, warning_sentence

    levels = {"alert": Level("alert", 10.0, "user", stage=2.5, warn_probability=0.5),
              "danger": Level("danger", 20.0, "user", stage=3.2, warn_probability=0.5),
              "q2y": Level("q2y", 14.25, "glo, 1970-2000 (30 annual maxima)", ci=(12.125, 16.5),
                           warn_probability=0.5, extra={"warn_probability_by_lead": [0.3, 0.4]})}
    table = pd.DataFrame({"valid_date": pd.to_datetime(["2020-06-02", "2020-06-03"]),
                          **{f"p_exceed_{n}": [0.45, 0.62] for n in levels}})
    observed = (pd.Timestamp("2020-06-01"), 21.5)
    for first in ({"alert": 1, "danger": 2, "q2y": 2}, {n: 0 for n in levels}):
        en = warning_sentence("zhen-04", first, Warnings(levels), table, observed)
        zh = warning_sentence("zhen-04", first, Warnings(levels), table, observed, "zh")
        assert _FIGURES.findall(zh) == _FIGURES.findall(en), (en, zh)
        assert "已超过 danger、q2y、alert。" in zh and "above danger, q2y, alert." in en, (en, zh)
    assert zh.startswith("测站 zhen-04：预报未来 2 天不超过任何预警级（预警级：alert, danger, q2y）。"), zh
    zh_warned = warning_sentence("zhen-04", {"alert": 1, "danger": 2, "q2y": 0}, Warnings(levels), table, None, "zh")
    assert zh_warned == ("测站 zhen-04：预警 danger（20.0 m3/s，水位 3.2 m）自预见期第 2 天（2020-06-03）起，超过概率最高 62%；"
                         "alert（10.0 m3/s，水位 2.5 m）自预见期第 1 天（2020-06-02）起，超过概率最高 62%。"), zh_warned
    for name, lv in levels.items():
        en, zh = level_line(name, lv), level_line(name, lv, "zh")
        assert _FIGURES.findall(zh) == _FIGURES.findall(en) and zh.startswith(en[:20]), (en, zh)
    assert level_line("alert", levels["alert"], "zh") == "   alert:    10.000 m3/s（日均流量）（水位 2.5 m）"
    assert rare_levels_note({"q2y": levels["q2y"]}, "zh") == ["q10y、q20y：未给出；训练年份只有 30 个年最大值，至少需要 10 个"]


@pytest.mark.parametrize("font", [None, "DejaVu Sans"])
def test_fan_chart_words_follow_the_font_found(font, tmp_path, monkeypatch):
    """Every word a fan chart draws (the water-level axis, members and a level above the chart included) in
    Chinese where a font is found, in English where none is."""
    import numpy as np

    monkeypatch.setattr(plots, "cjk_font", lambda: font)
    texts = []
    save = plots._save

    def recording(fig, path):
        texts.extend(t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text")) if t.get_text())
        return save(fig, path)

    monkeypatch.setattr(plots, "_save", recording)
    days = pd.date_range("2020-05-01", periods=10)
    lead = pd.date_range("2020-05-11", periods=3)
    plots.plot_fan_chart(days, np.linspace(1, 2, 10), lead, [2.0, 2.2, 2.1], {"90 %": ([1, 1, 1], [3, 3, 3])},
                         tmp_path / "fan.png", title="t", levels={"alert": 2.5, "huge": 100.0},
                         members=np.array([[2.0, 2.1, 2.2], [1.9, 2.0, 2.3]]),
                         stage_axis=(lambda q: np.sqrt(np.maximum(q, 0)), lambda h: np.square(h)), language="zh")
    words = {"流量 (m³/s)", "水位 (m)，按水位流量关系", "实测", "90 % 区间", "2 个天气集合成员各自的中位数", "预报中位数", "发布日"}
    english = {"discharge (m$^3$/s)", "water level (m), by the rating curve", "observed", "90 % interval",
               "median of each of 2 weather members", "median forecast", "issue date"}
    assert (words if font else english) <= set(texts), texts
    assert not (english if font else words) & set(texts)
    above = next(t for t in texts if "huge 100.0" in t)
    assert above.startswith("超出图幅的预警级 (m³/s)：\n" if font else "levels above the chart (m$^3$/s):\n"), above


def _table(stage: bool, quantiles=("q05", "q95")) -> pd.DataFrame:
    t = pd.DataFrame({"valid_date": pd.to_datetime(["2020-06-02", "2020-06-03"]), "lead_days": [1, 2],
                      "median": [12.3456, 7.5], **{q: [1.25 + i, 30.125 + i] for i, q in enumerate(quantiles)}})
    if stage:
        t = t.assign(stage_median=[1.5, 1.25], **{f"stage_{q}": [0.75, 2.5] for q in quantiles})
    return t


@pytest.mark.parametrize("stage", [False, True])
@pytest.mark.parametrize("quantiles", [("q05", "q95"), ()])
def test_forecast_table_is_printed_as_before_in_english_and_aligned_in_chinese(stage, quantiles):
    from sca2lstm.cli.forecast import table_lines
    from sca2lstm.words import width

    t = _table(stage, quantiles)
    # the English table as forecast printed it before it had a language
    qcols, scols = list(quantiles), [c for c in ("stage_median", *(f"stage_{q}" for q in quantiles)) if c in t]
    before = [f"{'valid date':>10} {'lead':>4} {'median':>9} " + " ".join(f"{c:>9}" for c in qcols) + "   m3/s"]
    before += [f"{r['valid_date'].date()!s:>10} {int(r['lead_days']):4d} {r['median']:9.3f} "
               + " ".join(f"{r[c]:9.3f}" for c in qcols) for _, r in t.iterrows()]
    if scols:
        before.append(f"{'valid date':>10} {'lead':>4} " + " ".join(f"{c[6:]:>9}" for c in scols) + "   m (water level)")
        before += [f"{r['valid_date'].date()!s:>10} {int(r['lead_days']):4d} " + " ".join(f"{r[c]:9.3f}" for c in scols)
                   for _, r in t.iterrows()]
    assert table_lines(t, "en") == before
    zh = table_lines(t, "zh")
    assert zh[0].split()[:3] == ["预报日期", "预见期", "中位数"] and "valid date" not in "".join(zh)
    assert [line.split() for line in zh[1:3]] == [line.split() for line in before[1:3]]   # the same figures
    # each header ends where its column's figures end, on a terminal (a Chinese character takes two columns)
    rows = [(zh[0].removesuffix("   m3/s"), zh[1])] + ([(zh[3].removesuffix("   m（水位）"), zh[4])] if stage else [])
    for head, row in rows:
        ends = [m.end() for m in re.finditer(r"\S+", row)]
        assert [sum(width(c) for c in head[:m.end()]) for m in re.finditer(r"\S+", head)] == ends, (head, row)
    if stage:
        assert zh[3].endswith("   m（水位）") and [line.split() for line in zh[4:]] == [line.split() for line in before[4:]]


def test_ensemble_members_are_said_in_the_language():
    from sca2lstm.evaluation.operational import members_phrase

    assert members_phrase(3) == "the mixture over 3 weather members"
    assert members_phrase(3, True) == ("the mean of 3 weather members' point forecasts (a model without quantiles: "
                                       "no interval)")
    assert members_phrase(3, language="zh") == "3 个天气集合成员的混合分布"
    assert members_phrase(51, True, "zh") == "51 个天气集合成员点预报的平均值（模型不输出分位数：没有预报区间）"


@pytest.mark.slow
def test_zh_ensemble_forecast_heading_says_its_members_in_chinese(pretrained_ckpt, tiny_data_dir, tmp_path, capsys):
    from openmeteo_fixtures import ensemble_response

    p = tmp_path / "ens.json"
    p.write_text(json.dumps(ensemble_response("1976-06-16", [0.0] * 9, [[40.0] * 9, [0.0] * 9], [14.0] * 9)),
                 encoding="utf-8")
    for lang in ("en", "zh"):
        assert _forecast(pretrained_ckpt, tiny_data_dir, tmp_path / lang, "--weather_forecast", str(p),
                         "--language", lang) == 0
        out = capsys.readouterr().out
        heading = next(line for line in out.splitlines() if line.startswith(("Basin 32006: forecast", "测站 32006：")))
        if lang == "en":
            assert heading.startswith(f"Basin 32006: forecast issued {ISSUE} (issue-time+weather-forecast, the "
                                      "mixture over 3 weather members; model "), heading
        else:
            assert heading.startswith(f"测站 32006：{ISSUE} 发布的预报（issue-time+weather-forecast，3 个天气集合成员的"
                                      "混合分布；模型 "), heading
            assert "  预报日期 预见期    中位数 " in out and "valid date" not in out


def test_calibration_sources_keep_their_english_and_say_their_parts_in_chinese():
    """Where the blend, the intervals and a warning probability came from: the English text as before, the Chinese
    from its parts (spans, counts, settings, whose calibration) and the same from the English text read back from
    a file (levels.json) as from the parts."""
    from sca2lstm.evaluation.calibration import spread_origin, warn_probabilities
    from sca2lstm.evaluation.levels import Level
    from sca2lstm.words import Source, phrase

    span, days = "1990-10-01..1999-09-30", "2000-10-01..2005-09-30"
    pooled = "pooled over the calibration basins"
    own_calibration = {"basins": 1, "issue_time_blend": {"32006": [0.5]}, "validation_days": days}
    taken = spread_origin({"spread": {"forecast": {"from": "the pretrained model"}}}, "forecast", "32006")
    fitted = spread_origin(own_calibration, "none", "32006")
    sources = {  # the English each said before it had parts (the f-strings of calibration.py)
        taken: "taken from the pretrained model",
        fitted: f"fitted on this basin's validation days {days}",
        Source("of_setting", origin=taken, weather="forecast"): "taken from the pretrained model (forecast)",
        Source("no_training_forecasts", origin=pooled): f"{pooled} (no training-year forecasts)",
        Source("few_training_forecasts", origin=fitted, n=12):
            f"fitted on this basin's validation days {days} (12 training-year forecasts per lead)",
        Source("rescaled_to_station", span=span, n=3287):
            f"pooled, rescaled to the station's training years {span} (3287 forecasts per lead)",
        Source("own_quantiles_no_setting", weather="ensemble"):
            "the model's own quantiles (the calibration beside the model holds no 'ensemble' spread; sca2lstm "
            "calibrate --model M.pth --settings ensemble fits it)",
        Source("blend_pooled", weather="forecast"): "pooled over basins (forecast)",
        Source("blend_fitted", span=span): f"fitted on the validation days {span}",
    }
    stored = {"warn_probability": {"q2y": {"warn_probability": 0.3, "from": "the pretrained model"}}}
    levels = {"q2y": Level("q2y", 10.0, "glo, 1970-2000 (30 annual maxima)"), "alert": Level("alert", 9.0, "user")}
    probs = warn_probabilities(stored, levels)
    sources[probs["q2y"][1]] = "chosen on validation (F1), taken from the pretrained model"
    sources[probs["alert"][1]] = "as q2y, the nearest return-period level"
    sources["glo, 1970-2000 (30 annual maxima, 2 without flow)"] = "glo, 1970-2000 (30 annual maxima, 2 without flow)"
    for source, english in sources.items():
        assert source == english and phrase(source) == english
        zh = phrase(source, "zh")
        assert zh == phrase(english, "zh"), (zh, phrase(english, "zh"))   # read back as text: the same words
        assert _FIGURES.findall(zh) == _FIGURES.findall(english), (english, zh)
        assert not re.search(r"\b(?:taken|fitted|pooled|rescaled|forecasts|quantiles|chosen|nearest|maxima)\b", zh), zh
    assert phrase(Source("rescaled_to_station", span=span, n=3287), "zh") == (
        f"各校准流域合并拟合，再按该测站训练年份 {span} 重新缩放（每个预见期 3287 个预报）")
    assert phrase("taken from the pretrained model (forecast)", "zh") == "取自预训练模型（forecast）"
    assert phrase("a text of no source", "zh") == "a text of no source"


@pytest.mark.slow
def test_zh_reforecast_says_its_warnings_on_issue_dates_in_chinese_with_the_same_figures(pretrained_ckpt,
                                                                                         tiny_data_dir, tmp_path,
                                                                                         capsys):
    """Issue dates near the record's start (a partly empty window) and in a gauge's gap (an older flow): the lines
    a reforecast prints of them in Chinese hold the English ones' figures; the English lines are as before."""
    import shutil

    from sca2lstm.data.reader import timeseries_file

    data = tmp_path / "camels"
    shutil.copytree(tiny_data_dir, data)
    f = timeseries_file(data, "32006")
    ts = pd.read_csv(f)
    ts.loc[(ts["date"] >= "1970-11-25") & (ts["date"] <= "1970-11-27"), ["discharge_vol", "discharge_spec"]] = float("nan")
    ts.to_csv(f, index=False)
    argv = ["forecast", "--model", str(pretrained_ckpt), "--basin", "32006", "--data_dir", str(data),
            "--from", "1970-11-20", "--to", "1970-12-02"]
    said = {}
    for lang in ("en", "zh"):
        assert main([*argv, "--output_dir", str(tmp_path / lang), "--language", lang]) == 0
        out = capsys.readouterr().out
        said[lang] = [next(line for line in out.splitlines() if words in line) for words in
                      (("have no flow observed on them", "fewer days of record") if lang == "en" else
                       ("当天没有实测流量", "截至当天的记录不足"))]
    assert said["en"][0] == ("basin 32006: 3 issue date(s) between 1970-11-25 and 1970-11-27 have no flow observed on "
                             "them; each starts from the last observed flow, up to 3 day(s) before it (so does its "
                             "persistence)")
    assert said["en"][1].startswith("basin 32006: ") and "the model reads: their state starts" in said["en"][1]
    for en, zh in zip(said["en"], said["zh"]):
        # the same figures, in the order Chinese says them
        assert zh.startswith("测站 32006：") and sorted(_FIGURES.findall(zh)) == sorted(_FIGURES.findall(en)), (en, zh)


def test_reforecast_members_notes_keep_their_english_and_say_the_same_figures_in_chinese():
    from sca2lstm.notes import Note

    source = Note("weather_archive", path="archive.csv")
    left = Note("reforecast_members_left_out", source=source, n=4, day="2020-06-02", used=48, held=51)
    alone = Note("reforecast_member_alone", source=source, n=2, day="2020-06-09")
    # as reforecast.py logged them before they were notes
    assert left == ("weather archive archive.csv: 4 issue date(s) with members incomplete on their lead days, left "
                    "out as a single forecast leaves them out (the first, 2020-06-02: 48 of 51 members used)")
    assert alone == ("weather archive archive.csv: 2 issue date(s) with one complete member left of the ensemble, "
                     "issued from it as one weather forecast (with its spread), as a single forecast issues them (the "
                     "first, 2020-06-09)")
    for note in (left, alone):
        zh = note.said_in("zh")
        assert zh.startswith("天气预报存档 archive.csv：") and "issue date" not in zh, zh
        assert sorted(_FIGURES.findall(zh)) == sorted(_FIGURES.findall(note)), (note, zh)


_MONTH_NAMES = re.compile(r"Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec")


@pytest.mark.parametrize("first,days", [("1976-05-20", 27), ("1975-12-01", 150), ("1975-12-20", 12)])
def test_zh_fan_chart_dates_have_numeric_months(first, days, tmp_path, monkeypatch):
    """A Chinese fan chart's date axis says months as numbers (1976-04, 04-15), never English month names, over
    a span of days, of months and across a new year; the English chart's axis is as before."""
    import numpy as np

    seen = {}
    save = plots._save

    def recording(fig, path):
        fig.canvas.draw()   # drawn: the tick labels are set
        ax = fig.axes[0]
        seen[path.name] = ([t.get_text() for t in ax.get_xticklabels() if t.get_text()],
                           ax.xaxis.get_offset_text().get_text())
        return save(fig, path)

    monkeypatch.setattr(plots, "_save", recording)
    hist = pd.date_range(first, periods=days)
    lead = pd.date_range(hist[-1] + pd.Timedelta(days=1), periods=7)
    for lang, font in (("en", None), ("zh", "DejaVu Sans"), ("zh", None)):
        monkeypatch.setattr(plots, "cjk_font", lambda font=font: font)
        plots.plot_fan_chart(hist, np.linspace(1, 2, days), lead, [2.0] * 7, {"90 %": ([1] * 7, [3] * 7)},
                             tmp_path / f"{lang}_{font}.png", title="t", language=lang)
    labels, corner = seen["zh_DejaVu Sans.png"]
    assert labels and not _MONTH_NAMES.search(" ".join([*labels, corner])), (labels, corner)
    assert all(re.fullmatch(r"\d{4}|\d{4}-\d{2}|\d{2}-\d{2}|\d{4}-\d{2}-\d{2}", t) for t in labels), labels
    assert re.fullmatch(r"(?:\d{4}(?:-\d{2}){0,2})?", corner), corner
    english, chinese_without_font = seen["en_None.png"], seen["zh_None.png"]
    assert _MONTH_NAMES.search(" ".join([*english[0], english[1]])), english   # the English axis names months
    assert chinese_without_font == english   # no Chinese font: the whole chart in English
    # the same ticks: only how their dates are written differs
    assert len(labels) == len(english[0])


@pytest.mark.slow
def test_zh_fine_tuned_forecast_says_whose_intervals_from_their_parts(pretrained_ckpt, tiny_data_dir, tmp_path,
                                                                      capsys):
    """A fine-tuned model's calibration line: its intervals taken from the pretrained model, then fitted on its
    own validation days (with the days), said in Chinese with the English line's days."""
    from sca2lstm.checkpoint import load_model
    from sca2lstm.evaluation.calibration import calibrate
    from sca2lstm.training.finetune import finetune

    r = finetune(pretrained_ckpt, "10002", {"epochs": 1, "batch_size": 8, "min_records": 0, "epoch_coverage": 1.0},
                 data_dir=tiny_data_dir, out_root=tmp_path, progress=False)
    base = ["forecast", "--model", str(r["checkpoint"]), "--basin", "10002", "--data_dir", str(tiny_data_dir),
            "--issue_date", "1976-06-15", "--quiet"]

    def lines(out):
        said = {}
        for lang in ("en", "zh"):
            capsys.readouterr()
            assert main([*base, "--output_dir", str(tmp_path / out / lang), "--language", lang]) == 0
            said[lang] = next(ln for ln in capsys.readouterr().out.splitlines()
                              if ln.startswith(("Blend with persistence:", "与持续性预报的混合：")))
        return said

    taken = lines("taken")
    assert "intervals: taken from the pretrained model." in taken["en"], taken
    assert taken["zh"].endswith("预报区间：取自预训练模型。"), taken
    own = calibrate(load_model(r["checkpoint"]), r["checkpoint"], data_dir=tiny_data_dir, basins=["10002"])
    fitted = lines("fitted")
    assert f"intervals: fitted on this basin's validation days {own['validation_days']}." in fitted["en"], fitted
    assert fitted["zh"].endswith(f"预报区间：在该流域的验证期 {own['validation_days']} 上拟合。"), fitted
    for said in (taken, fitted):
        assert _FIGURES.findall(said["zh"]) == _FIGURES.findall(said["en"]), said
        assert not re.search(r"[a-z]{3,}", said["zh"].split("：", 1)[1]), said   # no English words left


def _same_figures(en: str, zh: str) -> None:
    """A Chinese line holds the English one's figures and days (in the order Chinese says them) and none of its
    English words but names (levels, inputs, flags, files)."""
    assert sorted(_FIGURES.findall(zh)) == sorted(_FIGURES.findall(en)), (en, zh)
    assert not re.search(r"\b(?:the|of|in|on|its|not|and|from|left|runs?|issue|dates?|forecasts?)\b",
                         re.sub(r"--\w+ \w+|(?:/?[A-Za-z0-9_.-]+/)*[A-Za-z0-9_-]+\.(?:csv|json|md)", "", zh)), zh


def test_left_out_issue_dates_keep_their_english_and_say_their_reasons_in_chinese():
    from sca2lstm.evaluation.reforecast import left_out_text
    from sca2lstm.words import Said, say

    day = pd.Timestamp("1976-06-01")
    left = {**{day + pd.Timedelta(days=i): Said("no_recent_flow", days=30) for i in range(3)},
            day + pd.Timedelta(days=5): Said("no_archive_forecast"),
            day + pd.Timedelta(days=7): Said("no_complete_archive_forecast"), day + pd.Timedelta(days=9): "not issued"}
    en = left_out_text(left)
    assert en == ("1976-06-01..1976-06-03 (no observed flow in the 30 days up to it), 1976-06-06 (no forecast in "
                  "the archive), 1976-06-08 (no complete forecast in the archive), 1976-06-10 (not issued)")
    assert left_out_text(left, most=2).endswith(", and 2 more span(s)")
    zh = left_out_text(left, language="zh")
    assert zh == ("1976-06-01..1976-06-03（此前 30 天内没有实测流量）；1976-06-06（存档中没有该日的预报）；"
                  "1976-06-08（存档中没有该日的完整预报）；1976-06-10（not issued）"), zh
    left[day + pd.Timedelta(days=9)] = Said("not_issued")
    zh = left_out_text(left, most=2, language="zh")
    assert zh.endswith("；另有 2 段") and "not issued" not in left_out_text(left, language="zh")
    line = say("left_out", "zh", n=6, asked=10, spans=left_out_text(left, language="zh"))
    _same_figures(say("left_out", "en", n=6, asked=10, spans=left_out_text(left)), line)


def test_archive_rain_line_keeps_its_english_and_says_its_figures_in_chinese():
    from sca2lstm.weather.mapping import archive_rain_text

    lead = {"days": 365, "wet_days_forecast": 0.71, "wet_days_observed": 0.52, "wet_days_mapped": 0.5,
            "p99_forecast": 14.04, "p99_observed": 23.5, "total_ratio": 1.234, "correlation": 0.5,
            "drizzly_with_damped_storms": True}
    record = {"wet_mm": 1.0, "leads": {"1": lead}}
    en = archive_rain_text(record, "auto")
    assert en == ("archive rain against the observed, lead 1 (365 days): wet days (>= 1 mm) 71 % (50 % mapped) vs "
                  "52 %, 99th percentile 14.0 vs 23.5 mm, total x1.23, correlation 0.50; drizzly with damped storms: "
                  "mapped where the forecasts issued before each date were so (docs/weather.md)")
    for mapping in ("none", "quantile", "auto"):
        _same_figures(archive_rain_text(record, mapping), archive_rain_text(record, mapping, language="zh"))
    learned = "the model's weights trained on this station's archive of forecasts, its rain as given"
    bare = {"wet_mm": 0.5, "leads": {"1": {**lead, "wet_days_mapped": None, "p99_forecast": None,
                                           "total_ratio": None, "correlation": None}}}
    en = archive_rain_text(bare, "quantile", learned)
    assert en == ("archive rain against the observed, lead 1 (365 days): wet days (>= 0.5 mm) 71 % (n/a mapped) vs "
                  f"52 %, 99th percentile n/a vs 23.5 mm, total n/a, correlation n/a; drizzly with damped storms, not "
                  f"mapped: {learned}")
    zh = archive_rain_text(bare, "quantile", learned, "zh")
    _same_figures(en, zh)
    assert "模型权重训练时用的就是" in zh and "n/a" not in zh


def test_pet_ways_line_keeps_its_english_and_says_its_counts_in_chinese():
    from sca2lstm.weather.files import PET_WAYS, pet_ways_text

    counts = {"given": 1, "et0": 7, "oudin": 5, "masked": 2, "none": 3}
    assert set(counts) == set(PET_WAYS)
    en = pet_ways_text(counts, "pet")
    assert en == ("PET (pet) of its 18 runs, each as it alone gets it: 1 its own pet column, 7 its et0 (FAO-56), "
                  "5 Oudin from its temperature, 2 masked (the station has no such input), 3 none (this model never "
                  "derives PET)")
    zh = pet_ways_text(counts, "pet", "zh")
    assert zh == ("其 18 次预报的 PET（pet）各按单独使用时的方式得到：1 次取自其自身的 pet 列、7 次取自其 et0（FAO-56）、"
                  "5 次由其气温按 Oudin 公式算出、2 次屏蔽（该测站没有此输入）、3 次无（该模型从不推算 PET）"), zh
    assert pet_ways_text({}, "pet", "zh") is None


def _lagged_records():
    """Each kind of record the lagged combination leaves, with the English line it said before it had a language."""
    from sca2lstm.evaluation.rain_mapping import LEARNED_RUNS
    from sca2lstm.notes import Note
    from sca2lstm.weather.lagged import combine_lagged, ensemble_why

    several = {"issue_dates": 2, "first": "2002-05-05", "runs": 2}
    runs = Note("weather_archive", path="data/weather_archive/32006.csv")
    table = pd.DataFrame({"issue_date": pd.to_datetime(["2002-05-01"] * 2), "valid_date": pd.to_datetime(
        ["2002-05-02", "2002-05-03"]), "member": 0, "precipitation": [1.0, 2.0]})
    one_lead = table.iloc[:1]
    yield ({"method": "auto", "max_lag": 3, "issue_dates": 12, "first": "2002-05-04", "several_runs": several},
           "Precipitation of a.csv: each day's forecast combined with the same day's forecasts issued up to 3 days "
           "earlier, weighted per lead by the days already observed (12 issue date(s) from 2002-05-04; 2 issue "
           "date(s) holding several runs (the first 2002-05-05) left as given; --weather_lags none reads it as given)")
    yield ({"method": "auto", "issue_dates": 0, "why": ensemble_why(pd.Series(
        [2, 3, 1], index=pd.to_datetime(["2002-05-01", "2002-05-02", "2002-05-03"])))},
           "Precipitation of a.csv: each day's forecast as given, not combined with its earlier runs (--weather_lags "
           "auto): an ensemble archive (3 runs on 2 of 3 issue dates, the first 2002-05-01): its members' spread "
           "already carries the rain's uncertainty")
    yield ({"method": "auto", **combine_lagged(table.drop(columns="precipitation"), pd.Series(dtype=float), [])[1]},
           "Precipitation of a.csv: each day's forecast as given, not combined with its earlier runs (--weather_lags "
           "auto): the archive has no precipitation")
    yield ({"method": "auto", **combine_lagged(one_lead, pd.Series(dtype=float), [])[1]},
           "Precipitation of a.csv: each day's forecast as given, not combined with its earlier runs (--weather_lags "
           "auto): the archive's forecasts reach lead 1 only: no day has a forecast from an earlier issue date")
    yield ({"method": "auto", **combine_lagged(table, pd.Series(dtype=float), table["issue_date"])[1]},
           "Precipitation of a.csv: each day's forecast as given, not combined with its earlier runs (--weather_lags "
           "auto): the station's observed precipitation covers 0 of the archive's 3 days; the weights need 365")
    yield ({"method": "auto", "issue_dates": 0, "why": LEARNED_RUNS, "several_runs": several},
           f"Precipitation of a.csv: each day's forecast as given, not combined with its earlier runs (--weather_lags "
           f"auto): {LEARNED_RUNS}; 2 issue date(s) holding several runs (the first 2002-05-05) left as given")
    one = {"method": "auto", "max_lag": 3, "issue_dates": 0, "runs": runs, "issue_date": "2002-05-06"}
    yield ({**one, "why": Note("lags_ensemble_forecast", n=51)},
           f"Precipitation of a.csv: as given, not combined with the earlier runs of weather archive {runs.values['path']}"
           " (--weather_lags auto): the weather forecast is an ensemble of 51 members: their spread already carries "
           "the rain's uncertainty")
    yield ({**one, "why": Note("lags_older_forecast", issued="2002-05-04", day="2002-05-06")},
           f"Precipitation of a.csv: as given, not combined with the earlier runs of weather archive {runs.values['path']}"
           " (--weather_lags auto): the weather forecast was issued 2002-05-04, before the issue date 2002-05-06: only "
           "the run of the issue date (or of the morning after) is combined")
    yield ({**one, "why": Note("lags_runs_begin", first="2002-05-07", day="2002-05-06")},
           f"Precipitation of a.csv: as given, not combined with the earlier runs of weather archive {runs.values['path']}"
           " (--weather_lags auto): the archive's runs begin 2002-05-07, not before the issue date 2002-05-06")
    for why, en in ((Note("lags_several_runs", day="2003-03-10"), "the archive holds several runs issued on 2003-03-10: "
                     "which is the run of the day is not known"),
                    (Note("lags_several_runs_more", day="2003-03-10", more=2), "the archive holds several runs issued on "
                     "2003-03-10 and 2 more of the dates asked: which is the run of the day is not known"),
                    (Note("lags_gap", max_lag=3), "the archive lacks, for every lead, a forecast of the day from one of "
                     "the 3 issue dates before (a gap in its issue dates or leads)"),
                    (Note("lags_few_pairs", min_pairs=60, runs=4), "fewer than 60 verified days of forecasts from 4 "
                     "consecutive issue dates before each issue date's month"),
                    (Note("lags_no_runs", day="2002-05-06"), "the archive's runs begin nowhere, not before the issue "
                     "date 2002-05-06")):
        yield ({"method": "auto", "issue_dates": 0, "why": why},
               "Precipitation of a.csv: each day's forecast as given, not combined with its earlier runs (--weather_lags "
               f"auto): {en}")


def test_lagged_lines_keep_their_english_and_say_why_in_chinese():
    from sca2lstm.evaluation.rain_mapping import lagged_line
    from sca2lstm.notes import Note, note_of, note_record

    for record, english in _lagged_records():
        line = lagged_line(record, "a.csv")
        assert isinstance(line, Note) and line == english, (line, english)
        zh = line.said_in("zh")
        _same_figures(english, zh)
        assert zh.startswith("a.csv的降水"), zh
        assert note_of(note_record(line)).said_in("zh") == zh    # as the service stores and reads it back


def test_mapping_lines_are_notes_said_in_chinese_whatever_their_reason():
    from sca2lstm.evaluation.rain_mapping import mapping_line

    cases = [({"method": "quantile", "observed": "1971-01-01..1975-12-31", "ranked_among": "b.csv's runs"},
              "Precipitation of a.csv quantile-mapped per lead to the observed rain of 1971-01-01..1975-12-31, ranked "
              "among b.csv's runs"),
             ({"method": "auto", "observed": "1971-01-01..1975-12-31"},
              "Precipitation of a.csv auto-mapped per lead to the observed rain of 1971-01-01..1975-12-31"),
             ({"method": "quantile", "not_mapped_because": "a reason of no phrase"},
              "Precipitation of a.csv not mapped (quantile): a reason of no phrase")]
    for record, english in cases:
        line = mapping_line(record, "a.csv")
        assert line == english and line.said_in("zh") != english, line
        assert sorted(_FIGURES.findall(line.said_in("zh"))) == sorted(_FIGURES.findall(english))


def test_a_level_fitted_without_a_year_label_says_its_source_in_chinese():
    import numpy as np

    from sca2lstm.evaluation.levels import fit_return_levels, record_levels
    from sca2lstm.words import phrase

    maxima = np.array([10.0, 12.0, 9.0, 15.0, 11.0, 13.0, 8.0, 14.0, 10.5, 12.5])
    for got, en, zh in ((fit_return_levels(maxima, n_boot=0), "glo (10 annual maxima)", "glo（10 个年最大值）"),
                        (fit_return_levels(np.r_[maxima, 0.0, 0.0], n_boot=0), "glo (12 annual maxima, 2 without flow)",
                         "glo（12 个年最大值，其中 2 个无流量）"),
                        (fit_return_levels(maxima, n_boot=0, label="1970-1980"), "glo, 1970-1980 (10 annual maxima)",
                         "glo，1970-1980（10 个年最大值）")):
        source = got["q2y"].source
        assert source == en and phrase(source, "zh") == zh
        assert phrase(en, "zh") == zh      # read back from levels.json as text: the same words
    dates = pd.date_range("1970-01-01", "1979-12-31")
    q = np.resize(np.arange(1.0, 400.0), len(dates))
    source = record_levels(dates, q, "1970-01-01", "1979-12-31", water_year_start=1, n_boot=0)["q2y"].source
    assert source == "glo, calendar years 1970-1979 (10 annual maxima)"
    assert phrase(source, "zh") == "glo，日历年 1970-1979（10 个年最大值）"


@pytest.mark.slow
def test_zh_says_the_weather_lines_of_a_forecast_and_a_reforecast_in_chinese(pretrained_ckpt, tiny_data_dir,
                                                                               tmp_path, capsys):
    """A station archive of drizzly runs (a few issue dates missing): a reforecast through it prints its lagged-runs,
    PET, archive-rain and left-out lines, and a forecast of one run combined with that archive its lagged-runs and
    mapping lines (its runs too few to weight: not combined, and why), each in Chinese with the English line's
    figures; the English lines as they were."""
    import shutil

    from archive_fixtures import drizzly_archive

    from sca2lstm.checkpoint import load_model

    data = tmp_path / "data"
    shutil.copytree(tiny_data_dir, data)
    runs = drizzly_archive(load_model(pretrained_ckpt), data, "32006", pd.date_range("1973-06-01", "1974-06-30"),
                           leads=2)
    gone = pd.date_range("1974-06-10", "1974-06-12").date
    (data / "weather_archive").mkdir()
    path = data / "weather_archive" / "32006.csv"
    runs[~runs["issue_date"].isin(gone)].to_csv(path, index=False)
    today = tmp_path / "today.csv"
    run = runs[runs["issue_date"] == pd.Timestamp("1974-06-05").date()]
    run.rename(columns={"valid_date": "date"})[["date", "precipitation", "temperature"]].to_csv(today, index=False)
    lines = {}
    for lang in ("en", "zh"):
        common = ["forecast", "--model", str(pretrained_ckpt), "--basin", "32006", "--data_dir", str(data), "--leads",
                  "2", "--output_dir", str(tmp_path / lang), "--language", lang]
        assert main([*common, "--from", "1974-03-01", "--to", "1974-06-25", "--weather_forecast", str(path),
                     "--precip_mapping", "none"]) == 0
        reforecast = capsys.readouterr().out.splitlines()
        assert main([*common, "--issue_date", "1974-06-05", "--weather_forecast", str(today)]) == 0
        forecast = capsys.readouterr().out.splitlines()
        lines[lang] = (reforecast, forecast)
    en, zh = lines["en"], lines["zh"]
    picked = {"en": [], "zh": []}
    for lang, out, words in (
            ("en", en[0], ("each day's forecast", "PET (", "archive rain against", "left out: ")),
            ("zh", zh[0], ("的降水：每天的预报", "次预报的 PET", "存档降水与实测对比", "未发布：")),
            ("en", en[1], (": as given, not combined with the earlier runs of", "-mapped per lead")),
            ("zh", zh[1], ("的降水：按原值使用，未与", "逐个预见期作分位数映射"))):
        for w in words:
            found = [line for line in out if w in line]
            assert len(found) == 1, (w, out)
            picked[lang].append(found[0])
    assert picked["en"][3] == "left out: 3 of 117 issue dates asked: 1974-06-10..1974-06-12 (no forecast in the archive)"
    assert picked["zh"][3] == "未发布：所请求的 117 个发布日中有 3 个：1974-06-10..1974-06-12（存档中没有该日的预报）"
    assert picked["en"][1].endswith("Oudin from its temperature (weather.json)")
    assert picked["en"][2].endswith("--precip_mapping auto (the default) maps such forecasts (docs/weather.md)")
    for e, z in zip(picked["en"], picked["zh"]):
        _same_figures(e, z)
