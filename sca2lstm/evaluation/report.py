"""``report.html``: one self-contained page that sums up a run folder.

The page opens offline and can be mailed as one file: every figure is embedded as a base64 ``data:``
URI, and the styles are inline. It is rebuilt from whatever the folder holds, so it can be made again
at any time (``sca2lstm report RUN_DIR``); each section appears only when its files exist.

Files read (top level, and one level of subfolders for figures, metrics and histories):

- ``config.json``, ``config.yaml``, ``resolved_config.yaml``, ``best_config.yaml`` (a tune study's) - "Configuration"
- ``data_summary.json`` / ``data_summary.csv`` - "Data summary"
- ``history.csv`` and figures named ``*curve*`` / ``*loss*`` - "Training"
- ``trials.csv`` (a tune study's, one row per trial) - "Tuning trials"
- ``*metrics*.csv`` / ``*metrics*.json`` - "Metrics"
- ``forecast.csv`` (``forecast.json`` where written), ``levels.json``, ``warnings.txt`` - "Operational forecast",
  with one table per warning level: P(flow > level) by lead, the warning probability, the leads that warn
- figures named ``*hydrograph*`` / ``*performance*`` - "Hydrographs"; ``*attention*`` - "Attention";
  every other ``*.png`` - "Other figures"

Each embedded ``<img>`` also carries ``data-src`` with the PNG's path relative to the run folder, and as its
``alt`` text the figure's kind and the title it carries in the PNG (written by plots.py). A
file that cannot be read becomes a note in its section rather than a failed report.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
import math
import re
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ..errors import DataError
from ..fileio import atomic_write_text
from ..words import LANGUAGES, phrase, say
from .metrics import _flatten

__all__ = ["build_report", "REPORT_NAME"]

REPORT_NAME = "report.html"
_CONFIG_FILES = ("config.json", "config.yaml", "resolved_config.yaml", "best_config.yaml")
_HISTORY_PREVIEW_ROWS = 400

#: A cell never wraps (a date broke into "1975-12-" over "29", verify's PIT deciles stood one number a line, seven
#: rows over two screens); a table wider than the page scrolls within itself instead of running off the page.
_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:0 auto;
max-width:1200px;padding:1em 2em;color:#222;line-height:1.45}
h1{margin-bottom:.2em}h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:1.8em}
h3{margin-bottom:.3em}.meta{color:#666;font-size:.9em}
table{border-collapse:collapse;margin:.5em 0 1em;font-size:.88em;display:block;max-width:100%;overflow-x:auto}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}td{white-space:nowrap}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
tr:nth-child(even) td{background:#fafafa}
pre{background:#f6f8fa;padding:.8em;overflow:auto;font-size:.85em;border-radius:4px}
details{margin:.4em 0}summary{cursor:pointer;font-weight:600}
figure{margin:1em 0;text-align:center}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{color:#555;font-size:.85em;font-family:monospace}.note{color:#a33}
nav a{margin-right:1em}
table.exceed tr.warned td{background:#fde2e2;font-weight:600}
"""


# --------------------------------------------------------------------------------------------------
# public
# --------------------------------------------------------------------------------------------------

