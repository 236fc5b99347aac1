"""report.html: self-contained (images as data URIs), sections from the files present, and the CLI."""

import base64
import json
import struct
import zlib
from html.parser import HTMLParser

import pytest

from sca2lstm.cli.report import main
from sca2lstm.evaluation.report import build_report


def _tiny_png(path):
    """A valid 2x2 grey PNG, written without matplotlib."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + b"\x80\x80" for _ in range(2))
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 0, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png)
    return png


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.imgs, self.h2, self.text, self._tag = [], [], [], None

    def handle_starttag(self, tag, attrs):
        self._tag = tag
        if tag == "img":
            self.imgs.append(dict(attrs))

    def handle_data(self, data):
        self.text.append(data)
        if self._tag == "h2":
            self.h2.append(data.strip())

    def handle_endtag(self, tag):
        self._tag = None


def _parse(path):
    c = _Collector()
    c.feed(path.read_text(encoding="utf-8"))
    return c


@pytest.fixture
def run_dir(tmp_path):
    d = tmp_path / "run_<x>"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"model": {"hidden_size": 64}, "note": "<b>hi</b>"}))
    (d / "history.csv").write_text("epoch,train_loss,val_loss,lr\n1,1.0,,0.001\n2,0.5,0.61234,0.001\n"
                                   "3,0.4,0.7,0.0005\n")
    (d / "test_metrics.json").write_text(json.dumps({
        "basin": "32006", "n_days": 300,
        "model": {"nse": 0.81234, "kge": 0.7, "n_days": 300},
        "persistence": {"nse": 0.5, "kge": float("nan"), "n_days": 300}}))
    (d / "basins_metrics.csv").write_text("basin,nse,kge\n1001,0.812345,0.7\n1002,,0.1\n")
    _tiny_png(d / "loss_curve.png")
    _tiny_png(d / "basin_32006" / "hydrograph_32006.png")
    return d


def test_build_report(run_dir):
    out = build_report(run_dir)
    assert out == run_dir / "report.html"
    assert not [p for p in run_dir.iterdir() if p.name.endswith(".tmp")]
    page = _parse(out)
    assert len(page.imgs) == 2
    for img in page.imgs:
        assert img["src"].startswith("data:image/png;base64,")
        target = run_dir / img["data-src"]
        assert target.is_file()
        assert base64.b64decode(img["src"].split(",", 1)[1]) == target.read_bytes()
    assert {i["data-src"] for i in page.imgs} == {"loss_curve.png", "basin_32006/hydrograph_32006.png"}
    # results first: the configuration (a page of JSON in the demo's report) comes last
    assert page.h2 == ["Training", "Metrics", "Hydrographs", "Configuration"]
    text = " ".join(page.text)
    assert "<b>hi</b>" in text  # shown as text: it was escaped in the source
    assert "0.812" in text and "persistence" in text and "best val_loss 0.612 at epoch 2" in text
    html_src = out.read_text(encoding="utf-8")
    assert "<b>hi</b>" not in html_src and "run_&lt;x&gt;" in html_src


def test_each_figure_is_described_by_its_title_for_a_reader_who_cannot_see_it(tmp_path):
    """The alt text says what the figure shows (its kind and title), not only its file name."""
    import numpy as np
    import pandas as pd

    from sca2lstm.evaluation.plots import plot_hydrograph

    dates = pd.date_range("2005-10-01", periods=120, freq="D")
    obs = 3 + np.sin(np.arange(120) / 9)
    plot_hydrograph(dates, obs, obs * 0.9, tmp_path / "hydrograph.png", title="Basin 32006, 2005-10-01..2006-01-28")
    _tiny_png(tmp_path / "other.png")   # a PNG without a title: its kind, from the name
    alts = {i["data-src"]: i["alt"] for i in _parse(build_report(tmp_path)).imgs}
    assert alts == {"hydrograph.png": "hydrograph: Basin 32006, 2005-10-01..2006-01-28", "other.png": "other"}


def test_a_forecast_report_shows_the_fan_chart_before_the_attention_bars(tmp_path):
    (tmp_path / "forecast.csv").write_text("issue_date,valid_date,lead_days,median,q05,q25,q75,q95,setting\n"
                                           "2014-02-05,2014-02-06,1,6.2,5.1,5.9,6.4,8.1,issue-time\n")
    _tiny_png(tmp_path / "forecast_attention_weights.png")
    _tiny_png(tmp_path / "forecast_fan_chart.png")
    imgs = [i["data-src"] for i in _parse(build_report(tmp_path)).imgs]
    assert imgs == ["forecast_fan_chart.png", "forecast_attention_weights.png"]


def test_a_verified_reforecast_folder_shows_its_scores_per_lead_and_level_beside_its_figure(tmp_path):
    """A reforecast folder after ``sca2lstm verify``: its page showed verify.png alone, under "Other figures", and
    none of the scores; it shows a Verification section with the figure and both tables."""
    (tmp_path / "reforecast.csv").write_text("issue_date,valid_date,lead_days,median\n")
    (tmp_path / "verify_per_lead.csv").write_text("lead,n_days,nse,persistence_nse\n1,184,0.486,0.351\n")
    (tmp_path / "verify_per_level.csv").write_text("level,lead,forecast,count,pod,far\nalert,1,model,day,0.621,0.379\n")
    _tiny_png(tmp_path / "verify.png")
    page = _parse(build_report(tmp_path))
    assert page.h2 == ["Verification"] and [i["data-src"] for i in page.imgs] == ["verify.png"]
    text = " ".join(t.strip() for t in page.text if t.strip())
    assert "verify_per_lead.csv" in text and "0.486" in text and "verify_per_level.csv" in text and "0.621" in text


def test_report_of_empty_folder_and_title_escaping(tmp_path):
    out = build_report(tmp_path, title="<script>alert(1)</script>")
    src = out.read_text(encoding="utf-8")
    assert "<script>" not in src and "&lt;script&gt;" in src
    assert _parse(out).imgs == []


def test_unreadable_files_become_notes(tmp_path):
    (tmp_path / "val_metrics.json").write_text("{not json")
    (tmp_path / "config.json").write_text("[1, 2")
    src = build_report(tmp_path).read_text(encoding="utf-8")
    assert src.count("could not read") == 2


def test_a_damaged_figure_is_a_note_naming_it_not_a_broken_image(tmp_path):
    """A figure that is no PNG, or one cut short (a copy stopped halfway), is a note saying so; the whole ones
    beside it are still embedded."""
    png = _tiny_png(tmp_path / "training_curve.png")
    (tmp_path / "history.png").write_bytes(png[:40])
    (tmp_path / "hydrograph.png").write_text("not an image")
    (tmp_path / "history.csv").write_text("epoch,train_loss,val_loss\n1,0.5,0.6\n")
    page = build_report(tmp_path)
    src = page.read_text(encoding="utf-8")
    assert "could not read history.png: the PNG image is cut short (no end chunk)" in src
    assert "could not read hydrograph.png: not a PNG image" in src
    assert [img["data-src"] for img in _parse(page).imgs] == ["training_curve.png"]


def test_a_closed_pipe_on_a_logged_line_ends_the_command_quietly(run_dir, capsys, monkeypatch):
    """`sca2lstm report RUN_DIR | head -0`: the 'wrote' line goes through logging, which printed '--- Logging
    error ---' and a traceback for each line written to a closed pipe and went on; the command ends with 141."""
    import sys

    class ClosedPipe:
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            pass

    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert main([str(run_dir)]) == 141   # its console handler is taken off as it ends: none left on the pipe
    monkeypatch.undo()
    assert capsys.readouterr().err == ""
    assert (run_dir / "report.html").is_file()