def build_report(run_dir, title: str | None = None, folder_name: str | None = None, language: str = "en") -> Path:
    """Write ``run_dir/report.html`` from the files of a run folder.

    Parameters
    ----------
    run_dir : str or os.PathLike
        The run folder.
    title : str, optional
        Page title; default ``"sca2lstm run: <folder name>"``.
    folder_name : str, optional
        The folder's name as the reader will find it, where the report is built in a temporary folder that is
        renamed afterwards (default: ``run_dir``'s own name).
    language : str, optional
        The language of the forecast section (:data:`sca2lstm.words.LANGUAGES`, ``sca2lstm forecast
        --language``): its heading, sentences and table headings; the page's other sections are in English.

    Returns
    -------
    pathlib.Path
        The report written (atomically: a temporary file in ``run_dir`` then :func:`os.replace`).

    Raises
    ------
    DataError
        If ``run_dir`` does not exist or is not a folder.
    """
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise DataError(f"run folder {run_dir} does not exist")
    if not run_dir.is_dir():
        raise DataError(f"run folder {run_dir} is not a folder")
    if language not in LANGUAGES:
        raise ValueError(f"language {language!r}; expected one of {', '.join(LANGUAGES)}")
    title = title or f"sca2lstm run: {folder_name or run_dir.resolve().name}"
    now = _dt.datetime.now().astimezone().isoformat(timespec="seconds")

    pngs = _find(run_dir, "*.png")
    groups: dict[str, list[Path]] = {"training": [], "hydro": [], "attention": [], "forecast": [], "verify": [],
                                     "other": []}
    for p in pngs:
        groups[_figure_group(p.name)].append(p)

    sections: list[tuple[str, str, str]] = []  # (anchor, heading, body html)
    # the results first; the configuration, a page of JSON that a reader looks up rather than reads, last
    for anchor, heading, body in (
        ("data", "Data summary", _section_data(run_dir)),
        ("training", "Training", _section_training(run_dir, groups["training"])),
        ("trials", "Tuning trials", _section_trials(run_dir)),
        ("metrics", "Metrics", _section_metrics(run_dir)),
        ("forecast", say("report_forecast", language), _section_forecast(run_dir, groups["forecast"], language)),
        ("verification", "Verification", _section_verify(run_dir, groups["verify"])),
        ("hydrographs", "Hydrographs", _figures(run_dir, groups["hydro"])),
        ("attention", "Attention", _figures(run_dir, groups["attention"])),
        ("figures", "Other figures", _figures(run_dir, groups["other"])),
        ("configuration", "Configuration", _section_config(run_dir)),
    ):
        if body:
            sections.append((anchor, heading, body))

    parts = [
        "<!DOCTYPE html>",
        # the page is English; only the forecast's section (and its link) is in ``language``, marked there: a browser
        # picks the Chinese glyphs (not Japanese ones) by it, and a screen reader reads the rest as English
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="meta">Run folder <code>{_e(folder_name or run_dir.resolve().name)}</code> '
        f"&middot; generated {_e(now)}</p>",
    ]
    if sections:
        parts.append("<nav>" + "".join(f'<a href="#{a}"{_lang(a, language)}>{_e(h)}</a>' for a, h, _ in sections)
                     + "</nav>")
    else:
        parts.append('<p class="note">This folder holds none of the files a report shows.</p>')
    for anchor, heading, body in sections:
        parts.append(f'<section id="{anchor}"{_lang(anchor, language)}><h2>{_e(heading)}</h2>\n{body}</section>')
    parts.append("</body></html>\n")
    return atomic_write_text(run_dir / REPORT_NAME, "\n".join(parts))


def _lang(anchor: str, language: str) -> str:
    """The ``lang`` attribute of a section (or its link) whose words are not the page's English: the forecast's, in
    ``language`` ("" for the others, and for English)."""
    return f' lang="{language}"' if anchor == "forecast" and language != "en" else ""


# --------------------------------------------------------------------------------------------------
# sections
# --------------------------------------------------------------------------------------------------

def _section_config(run_dir: Path) -> str:
    out = []
    for name in _CONFIG_FILES:
        path = run_dir / name
        if not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
            if name.endswith(".json"):
                text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
        except (OSError, UnicodeDecodeError, ValueError) as e:
            out.append(_note(name, e))
            continue
        out.append(f"<details><summary>{_e(name)}</summary><pre>{_e(text)}</pre></details>")
    return "\n".join(out)


def _section_data(run_dir: Path) -> str:
    out = []
    path = run_dir / "data_summary.json"
    if path.is_file():
        try:
            out.append(_render_json(_read_json(path)))
        except (OSError, UnicodeDecodeError, ValueError) as e:
            out.append(_note(path.name, e))
    path = run_dir / "data_summary.csv"
    if path.is_file():
        out.append(_csv_table(path))
    return "\n".join(out)


def _section_training(run_dir: Path, figures: list[Path]) -> str:
    import numpy as np
    import pandas as pd

    out = []
    for path in _find(run_dir, "history.csv"):
        rel = _rel(run_dir, path)
        try:
            df = pd.read_csv(path)
        except Exception as e:  # noqa: BLE001 - pandas raises many kinds; any of them is a note
            out.append(_note(rel, e))
            continue
        summary = f"{rel}: {len(df)} epoch{'s' if len(df) != 1 else ''}"
        if "val_loss" in df.columns:
            val = pd.to_numeric(df["val_loss"], errors="coerce")
            if val.notna().any():
                i = int(np.nanargmin(val.to_numpy(dtype=float)))
                ep = df["epoch"].iloc[i] if "epoch" in df.columns else i + 1
                summary += f"; best val_loss {_fmt(val.iloc[i])} at epoch {_fmt(ep)}"
        shown = df.tail(_HISTORY_PREVIEW_ROWS)
        note = (f'<p class="meta">last {_HISTORY_PREVIEW_ROWS} of {len(df)} rows</p>'
                if len(df) > _HISTORY_PREVIEW_ROWS else "")
        out.append(f"<details><summary>{_e(summary)}</summary>{note}{_df_html(shown)}</details>")
    out.append(_figures(run_dir, figures))
    return "\n".join(s for s in out if s)


def _section_trials(run_dir: Path) -> str:
    """A tune study's ``trials.csv`` as a table: each trial's values, parameters and state; the best trial (the
    one ``best_config.yaml`` is made from) marked ``best`` in the first column, and named above the table."""
    path = run_dir / "trials.csv"
    if not path.is_file():
        return ""
    try:
        import pandas as pd

        df = pd.read_csv(path)
    except Exception as e:  # noqa: BLE001 - an unreadable CSV becomes a note, not a failed report
        return _note(path.name, e)
    if "best" not in df.columns:  # written before the study marked its best: shown as it is
        return _df_html(df)
    best = df["best"].astype(str).str.lower() == "true"
    df = df.drop(columns="best")
    df.insert(0, "best", best.map({True: "best", False: ""}))
    rows = df[best]
    head = ""
    if len(rows) and {"number", "value"} <= set(df.columns):
        head = (f'<p class="meta">best trial: {_e(_fmt(rows["number"].iloc[0]))}, value '
                f'{_e(_fmt(rows["value"].iloc[0]))} (best_config.yaml)</p>')
    return head + _df_html(df)


def _section_metrics(run_dir: Path) -> str:
    out = []
    files = [p for p in _find(run_dir, "*metrics*") if p.suffix.lower() in (".csv", ".json")]
    for path in files:
        rel = _rel(run_dir, path)
        out.append(f"<h3>{_e(rel)}</h3>")
        if path.suffix.lower() == ".csv":
            out.append(_csv_table(path, headers=_with_unit))
        else:
            try:
                out.append(_render_json(_read_json(path)))
            except (OSError, UnicodeDecodeError, ValueError) as e:
                out.append(_note(rel, e))
    return "\n".join(out)


def _section_verify(run_dir: Path, figures: list[Path]) -> str:
    """A reforecast folder scored by ``sca2lstm verify``: its figure, then its scores per lead and per level, as the
    command printed them (a page of the folder showed the figure alone, among other figures)."""
    tables = [(name, run_dir / name) for name in ("verify_per_lead.csv", "verify_per_level.csv")]
    if not figures and not any(path.is_file() for _, path in tables):
        return ""
    out = [_figures(run_dir, figures)]
    for name, path in tables:
        if path.is_file():
            out.append(f"<h3>{_e(name)}</h3>")
            out.append(_csv_table(path))
    return "\n".join(out)