def test_cli(run_dir, capsys):
    assert main([str(run_dir), "--quiet"]) == 0
    assert (run_dir / "report.html").is_file()
    missing = run_dir / "nope"
    assert main([str(missing)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"sca2lstm report: error: run folder {missing} does not exist"]
    empty = run_dir.parent / "empty_run"
    empty.mkdir()
    assert main([str(empty)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds nothing to report" in err[0] and not (empty / "report.html").exists()


class _Tables(HTMLParser):
    """Every table of a page, in order: ``(table attributes, rows)``, each row ``(tr class, [cell texts])``, the
    header row included."""

    def __init__(self):
        super().__init__()
        self.tables, self._cell = [], None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append((dict(attrs), []))
        elif tag == "tr" and self.tables:
            self.tables[-1][1].append((dict(attrs).get("class"), []))
        elif tag in ("td", "th"):
            self._cell = []

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][1][-1][1].append("".join(self._cell).strip())
            self._cell = None


def _all_tables(path) -> list:
    p = _Tables()
    p.feed(path.read_text(encoding="utf-8"))
    return p.tables


def _level_tables(path) -> dict:
    """The per-level tables of a forecast report: level name -> rows of (tr class, [cell texts]), header aside."""
    return {attrs["data-level"]: [r for r in rows if r[1] and r[1][0] != "lead"]
            for attrs, rows in _all_tables(path) if "exceed" in (attrs.get("class") or "").split()}


def test_forecast_report_shows_each_levels_exceedance_by_lead_and_the_leads_that_warn(pretrained_ckpt, tiny_data_dir,
                                                                                    tmp_path):
    from sca2lstm.cli.main import main as cli

    # danger warns on its own wherever P reaches 0.01; alert (P <= 0.99 everywhere) only where danger does
    assert cli(["forecast", "--model", str(pretrained_ckpt), "--basin", "32006", "--data_dir", str(tiny_data_dir),
                "--issue_date", "1976-06-15", "--leads", "7", "--format", "json", "--output_dir", str(tmp_path),
                "--quiet", "--warning_levels", "alert=3.0,danger=6.0",
                "--warn_probability", "danger=0.01,alert=0.99"]) == 0
    folder = tmp_path / "basin_32006_issued_1976-06-15"
    rows = json.loads((folder / "forecast.json").read_text())["forecast"]
    assert any(r["warn_danger"] for r in rows) and not all(r["warn_danger"] for r in rows)  # both kinds of lead
    tables = _level_tables(folder / "report.html")
    assert list(tables) == ["danger", "alert"]  # the highest level first
    for name, w in (("danger", 0.01), ("alert", 0.99)):
        shown = tables[name]
        assert [int(c[0]) for _, c in shown] == list(range(1, 8))
        assert [c[1] for _, c in shown] == [r["valid_date"] for r in rows]
        assert [c[2] for _, c in shown] == [f"{r[f'p_exceed_{name}']:.3f}" for r in rows]
        assert [c[3] for _, c in shown] == [f"{w:.3f}"] * 7
        # highlighted exactly on the leads the forecast warns on
        assert [cls == "warned" for cls, _ in shown] == [r[f"warn_{name}"] for r in rows]
    assert [c[4] for _, c in tables["danger"]] == ["yes" if r["p_exceed_danger"] >= 0.01 else "" for r in rows]
    assert [c[4] for _, c in tables["alert"]] == ["yes, as danger warns" if r["warn_danger"] else "" for r in rows]
    # a warning probability chosen per lead is shown at each lead
    levels = json.loads((folder / "levels.json").read_text())
    levels["danger"]["warn_probability_by_lead"] = [0.1, 0.2, 0.3]
    (folder / "levels.json").write_text(json.dumps(levels))
    build_report(folder)
    assert [c[3] for _, c in _level_tables(folder / "report.html")["danger"]] == \
        ["0.100", "0.200", "0.300", "0.300", "0.300", "0.300", "0.300"]


def test_forecast_report_shows_a_probability_alike_in_its_level_table_and_its_forecast_table(pretrained_ckpt,
                                                                                          tiny_data_dir, tmp_path):
    """A probability the 4-decimal forecast.csv rounds up (0.38445 is written 0.3845) reads the same in the
    level's table and in the forecast table below it, as forecast.json holds it: not 0.384 in one and 0.385
    in the other."""
    import pandas as pd

    from sca2lstm.cli.main import main as cli

    assert cli(["forecast", "--model", str(pretrained_ckpt), "--basin", "32006", "--data_dir", str(tiny_data_dir),
                "--issue_date", "1976-06-15", "--leads", "3", "--format", "json", "--output_dir", str(tmp_path),
                "--quiet", "--warning_levels", "alert=3.0"]) == 0
    folder = tmp_path / "basin_32006_issued_1976-06-15"
    doc = json.loads((folder / "forecast.json").read_text())
    doc["forecast"][1]["p_exceed_alert"] = 0.38445  # as the forecast could have given it
    (folder / "forecast.json").write_text(json.dumps(doc))
    pd.DataFrame(doc["forecast"]).to_csv(folder / "forecast.csv", index=False, float_format="%.4f")  # as written
    assert "0.3845" in (folder / "forecast.csv").read_text()
    build_report(folder)
    assert [c[2] for _, c in _level_tables(folder / "report.html")["alert"]][1] == "0.384"
    table = next([cells for _, cells in rows] for _, rows in _all_tables(folder / "report.html")
                 if rows and "p_exceed_alert" in rows[0][1])
    col = table[0].index("p_exceed_alert")
    assert table[2][col] == "0.384"


def test_a_tune_study_folder_shows_its_trials_table_and_best_config(tmp_path, capsys):
    """The folder ``sca2lstm tune`` writes: trials.csv as a table and best_config.yaml as text, beside history.png."""
    optuna = pytest.importorskip("optuna")
    import pandas as pd

    from sca2lstm.config import load_config
    from sca2lstm.training.tune import write_outputs

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    study.optimize(lambda t: (t.suggest_float("training.learning_rate", 1e-3, 1e-2, log=True) - 4e-3) ** 2
                   + t.suggest_int("model.hidden_size", 8, 16, step=8) / 1e3, n_trials=3)
    out = tmp_path / "study"
    write_outputs(study, load_config(), None, out, "s", data_dir=tmp_path)
    assert main([str(out), "--quiet"]) == 0
    page = _parse(out / "report.html")
    assert "Tuning trials" in page.h2 and "Configuration" in page.h2
    src = (out / "report.html").read_text(encoding="utf-8")
    trials = pd.read_csv(out / "trials.csv")
    # one body row per trial, its parameter columns as headers
    section = src.split('<section id="trials">', 1)[1].split("</section>", 1)[0]
    assert section.split("<tbody>", 1)[1].count("<tr>") == len(trials) == 3
    text = " ".join(page.text)
    assert "params_training.learning_rate" in section and "COMPLETE" in section
    # the best trial (best_config.yaml's) is marked, in trials.csv and in the report's table: one row only
    assert trials.loc[trials["best"], "number"].tolist() == [study.best_trial.number]
    table = next([cells for _, cells in rows] for _, rows in _all_tables(out / "report.html")
                 if rows and "params_training.learning_rate" in rows[0][1])
    assert table[0][0] == "best"
    number = table[0].index("number")
    assert [r[number] for r in table[1:] if r[0] == "best"] == [str(study.best_trial.number)]
    assert f"best trial: {study.best_trial.number}, value" in text
    # a trials.csv written before the study marked its best is shown as it is
    trials.drop(columns="best").to_csv(out / "trials.csv", index=False)
    assert main([str(out), "--quiet"]) == 0
    section = (out / "report.html").read_text(encoding="utf-8").split('<section id="trials">', 1)[1].split(
        "</section>", 1)[0]
    assert section.split("<tbody>", 1)[1].split("</tbody>", 1)[0].count("<tr>") == 3 and "best trial:" not in section
    assert "best_config.yaml" in text
    assert f"The best trial ({study.best_trial.number}) of study 's'" in text  # the file's own text
    assert [i["data-src"] for i in page.imgs] == ["history.png"]


def test_the_metrics_tables_give_the_units_of_rmse_mae_and_pbias(tmp_path):
    """An RMSE of 1.092 alone does not say of what: the flows are in m³/s and PBIAS is a percentage, in the
    prediction's side-by-side table, its other scores (the raw model's) and a per-basin metrics CSV alike."""
    d = tmp_path / "basin_32006"
    d.mkdir()
    scores = {"nse": 0.69, "rmse": 1.092, "mae": 0.433, "pbias": -3.2, "n_days": 300}
    (d / "metrics.json").write_text(json.dumps({"model": scores, "persistence": scores, "model_raw": scores}))
    (d / "val_metrics.csv").write_text("basin,nse,rmse,pbias,persistence_mae\n1001,0.8,1.5,2.0,0.9\n")
    page = _parse(build_report(d))
    cells = [t.strip() for t in page.text if t.strip()]
    for name in ("rmse (m³/s)", "mae (m³/s)", "pbias (%)", "model_raw.rmse (m³/s)", "model_raw.pbias (%)",
                 "persistence_mae (m³/s)"):
        assert name in cells, name
    assert "rmse" not in cells and "pbias" not in cells and "nse" in cells   # NSE has no unit


def test_a_fine_tunes_metrics_table_and_its_json_show_the_same_scores_in_the_report(tmp_path):
    """val_metrics.json and val_metrics_before_after.csv hold the same scores; the report shows both at three
    decimals, and a score written to the CSV at four (0.94949 as 0.9495) read 0.950 there beside 0.949."""
    import re

    from sca2lstm.training.outputs import metrics_frame, write_training_artifacts

    scores = {"nse": 0.89949, "kge": 0.88312, "kge_r": 0.94949, "rmse": 2.41651, "n_days": 1771}
    per_basin = {"32006": {"n_days": 1771, "model": scores, "persistence": dict(scores, nse=0.76149)}}
    run = tmp_path / "run"
    write_training_artifacts(run, [{"epoch": 1, "train_loss": 0.2, "val_loss": 0.1}], {}, metrics_frame(per_basin),
                             "val_metrics_before_after.csv", "Fine-tuning basin 32006")
    (run / "val_metrics.json").write_text(json.dumps({"after": per_basin["32006"]}))
    page = build_report(run).read_text(encoding="utf-8")
    csv_table = page[page.index("val_metrics_before_after.csv</h3>"):]
    cells = re.findall(r"<td>([^<]*)</td>", csv_table)
    for value in ("0.899", "0.949", "2.417", "0.761"):   # as the json's table shows them
        assert value in cells, (value, cells)
    assert "0.950" not in cells and "0.762" not in cells


def test_a_fitted_levels_heading_says_daily_mean_and_gives_its_interval(tmp_path):
    """A q20y headed by a bare "m3/s" reads as the agency's (instantaneous, higher) 20-year peak: the heading says
    daily mean and gives the 90 % interval levels.json holds; a user's level has no interval to give."""
    import pandas as pd

    pd.DataFrame({"lead_days": [1, 2], "valid_date": ["2020-01-02", "2020-01-03"], "median": [10.0, 12.0],
                  "p_exceed_q20y": [0.01, 0.2], "warn_q20y": [False, True],
                  "p_exceed_alert": [0.3, 0.6], "warn_alert": [False, True]}).to_csv(tmp_path / "forecast.csv",
                                                                                   index=False)
    (tmp_path / "levels.json").write_text(json.dumps({
        "q20y": {"value": 85.5, "unit": "m3/s", "kind": "daily mean", "warn_probability": 0.15,
                 "source": "glo, 1970-2000 (30 annual maxima)", "ci90": [70.25, 104.5]},
        "alert": {"value": 40.0, "unit": "m3/s", "kind": "daily mean", "warn_probability": 0.5, "source": "user"}}))
    src = build_report(tmp_path).read_text(encoding="utf-8")
    assert "<h4>q20y: 85.500 m&sup3;/s daily mean (90 % interval 70.250-104.500 m&sup3;/s)</h4>" in src
    assert "<h4>alert: 40.000 m&sup3;/s daily mean</h4>" in src


@pytest.mark.parametrize("language", ["en", "zh"])
def test_the_page_is_english_and_only_the_forecast_section_is_marked_in_its_language(run_dir, language):
    (run_dir / "forecast.csv").write_text("date,lead_days,median,p_exceed_alert\n2024-01-02,1,2.5,0.25\n")
    html = build_report(run_dir, language=language).read_text(encoding="utf-8")
    assert '<html lang="en">' in html
    marked = ' lang="zh"' if language == "zh" else ""
    assert f'<section id="forecast"{marked}><h2>' in html and f'<a href="#forecast"{marked}>' in html
    # the English sections are not marked: they take the page's language
    assert '<section id="training"><h2>Training</h2>' in html and html.count(' lang="zh"') == 2 * (language == "zh")


def test_table_cells_do_not_wrap_and_a_wide_table_scrolls_within_the_page(tmp_path):
    """A forecast's valid dates broke into "1975-12-" over "29", and verify's PIT deciles stood one number a line (seven
    rows over two screens, the table running off the page): the page's style keeps each cell on one line and gives
    a wide table its own scroll bar."""
    import re

    (tmp_path / "forecast.csv").write_text("issue_date,valid_date,lead_days,median\n1975-12-28,1975-12-29,1,31.2\n")
    page = build_report(tmp_path, title="t").read_text(encoding="utf-8")
    css = re.search(r"<style>(.*?)</style>", page, re.S).group(1)
    rules = {sel.strip(): body for sels, body in re.findall(r"([^{}]+)\{([^}]*)\}", css) for sel in sels.split(",")}
    assert "white-space:nowrap" in rules["td"], rules.get("td")
    assert {"display:block", "overflow-x:auto", "max-width:100%"} <= set(rules["table"].split(";")), rules["table"]