def _section_forecast(run_dir: Path, figures: list[Path], language: str = "en") -> str:
    """An issue-time forecast (``sca2lstm forecast``): its table, setting, fan chart and the issue
    day's attention weights."""
    path = run_dir / "forecast.csv"
    if not path.is_file():
        return ""
    # The fan chart first, right under the tables: it is the forecast; the attention bars explain it.
    figures = sorted(figures, key=lambda p: "fan_chart" not in p.name)
    intro = say("report_intro", language)
    if "stage_median" in path.read_text(encoding="utf-8").splitlines()[0].split(","):
        intro = intro[:-4] + say("report_stage", language)
    out = []
    warn = run_dir / "warnings.txt"
    if warn.is_file():  # the warnings in one sentence, above the table
        out.append(f"<p><strong>{_e(warn.read_text(encoding='utf-8').strip())}</strong></p>")
    try:
        rows = _forecast_rows(run_dir, path)
    except Exception as e:  # noqa: BLE001 - an unreadable table becomes a note, not a failed report
        return "\n".join([*out, _note(path.name, e)]) + "\n" + _figures(run_dir, figures)
    # the sentence's detail, then the full table: both from the same rows, so a probability reads the same in both
    out += [_warning_tables(run_dir, rows, language), intro, _df_html(rows)]
    return "\n".join(s for s in out if s) + "\n" + _figures(run_dir, figures)


def _forecast_rows(run_dir: Path, csv_path: Path):
    """The forecast's rows: from ``forecast.json`` where it was written (full precision), else from
    ``forecast.csv`` (four decimals). Shown at three, a value read back from the CSV could round the other
    way (0.38445 is written 0.3845 and would show as 0.385), so both of the report's tables read these rows."""
    import pandas as pd

    if (run_dir / "forecast.json").is_file():
        return pd.DataFrame(_read_json(run_dir / "forecast.json")["forecast"])
    return pd.read_csv(csv_path)


def _warning_tables(run_dir: Path, rows, language: str = "en") -> str:
    """One small table per warning level, highest first: P(flow > level) at each lead, the level's warning
    probability there, and the leads that warn (highlighted).

    The probabilities are those of ``rows`` (:func:`_forecast_rows`); the levels, their warning probabilities
    (one per lead where the calibration chose one per lead) and where they came from, from ``levels.json``.
    A lead warns as issued (``warn_<level>``): a level also warns where a higher one does, though its own
    probability may stay below its threshold, and the table names that higher level.
    """
    notes = []
    names = [c[len("p_exceed_"):] for c in rows.columns if c.startswith("p_exceed_")]
    if not names or "lead_days" not in rows.columns:
        return ""
    levels: dict = {}
    if (run_dir / "levels.json").is_file():
        try:
            levels = _read_json(run_dir / "levels.json")
        except (OSError, UnicodeDecodeError, ValueError) as e:
            notes.append(_note("levels.json", e))
    levels = {n: levels.get(n) if isinstance(levels.get(n), dict) else {} for n in names}
    value = {n: float(lv["value"]) if isinstance(lv.get("value"), (int, float)) else math.nan
             for n, lv in levels.items()}
    lead = rows["lead_days"].to_numpy(int)
    p = {n: rows[f"p_exceed_{n}"].to_numpy(float) for n in names}
    w = {n: _lead_thresholds(levels[n], lead) for n in names}
    own = {n: p[n] >= w[n] for n in names}  # NaN thresholds compare False: unknown is not a warning
    issued = {n: rows[f"warn_{n}"].astype(bool).to_numpy() if f"warn_{n}" in rows.columns else own[n]
              for n in names}
    order = sorted(names, key=lambda n: -value[n] if math.isfinite(value[n]) else math.inf)
    out = [f'<h3>{say("report_levels", language)}</h3>', say("report_levels_intro", language), *notes]
    for n in order:
        lv = levels[n]
        unit = f" {_fmt(value[n])} m&sup3;/s" if math.isfinite(value[n]) else ""
        # daily mean: a fitted q20y is not the (higher) instantaneous 20-year peak an agency publishes
        kind = lv.get("kind", "daily mean")
        kind = f" {_e(say('report_daily_mean', language) if kind == 'daily mean' else kind)}" if unit else ""
        ci = lv.get("ci90")
        interval = (say("report_interval", language, lo=_fmt(float(ci[0])), hi=_fmt(float(ci[1])))
                    if isinstance(ci, list) and len(ci) == 2 and all(isinstance(c, (int, float)) for c in ci) else "")
        stage = say("report_stage_m", language, stage=_e(_fmt(lv["stage_m"]))) if lv.get("stage_m") is not None else ""
        warned = np.flatnonzero(issued[n])
        first = (say("report_first", language, lead=int(lead[warned[0]])) if len(warned)
                 else say("report_none", language))
        meta = say("report_meta_separator", language).join(x for x in (
            say("report_source", language, source=_e(phrase(lv["source"], language))) if lv.get("source") else "",
            say("report_probability_source", language, source=_e(phrase(lv["warn_probability_source"], language)))
            if lv.get("warn_probability_source") else "",
            first) if x)
        body = []
        for i in range(len(rows)):
            if issued[n][i] and own[n][i]:
                mark = say("report_yes", language)
            elif issued[n][i]:
                higher = [m for m in order if value[m] > value[n] and own[m][i]]
                mark = (say("report_yes_as", language, level=_e(higher[0])) if higher
                        else say("report_yes_higher", language))
            else:
                mark = ""
            date = f"<td>{_e(str(rows['valid_date'].iloc[i])[:10])}</td>" if "valid_date" in rows.columns else ""
            cls = ' class="warned"' if issued[n][i] else ""
            body.append(f"<tr{cls}><td>{int(lead[i])}</td>{date}"
                        f"<td>{_prob(p[n][i])}</td><td>{_prob(w[n][i])}</td><td>{mark}</td></tr>")
        head = (f"<tr><th>{say('report_lead', language)}</th>"
                + (f"<th>{say('report_valid_date', language)}</th>" if "valid_date" in rows.columns else "")
                + f"<th>{say('report_p', language, unit=unit)}</th><th>{say('report_warn_probability', language)}</th>"
                f"<th>{say('report_warns', language)}</th></tr>")
        out.append(f"<h4>{_e(n)}{':' + unit + kind if unit else ''}{interval}{stage}</h4><p class=\"meta\">{meta}</p>"
                   f'<table class="exceed" data-level="{_e(n)}"><thead>{head}</thead><tbody>{"".join(body)}'
                   "</tbody></table>")
    return "\n".join(out)


def _lead_thresholds(level: dict, lead) -> np.ndarray:
    """The warning probability at each lead: the level's per-lead one where it has it (the last one beyond
    its leads, as the warnings apply it), else its one probability; NaN where unknown."""
    by_lead = level.get("warn_probability_by_lead")
    if isinstance(by_lead, list) and by_lead:
        return np.asarray(by_lead, dtype=float)[np.clip(np.asarray(lead) - 1, 0, len(by_lead) - 1)]
    w = level.get("warn_probability")
    return np.full(len(lead), float(w) if isinstance(w, (int, float)) else math.nan)


def _prob(v: float) -> str:
    """A probability to three decimals (a duty forecaster compares it with the threshold beside it)."""
    return "-" if not math.isfinite(v) else f"{v:.3f}"


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_END = b"IEND\xaeB`\x82"  # the IEND chunk's type and CRC: the last 8 bytes of every whole PNG


def _figures(run_dir: Path, paths: Iterable[Path]) -> str:
    out = []
    for path in paths:
        rel = _rel(run_dir, path)
        try:
            raw = path.read_bytes()
        except OSError as e:
            out.append(_note(rel, e))
            continue
        # a damaged file would be embedded as a broken image with no word of why: say it, as for a bad table
        if not raw.startswith(_PNG_SIGNATURE):
            out.append(_note(rel, "not a PNG image"))
            continue
        if not raw.endswith(_PNG_END):
            out.append(_note(rel, "the PNG image is cut short (no end chunk)"))
            continue
        data = base64.b64encode(raw).decode("ascii")
        out.append(f'<figure><img src="data:image/png;base64,{data}" data-src="{_e(rel)}" '
                   f'alt="{_e(_alt_text(path))}"><figcaption>{_e(rel)}</figcaption></figure>')
    return "\n".join(out)


def _alt_text(path: Path) -> str:
    """What the figure is and shows, for a reader who cannot see it: the kind from the file name and the title the
    figure carries in its PNG (``forecast fan chart: Basin 32006: forecast issued 2014-02-05 (issue-time)``); the kind
    alone for a PNG without one."""
    kind = path.stem.replace("_", " ")
    title = _png_title(path)
    return f"{kind}: {title}" if title else kind


def _png_title(path: Path) -> str:
    """The ``Title`` text chunk of a PNG (tEXt, or iTXt for text beyond Latin-1; plots write it), or ""."""
    try:
        data = path.read_bytes()
    except OSError:
        return ""
    if not data.startswith(_PNG_SIGNATURE):
        return ""
    pos = 8
    while pos + 8 <= len(data):
        size = int.from_bytes(data[pos:pos + 4], "big")
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + size]
        if kind == b"IDAT" or kind == b"IEND":  # text chunks written before the image data are all there is
            break
        key, _, rest = body.partition(b"\0")
        if key == b"Title" and kind == b"tEXt":
            return rest.decode("latin-1").strip()
        if key == b"Title" and kind == b"iTXt" and rest[:1] == b"\0":  # uncompressed: flag, method, lang, key
            _lang, _, rest = rest[2:].partition(b"\0")
            return rest.partition(b"\0")[2].decode("utf-8", "replace").strip()
        pos += 12 + size
    return ""


# --------------------------------------------------------------------------------------------------
# tables
# --------------------------------------------------------------------------------------------------

def _render_json(obj: Any) -> str:
    """HTML for a metrics/summary JSON value.

    - ``{'model': {...}, 'persistence': {...}, ...}``: the two side by side, other keys below.
    - a dict with such dicts among its values (e.g. one per basin, or before/after): one side-by-side
      table each, the other values below.
    - a list of flat dicts: one row per dict.
    - anything else: a flattened key/value table.
    """
    if _is_paired(obj):
        return _paired_table(obj)
    if isinstance(obj, dict) and obj and any(_is_paired(v) for v in obj.values()):
        rest = {k: v for k, v in obj.items() if not _is_paired(v)}  # e.g. the fine-tune's blend weight
        return "\n".join(f"<h4>{_e(str(k))}</h4>{_paired_table(v)}" for k, v in obj.items() if _is_paired(v)) \
            + (f"<h4>other</h4>{_kv_table(_flatten(rest))}" if rest else "")
    if isinstance(obj, list) and obj and all(isinstance(r, dict) for r in obj):
        import pandas as pd

        return _df_html(pd.DataFrame([_flatten(r) for r in obj]))
    if isinstance(obj, dict):
        return _kv_table(_flatten(obj))
    return f"<pre>{_e(json.dumps(obj, indent=2))}</pre>"


def _is_paired(obj: Any) -> bool:
    return (isinstance(obj, dict) and isinstance(obj.get("model"), dict)
            and isinstance(obj.get("persistence"), dict))


def _paired_table(obj: dict) -> str:
    model, pers = _flatten(obj["model"]), _flatten(obj["persistence"])
    # A prediction's score on all days (the days after a gap too) gets a column beside the paired one.
    alld = _flatten(obj["model_all_days"]) if isinstance(obj.get("model_all_days"), dict) else None
    keys = list(model) + [k for k in pers if k not in model]
    extra_head = "<th>model, all days</th>" if alld is not None else ""
    rows = "".join(f"<tr><td>{_e(_with_unit(k))}</td><td>{_e(_fmt(model.get(k)))}</td>"
                   f"<td>{_e(_fmt(pers.get(k)))}</td>"
                   + (f"<td>{_e(_fmt(alld.get(k)))}</td>" if alld is not None else "") + "</tr>" for k in keys)
    table = (f"<table><thead><tr><th>metric</th><th>model</th><th>persistence</th>{extra_head}</tr></thead>"
             f"<tbody>{rows}</tbody></table>")
    rest = {k: v for k, v in obj.items() if k not in ("model", "persistence", "model_all_days")}
    return _below_flag(obj) + table + (_kv_table(_flatten(rest)) if rest else "")


def _below_flag(obj: dict) -> str:
    """A warning line where the model (or the raw model, before the persistence blend) lost to persistence."""
    below = obj.get("below_persistence")
    if not isinstance(below, dict) or not any(below.values()):
        return ""
    who = " and ".join({"model": "the model", "model_raw": "the raw model (before the persistence blend)"}.get(k, k)
                       for k, v in below.items() if v)
    period = f" on {obj['start']}..{obj['end']}" if "start" in obj and "end" in obj else ""
    return (f'<p class="warn"><strong>Below persistence</strong>{_e(period)}: {_e(who)} scored worse than '
            f"persistence (skill 1 - MSE/MSE<sub>persistence</sub> &lt; 0).</p>")


#: The unit of each metric that has one (the flows scored are in m3/s): an RMSE of 1.09 alone does not say of what.
_METRIC_UNITS = {"rmse": "m³/s", "mae": "m³/s", "pbias": "%"}


def _with_unit(key: str) -> str:
    """``key`` with its metric's unit where it names one (``rmse``, ``model_raw.rmse``, ``persistence_pbias``)."""
    unit = _METRIC_UNITS.get(re.split(r"[._]", str(key))[-1])
    return f"{key} ({unit})" if unit else str(key)


def _kv_table(flat: dict) -> str:
    rows = "".join(f"<tr><td>{_e(_with_unit(k))}</td><td>{_e(_fmt(v))}</td></tr>" for k, v in flat.items())
    return f"<table><tbody>{rows}</tbody></table>"


def _csv_table(path: Path, headers=None) -> str:
    """``path`` as a table; ``headers``: a function renaming its columns as shown."""
    try:
        import pandas as pd

        df = pd.read_csv(path)
        return _df_html(df.rename(columns=headers) if headers else df)
    except Exception as e:  # noqa: BLE001 - an unreadable CSV becomes a note, not a failed report
        return _note(path.name, e)


def _df_html(df) -> str:
    return df.to_html(index=False, border=0, na_rep="NaN", escape=True,
                      float_format=_num)


def _num(v: float) -> str:
    """Three decimals; numbers below 0.01 or above 1e7 in magnitude keep three significant digits."""
    if math.isnan(v):
        return "NaN"
    if not math.isfinite(v):
        return str(v)
    if v != 0 and (abs(v) < 1e-2 or abs(v) >= 1e7):
        return f"{v:.3g}"
    return f"{v:.3f}"


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return _num(v)
    try:  # numpy scalars
        import numpy as np

        if isinstance(v, np.integer):
            return str(int(v))
        if isinstance(v, np.floating):
            return _fmt(float(v))
    except ImportError:  # pragma: no cover
        pass
    if isinstance(v, (list, tuple)):
        return ", ".join(_fmt(x) for x in v)
    return str(v)


# --------------------------------------------------------------------------------------------------
# files
# --------------------------------------------------------------------------------------------------

def _find(run_dir: Path, pattern: str) -> list[Path]:
    """Files matching ``pattern`` in ``run_dir`` and its direct subfolders (not hidden), sorted."""
    top = sorted(p for p in run_dir.glob(pattern) if p.is_file() and not p.name.startswith("."))
    sub = sorted(p for p in run_dir.glob(f"*/{pattern}")
                 if p.is_file() and not p.name.startswith(".") and not p.parent.name.startswith("."))
    return top + sub


def _figure_group(name: str) -> str:
    n = name.lower()
    if n.startswith("forecast"):
        return "forecast"
    if n.startswith("verify"):
        return "verify"
    if "hydrograph" in n or "performance" in n:
        return "hydro"
    if "attention" in n:
        return "attention"
    if "curve" in n or "loss" in n:
        return "training"
    return "other"


def _rel(run_dir: Path, path: Path) -> str:
    return path.relative_to(run_dir).as_posix()


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _note(name: str, err: BaseException | str) -> str:
    msg = " ".join(str(err).split()) or type(err).__name__
    return f'<p class="note">could not read {_e(name)}: {_e(msg)}</p>'


def _e(s: str) -> str:
    return html.escape(str(s), quote=True)
