"""Bad inputs: every command and the data loader fail with one clear line, the right exit code, no
traceback, and nothing left behind; messy but valid CSVs are read correctly.

Broken datasets are copies of the tiny synthetic data with one file damaged. The commands run in
process (``main(argv)``), so their stderr is what a user would see.
"""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest
import torch

from sca2lstm.cli import data as data_cli
from sca2lstm.cli import finetune as finetune_cli
from sca2lstm.cli import forecast as forecast_cli
from sca2lstm.cli import predict as predict_cli
from sca2lstm.cli import train as train_cli
from sca2lstm.data.camels_gb import read_timeseries
from sca2lstm.data.dataset import load_basin
from sca2lstm.errors import DataError

from failure_helpers import BASIN, FEW_RECORDS, copy_data, everything_under, one_line, snapshot, tiny_yaml, ts_file

MAINS = {"train": train_cli.main, "finetune": finetune_cli.main, "predict": predict_cli.main,
         "forecast": forecast_cli.main}
PROGS = {"train": "sca2lstm.py", "finetune": "fine_train.py", "predict": "predict.py", "forecast": "sca2lstm forecast"}


# ------------------------------------------------------------------------------------ damaged files
def _frame(path):
    return pd.read_csv(path, dtype=str, keep_default_na=False)  # the file's text, cell for cell


def _rewrite(path, fn, **to_csv):
    df = fn(_frame(path))
    df.to_csv(path, index=to_csv.pop("index", False), **to_csv)


def _set(col, value, row=None):
    def fn(df):
        if row is None:
            df[col] = value
        else:
            df.loc[row, col] = value
        return df
    return fn


def _shuffle(df):
    return df.sample(frac=1.0, random_state=0)


def _day_first(df):
    df["date"] = pd.to_datetime(df["date"]).dt.strftime("%d/%m/%Y")
    return df


def _messy(path):
    """Everything the reader must accept at once: unsorted rows, day-first dates, an index column, BOM, CRLF."""
    df = _day_first(_shuffle(_frame(path)))
    text = df.to_csv(index=True, lineterminator="\r\n")
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())


DAMAGES = {
    "missing_file": lambda f: f.unlink(),
    "empty_file": lambda f: f.write_bytes(b""),
    "header_only": lambda f: f.write_text(f.read_text().splitlines()[0] + "\n"),
    # No discharge in m3/s and none in mm/d to derive it from.
    "renamed_column": lambda f: f.write_text(f.read_text().replace("discharge_vol", "q", 1).replace("discharge_spec", "qs", 1)),
    "dropped_precip": lambda f: _rewrite(f, lambda df: df.drop(columns=["precipitation"])),
    "non_numeric": lambda f: _rewrite(f, _set("precipitation", "abc", row=400)),
    "duplicate_dates": lambda f: _rewrite(f, lambda df: pd.concat([df.iloc[:401], df.iloc[400:]])),
    "bad_date": lambda f: _rewrite(f, _set("date", "1971-13-45", row=400)),
    "not_utf8": lambda f: f.write_bytes(f.read_bytes().replace(b"humidity", "humidit\u00e9".encode("latin-1"), 1)),
    "all_nan_discharge": lambda f: _rewrite(f, lambda df: _set("discharge_spec", "NaN")(_set("discharge_vol", "NaN")(df))),
    "all_nan_precip": lambda f: _rewrite(f, _set("precipitation", "NaN")),
    "few_nan_precip": lambda f: _rewrite(f, lambda df: _set("precipitation", "", row=[500, 501, 900])(df)),
    # accepted
    "unsorted": lambda f: _rewrite(f, _shuffle),
    "bom": lambda f: f.write_bytes(b"\xef\xbb\xbf" + f.read_bytes()),
    "crlf": lambda f: f.write_bytes(f.read_bytes().replace(b"\n", b"\r\n")),
    "index_column": lambda f: _rewrite(f, lambda df: df, index=True),
    "day_first": lambda f: _rewrite(f, _day_first),
    "slash_year_first": lambda f: _rewrite(f, lambda df: df.assign(date=df["date"].str.replace("-", "/"))),
    "messy": _messy,
}


def _damaged(tmp_path, src, name):
    d = copy_data(src, tmp_path / "camels")
    DAMAGES[name](ts_file(d))
    return d


def test_data_check_lists_every_unusable_basin_and_exits_non_zero(tmp_path, tiny_data_dir, capsys):
    """Two damaged basins: both are named with their reason, the good one is still listed, then a summary."""
    d = copy_data(tiny_data_dir, tmp_path / "camels")
    DAMAGES["empty_file"](ts_file(d, "32006"))
    DAMAGES["non_numeric"](ts_file(d, "10003"))
    rc = data_cli.main(["check", "--data_dir", str(d)])
    out, err = capsys.readouterr()
    assert rc == 1
    lines = out.splitlines()
    bad = [ln for ln in lines if " bad: " in ln]
    assert len(bad) == 2
    assert bad[0].split()[0] == "10003" and "'abc'" in bad[0]  # in basin order, as listed
    assert bad[1].split()[0] == "32006" and "is empty" in bad[1]
    assert any(ln.split()[:1] == ["10002"] and " bad: " not in ln for ln in lines)  # the good basin's row
    assert lines[-1] == "1 of 3 basins usable, 2 bad"
    assert one_line(err) == "sca2lstm data: error: 2 of 3 basins cannot be used: 10003, 32006"


def test_data_check_lists_a_basin_without_a_single_flow_as_unusable(tmp_path, tiny_data_dir, capsys):
    """A file whose discharge columns are empty reads, but no command can train on or score it: listed bad, not as
    usable with every day missing."""
    d = copy_data(tiny_data_dir, tmp_path / "camels")
    DAMAGES["all_nan_discharge"](ts_file(d, "32006"))
    rc = data_cli.main(["check", "--data_dir", str(d)])
    out, err = capsys.readouterr()
    assert rc == 1
    (bad,) = [ln for ln in out.splitlines() if " bad: " in ln]
    assert bad.split()[0] == "32006" and f"bad: {ts_file(d, '32006')}: basin 32006: no observed discharge on any of its" in bad
    assert out.splitlines()[-1] == "2 of 3 basins usable, 1 bad"
    assert one_line(err) == "sca2lstm data: error: 1 of 3 basins cannot be used: 32006"


def test_data_check_lists_a_basin_too_short_for_any_command_as_unusable(tmp_path, tiny_data_dir, capsys):
    """A record of 5 days reads, but pretraining leaves it out and fine-tuning and prediction refuse it: listed bad,
    naming the days it has and the days each needs under the checked (default) config, not as usable."""
    d = copy_data(tiny_data_dir, tmp_path / "camels")
    _rewrite(ts_file(d, "32006"), lambda df: df.sort_values("date").head(5))
    rc = data_cli.main(["check", "--data_dir", str(d)])
    out, err = capsys.readouterr()
    assert rc == 1
    (bad,) = [ln for ln in out.splitlines() if " bad: " in ln]
    assert bad == ("   32006 bad: basin 32006: 5 days of observed discharge (1970-10-01..1970-10-05); the minimum is "
                   "730 days (2 years) when the record does not cover the configured periods (1970-10-01..2015-09-30); "
                   "nor can pretraining use it: 5 days of observed discharge in the training period 1970-10-01.."
                   "2000-09-30, where it needs 365 (data.min_train_flows)")
    assert out.splitlines()[-1] == "2 of 3 basins usable, 1 bad"
    assert one_line(err) == "sca2lstm data: error: 1 of 3 basins cannot be used: 32006"


def test_a_damaged_attribute_file_is_one_error_of_the_dataset_not_one_per_basin(tmp_path, tiny_data_dir, capsys):
    """A gauge_id written twice in an attribute file that every basin reads: 'data check' and pretraining stop with
    one line naming the file, not the same reason repeated for each basin (598 lines on the large sample)."""
    d = copy_data(tiny_data_dir, tmp_path / "camels")
    (att,) = [p for p in sorted((d / "attributes").glob("*.csv")) if "topographic" in p.name]
    lines = att.read_text().splitlines()
    att.write_text("\n".join(lines + [lines[1]]) + "\n")
    expected = f"{att}: gauge_id {lines[1].split(',')[0]!r} appears twice; one row per basin"
    assert data_cli.main(["check", "--data_dir", str(d)]) == 1
    out, err = capsys.readouterr()
    assert one_line(err) == f"sca2lstm data: error: {expected}" and " bad: " not in out
    cfg = tiny_yaml(tmp_path / "tiny.yaml")
    assert train_cli.main(["--config", str(cfg), "--data_dir", str(d), "--output", str(tmp_path / "m.pth"),
                           "--epochs", "0"]) == 1
    cap = capsys.readouterr()
    assert one_line(cap.err) == f"sca2lstm.py: error: {expected}"
    assert "left out" not in cap.out + cap.err


def test_data_check_of_a_sound_dataset_exits_zero(tiny_data_dir, capsys):
    rc = data_cli.main(["check", "--data_dir", str(tiny_data_dir)])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert out.splitlines()[-1] == "3 of 3 basins usable, 0 bad"


# ------------------------------------------------------------------------------------ the data loader
LOADER_ERRORS = [
    ("missing_file", "unknown basin '32006'"),
    ("empty_file", "is empty"),
    ("header_only", "no data rows"),
    ("renamed_column", "'discharge_vol'"),
    ("non_numeric", "'abc'"),
    ("duplicate_dates", "duplicate date 1971-11-05"),
    ("bad_date", "'1971-13-45'"),
    # the reading commands have no --encoding: the advice is to save the file as UTF-8
    ("not_utf8", "is not UTF-8 text (byte 0xe9 at offset 76 does not decode); save it as UTF-8 (in Excel: CSV UTF-8), the encoding of the data layout"),
]


LOADER_CASES = [(r, d, e) for r in ("read_timeseries", "load_basin") for d, e in LOADER_ERRORS]


@pytest.mark.parametrize("reader,damage,expected", LOADER_CASES, ids=[f"{d}-{r}" for r, d, _ in LOADER_CASES])
def test_loader_rejects_bad_file(tmp_path, tiny_data_dir, tiny_cfg, reader, damage, expected):
    d = _damaged(tmp_path, tiny_data_dir, damage)
    with pytest.raises(DataError) as e:
        if reader == "read_timeseries":
            read_timeseries(d, BASIN)
        else:
            load_basin(d, BASIN, tiny_cfg)
    msg = str(e.value)
    assert expected in msg
    assert "\n" not in msg
    if damage not in ("missing_file",):
        assert ts_file(d).name in msg  # names the file


@pytest.mark.parametrize("damage", ["unsorted", "bom", "crlf", "index_column", "day_first", "slash_year_first",
                                    "messy"])
def test_loader_accepts_messy_but_valid_file(tmp_path, tiny_data_dir, tiny_cfg, damage):
    clean = read_timeseries(tiny_data_dir, BASIN)
    d = _damaged(tmp_path, tiny_data_dir, damage)
    got = read_timeseries(d, BASIN)
    pd.testing.assert_frame_equal(got, clean)
    assert got.index.is_monotonic_increasing
    a, b = load_basin(tiny_data_dir, BASIN, tiny_cfg), load_basin(d, BASIN, tiny_cfg, use_cache=False)
    assert np.array_equal(a.dates, b.dates)
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.y, b.y)


def test_ambiguous_day_month_order_is_an_error_not_a_guess(tmp_path, tiny_data_dir):
    """01/02/1971 .. 12/02/1971 could be January 2nd or February 1st: refuse rather than guess."""
    d = copy_data(tiny_data_dir, tmp_path / "camels")
    f = ts_file(d)
    df = _frame(f).iloc[:200].copy()
    df = df[pd.to_datetime(df["date"]).dt.day <= 12]  # no day above 12 anywhere
    df["date"] = pd.to_datetime(df["date"]).dt.strftime("%d/%m/%Y")
    df.to_csv(f, index=False)
    with pytest.raises(DataError, match="do not show which"):
        read_timeseries(d, BASIN)


def test_few_missing_inputs_warn_once_with_a_count(tmp_path, tiny_data_dir, capsys):
    d = _damaged(tmp_path, tiny_data_dir, "few_nan_precip")
    cfg = tiny_yaml(tmp_path / "tiny.yaml")
    out = tmp_path / "out" / "m.pth"
    rc = train_cli.main(["--config", str(cfg), "--data_dir", str(d), "--output", str(out), "--epochs", "0",
                         "--basins", BASIN])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    warn = [ln for ln in cap.out.splitlines() if "missing input values" in ln]
    assert len(warn) == 1, cap.out
    assert "basin 32006" in warn[0] and "precipitation: 3" in warn[0]
    assert out.is_file()



def test_rain_gaps_that_leave_the_rain_sums_missing_are_counted_in_the_same_line(tmp_path, tiny_data_dir, tiny_cfg,
                                                                               caplog):
    """One day in four without rain leaves no 30-day window with the 24 days of rain a sum needs: the 30-day sum is
    missing on every day and the 7-day sum (6 of 7 days) on many, far more than the rain itself. The missing-inputs
    line says so (the file shows only the rain's gaps), still one line."""
    from sca2lstm.data.dataset import check_period_inputs

    d = copy_data(tiny_data_dir, tmp_path / "camels")
    f = ts_file(d)
    df = pd.read_csv(f)
    gap = np.arange(len(df)) % 4 == 3
    df.loc[gap, "precipitation"] = np.nan
    df.to_csv(f, index=False)
    rec = load_basin(d, BASIN, tiny_cfg, use_cache=False)
    start, end = "1972-01-01", "1973-12-31"
    days = pd.to_datetime(df["date"])
    inside = ((days >= start) & (days <= end)).to_numpy()
    rain = df["precipitation"]
    want_7d = int((rain.notna().rolling(7, min_periods=7).sum() < 6)[inside].sum())  # two of its days missing
    assert int(gap[inside].sum()) < want_7d < int(inside.sum())
    with caplog.at_level("WARNING", logger="sca2lstm"):
        check_period_inputs(rec, tiny_cfg, start, end, "training")
    lines = [r.getMessage() for r in caplog.records if "missing input values" in r.getMessage()]
    assert len(lines) == 1
    assert f"precipitation: {int(gap[inside].sum())}" in lines[0]
    assert f"precip_sum_7d on {want_7d} and precip_sum_30d on {int(inside.sum())} of the {int(inside.sum())} days" \
        in lines[0]
    assert "(a sum needs the rain of 6 of 7 and 24 of 30 days)" in lines[0]


# ------------------------------------------------------------------------------------ the commands
class Ctx:
    """Paths one command run needs; the data folder and checkpoint may be damaged per case."""

    def __init__(self, tmp_path, data, ckpt):
        self.tmp, self.data, self.good_ckpt = tmp_path, data, ckpt
        self.out = tmp_path / "out"
        self.out.mkdir()
        self.cfg = tiny_yaml(tmp_path / "tiny.yaml")
        self.ckpt = ckpt

    def fmt(self, s: str) -> str:
        return s.format(tmp=self.tmp, data=self.data, ckpt=self.ckpt, out=self.out)

    def argv(self, cmd: str, overrides: dict) -> list:
        base = {
            "train": {"config": self.cfg, "data_dir": self.data, "output": self.out / "m.pth", "epochs": "1",
                      "basins": BASIN},
            "finetune": {"target_basin": BASIN, "pretrained_model": self.ckpt, "data_dir": self.data,
                         "output_dir": self.out, "epochs": "1"},
            "predict": {"model": self.ckpt, "basin": BASIN, "data_dir": self.data, "output_dir": self.out},
            "forecast": {"model": self.ckpt, "basin": BASIN, "data_dir": self.data, "output_dir": self.out},
        }[cmd]
        for k, v in overrides.items():
            base[k] = v(self) if callable(v) else v
        argv = []
        for k, v in base.items():
            if v is None:
                continue
            argv.append(f"--{k}")
            argv += [self.fmt(str(x)) for x in (v if isinstance(v, list) else [v])]
        return argv


def _bad_ckpt(ctx, kind):
    p = ctx.tmp / f"{kind}.pth"
    good = ctx.good_ckpt.read_bytes()
    if kind == "missing":
        pass
    elif kind == "empty":
        p.write_bytes(b"")
    elif kind == "truncated":
        p.write_bytes(good[: len(good) // 2])
    elif kind == "random":
        p.write_bytes(random.Random(0).randbytes(4096))
    elif kind == "text":
        p.write_text("this is a text file, not a model\n")
    elif kind == "notes":  # a text file given for the model: named as one, not by torch's internal error
        p = ctx.tmp / "notes.txt"
        p.write_text("run notes: retrain with the 2020 data\n")
    elif kind == "zip":  # a zip archive that is not torch.save's
        import zipfile

        p = ctx.tmp / "model.zip"
        with zipfile.ZipFile(p, "w") as z:
            z.writestr("readme.txt", "not a model")
    elif kind in ("folder", "empty_folder"):  # a run's folder given where its checkpoint goes
        p = ctx.tmp / "model_output"
        p.mkdir()
        if kind == "folder":
            (p / "sca2lstm.pth").write_bytes(good)
    elif kind == "other_config":  # weights of a model with another hidden size, under the original config
        from sca2lstm import SCA2LSTM
        from sca2lstm.config import Config
        ck = torch.load(ctx.good_ckpt, weights_only=True)
        other = Config.from_dict(ck["config"]).replace(model={"hidden_size": 8})
        ck["model_state_dict"] = SCA2LSTM(other).state_dict()
        torch.save(ck, p)
    return p


def _yaml(**sections):
    return lambda c: tiny_yaml(c.tmp / "case.yaml", **sections)


def _download_folder(c):
    """The folder around the data folder (the unzipped download's): given by mistake for the data folder."""
    d = c.tmp / "download"
    d.mkdir(exist_ok=True)
    if not (d / "camels").exists():
        (d / "camels").symlink_to(c.data, target_is_directory=True)
    return d


NOWHERE = "{tmp}/nowhere"
OUTSIDE = {"train_start": "1990-01-01", "train_end": "1993-12-31", "val_start": "1994-01-01",
           "val_end": "1994-12-31", "test_start": "1995-01-01", "test_end": "1995-12-31"}

# (command, damage, checkpoint kind, flag overrides, exit code, text the one stderr line must hold)
CASES = [
    # pretraining
    ("train", None, None, {"epochs": "-1"}, 2, "--epochs"),
    ("train", None, None, {"batch_size": "0"}, 2, "--batch_size"),
    ("train", None, None, {"learning_rate": "-1"}, 2, "--learning_rate"),
    ("train", None, None, {"epocs": "3"}, 2, "unrecognized arguments: --epocs 3 (did you mean --epochs?)"),
    ("train", None, None, {"learning-rate": "0.1"}, 2, "--learning-rate 0.1 (did you mean --learning_rate?)"),
    ("train", None, None, {"seed": "-1"}, 2, "--seed"),
    ("train", None, None, {"data_dir": NOWHERE}, 1, "nowhere does not exist"),
    ("train", None, None, {"data_dir": "{tmp}/tiny.yaml"}, 1, "data folder {tmp}/tiny.yaml is a file, not a folder"),
    ("train", None, None, {"data_dir": _download_folder}, 1,
     "{tmp}/download/timeseries does not exist; expected timeseries CSVs in data_dir/timeseries/; did you mean "
     "{tmp}/download/camels, which holds timeseries/?"),
    ("train", None, None, {"basins": "99999"}, 1, "unknown basin '99999'"),
    ("train", None, None, {"config": "{tmp}/missing.yaml"}, 2, "missing.yaml"),
    ("train", None, None, {"config": _yaml(data={"train_start": "1974-12-31", "train_end": "1971-01-01"})}, 2,
     "data.train_start=1974-12-31 is after data.train_end"),
    # the config's period is wrong, not each basin: said once, not as every basin left out
    ("train", None, None, {"config": _yaml(data=OUTSIDE)}, 1,
     "the training period 1990-01-01..1993-12-31 is outside the data of every basin (their records span "),
    ("train", "missing_file", None, {}, 1, "unknown basin '32006'"),
    ("train", "empty_file", None, {}, 1, "is empty"),
    ("train", "header_only", None, {}, 1, "no data rows"),
    ("train", "renamed_column", None, {}, 1, "'discharge_vol'"),
    ("train", "non_numeric", None, {}, 1, "'abc'"),
    ("train", "duplicate_dates", None, {}, 1, "duplicate date"),
    ("train", "all_nan_discharge", None, {}, 1, "no observed discharge in the training period"),
    ("train", "all_nan_precip", None, {}, 1, "['precipitation'] have no values in the training period"),
    # A column missing from the file is masked like an empty one: with no other basin, it has no values.
    ("train", "dropped_precip", None, {}, 1, "['precipitation'] have no values in the training period"),
    # fine-tuning
    ("finetune", None, None, {"fine_tune_ratio": "0"}, 2, "--fine_tune_ratio"),
    ("finetune", None, None, {"fine_tune_ratio": "1"}, 2, "--fine_tune_ratio"),
    ("finetune", None, None, {"fine_tune_ratio": "1.5"}, 2, "--fine_tune_ratio"),
    ("finetune", None, None, {"epochs": "-1"}, 2, "--epochs"),
    ("finetune", None, None, {"batch_size": "0"}, 2, "--batch_size"),
    ("finetune", None, None, {"seed": "-1"}, 2, "--seed"),
    ("finetune", None, None, {"learning_rate": "-1"}, 2, "--learning_rate"),
    ("finetune", None, None, {"pretrained_model": None}, 2, "--pretrained_model"),
    ("finetune", None, None, {"pretrained_model": None, "pretrain_model": "{ckpt}"}, 2,
     "required: --pretrained_model (--pretrain_model is not an option; did you mean --pretrained_model?)"),
    ("finetune", None, None, {"target_basin": "32006;rm"}, 2, "invalid basin id"),
    ("finetune", None, "missing", {}, 1, "{ckpt} does not exist"),
    ("finetune", None, "empty", {}, 1, "{ckpt} is empty"),
    ("finetune", None, "truncated", {}, 1, "{ckpt} is truncated"),
    ("finetune", None, "random", {}, 1, "{ckpt} is not a PyTorch checkpoint"),
    ("finetune", None, "text", {}, 1, "{ckpt} is a text file, not a PyTorch checkpoint (it begins 'this is a text file"),
    ("finetune", None, "notes", {}, 1, "{ckpt} is a text file, not a PyTorch checkpoint (it begins 'run notes: retrain"),
    ("finetune", None, "zip", {}, 1, "{ckpt} is a zip archive, but not a PyTorch checkpoint (it holds no data.pkl)"),
    ("finetune", None, "other_config", {}, 1, "{ckpt} does not fit this model config: shape mismatch"),
    ("finetune", None, "folder", {}, 1, "{ckpt} is a folder, not a checkpoint; give a .pth file, e.g. {ckpt}/sca2lstm.pth"),
    ("finetune", None, "empty_folder", {}, 1, "{ckpt} is a folder, not a checkpoint; it holds no .pth file"),
    ("finetune", None, None, {"target_basin": "99999"}, 1, "unknown basin '99999'"),
    ("finetune", None, None, {"data_dir": NOWHERE}, 1, "nowhere does not exist"),
    ("finetune", "missing_file", None, {}, 1, "unknown basin '32006'"),
    ("finetune", "renamed_column", None, {}, 1, "'discharge_vol'"),
    # No observed day at all: said as such, not as a record short of the configured periods (its days span them).
    ("finetune", "all_nan_discharge", None, {}, 1, "basin 32006: no observed discharge on any of its"),
    # ("finetune", "all_nan_precip") is no error: the basin's empty input is masked (test_missing_inputs.py).
    # prediction
    ("predict", None, None, {"model": "{tmp}/nothing/*.pth"}, 1, "no checkpoint matches {tmp}/nothing/*.pth"),
    ("predict", None, None, {"basin": None}, 2, "--basin"),
    ("predict", None, None, {"basin": None, "bassin": BASIN}, 2, "(--bassin is not an option; did you mean --basin?)"),
    ("predict", None, None, {"format": "xlsx"}, 2, "--format"),
    ("predict", None, None, {"start": "1976-12-31", "end": "1976-01-01"}, 2, "--start 1976-12-31 is after --end"),
    # one end given beyond the test period's other end: the day not given is named as the period's, not as a flag
    ("predict", None, None, {"start": "1977-06-01"}, 2,
     "--start 1977-06-01 is after the test period's end 1976-12-31; give --end too"),
    ("predict", None, None, {"end": "1975-06-01"}, 2,
     "the test period's start 1976-01-01 is after --end 1975-06-01; give --start too"),
    ("predict", None, None, {"start": "soon"}, 2, "--start 'soon' is not a date"),
    # day and month in either order: refused, not read month-first as pandas would (9 January)
    ("predict", None, None, {"start": "01/09/1976"}, 2, "--start '01/09/1976' is not a date; expected YYYY-MM-DD"),
    ("predict", None, None, {"start": "1990-01-01", "end": "1990-12-31"}, 1, "outside its data"),
    ("predict", None, None, {"basin": "99999"}, 1, "unknown basin '99999'"),
    ("predict", None, None, {"basin": ["32006", "99999"]}, 1, "unknown basin '99999'"),  # no partial output
    ("predict", None, None, {"data_dir": NOWHERE}, 1, "nowhere does not exist"),
    ("predict", "all_nan_discharge", None, {}, 1, "basin 32006: no observed discharge on any of its"),
    ("predict", None, None, {"data_dir": "{tmp}/tiny.yaml"}, 1, "data folder {tmp}/tiny.yaml is a file, not a folder"),
    ("predict", None, None, {"data_dir": _download_folder}, 1, "did you mean {tmp}/download/camels, which holds"),
    ("predict", None, "missing", {}, 1, "no checkpoint matches {ckpt}"),
    ("predict", None, "truncated", {}, 1, "{ckpt} is truncated"),
    ("predict", None, "random", {}, 1, "{ckpt} is not a PyTorch checkpoint"),
    ("predict", None, "text", {}, 1, "{ckpt} is a text file, not a PyTorch checkpoint (it begins 'this is a text file"),
    ("predict", None, "notes", {}, 1, "{ckpt} is a text file, not a PyTorch checkpoint (it begins 'run notes: retrain"),
    ("predict", None, "zip", {}, 1, "{ckpt} is a zip archive, but not a PyTorch checkpoint (it holds no data.pkl)"),
    ("predict", None, "other_config", {}, 1, "{ckpt} does not fit this model config"),
    ("predict", None, "folder", {}, 1, "{ckpt} is a folder, not a checkpoint; give a .pth file, e.g. {ckpt}/sca2lstm.pth"),
    ("predict", None, "empty_folder", {}, 1, "{ckpt} is a folder, not a checkpoint; it holds no .pth file"),
    ("predict", "missing_file", None, {}, 1, "unknown basin '32006'"),
    ("predict", "header_only", None, {}, 1, "no data rows"),
    ("predict", "renamed_column", None, {}, 1, "'discharge_vol'"),
    ("predict", "bad_date", None, {}, 1, "'1971-13-45'"),
    # predict.py has no --encoding: the remedy is one it can take
    ("predict", "not_utf8", None, {}, 1, "does not decode); save it as UTF-8 (in Excel: CSV UTF-8), the encoding of the data layout, or import"),
    # issue-time forecasts
    ("forecast", None, None, {"lead_days": "3"}, 2, "--lead_days 3 (did you mean --leads?)"),
    ("forecast", None, None, {"issue_date": "01/09/1976"}, 2,
     "--issue_date '01/09/1976' is not a date; expected YYYY-MM-DD"),
    ("forecast", None, None, {"from": "01/01/1976", "to": "1976-03-01"}, 2,
     "--from '01/01/1976' is not a date; expected YYYY-MM-DD"),
    ("forecast", None, None, {"from": "1976-01-01", "to": "1976-13-01"}, 2, "--to '1976-13-01' is not a date"),
]


def _case_id(c):
    cmd, damage, ck, over, _, _ = c
    what = damage or (f"ckpt_{ck}" if ck else "_".join(f"{k}={v}" if not callable(v) else k
                                                        for k, v in over.items()))
    return f"{cmd}-{what}".replace("/", "").replace("{tmp}", "")


@pytest.mark.parametrize("cmd,damage,ck,over,code,expected", CASES, ids=[_case_id(c) for c in CASES])
def test_command_rejects_bad_input(tmp_path, tiny_data_dir, pretrained_ckpt, capsys, cmd, damage, ck, over,
                                   code, expected):
    data = _damaged(tmp_path, tiny_data_dir, damage) if damage else tiny_data_dir
    ctx = Ctx(tmp_path, data, pretrained_ckpt)
    if ck:
        ctx.ckpt = _bad_ckpt(ctx, ck)
    rc = MAINS[cmd](ctx.argv(cmd, over))
    err = capsys.readouterr().err
    line = one_line(err)
    assert rc == code, err
    assert line.startswith(f"{PROGS[cmd]}: error: ")
    assert ctx.fmt(expected) in line
    assert "pop from empty list" not in line and "inline_container" not in line  # torch's internals, never shown
    assert everything_under(ctx.out) == []  # no checkpoint, run folder or prediction left behind


def test_debug_shows_the_traceback(tmp_path, capsys):
    cfg = tiny_yaml(tmp_path / "tiny.yaml")
    rc = train_cli.main(["--config", str(cfg), "--data_dir", str(tmp_path / "nowhere"), "--output",
                         str(tmp_path / "m.pth"), "--debug"])
    err = capsys.readouterr().err
    assert rc == 1
    assert "Traceback" in err and "DataError" in err
    assert err.strip().splitlines()[-1].startswith("sca2lstm.py: error: data folder")


def test_failed_pretraining_leaves_no_empty_output_folder(tmp_path, capsys):
    """A run refused before it trained takes back the folders it made (./model_output of the guide)."""
    cfg = tiny_yaml(tmp_path / "tiny.yaml")
    out = tmp_path / "model_output" / "sca2lstm.pth"
    assert train_cli.main(["--config", str(cfg), "--data_dir", str(tmp_path / "nowhere"), "--output", str(out)]) == 1
    assert "data folder" in capsys.readouterr().err
    assert not (tmp_path / "model_output").exists()


# ------------------------------------------------------------------------------------ earlier outputs survive
def test_failed_predict_leaves_earlier_output_untouched(tmp_path, tiny_data_dir, pretrained_ckpt, capsys):
    ctx = Ctx(tmp_path, tiny_data_dir, pretrained_ckpt)
    assert predict_cli.main(ctx.argv("predict", {})) == 0
    before = snapshot(ctx.out)
    assert "basin_32006/series.csv" in before
    bad_data = _damaged(tmp_path, tiny_data_dir, "renamed_column")
    for over in ({"basin": ["32006", "99999"]}, {"data_dir": bad_data}, {"model": _bad_ckpt(ctx, "truncated")}):
        capsys.readouterr()
        assert predict_cli.main(ctx.argv("predict", over)) == 1
        one_line(capsys.readouterr().err)
        assert snapshot(ctx.out) == before  # byte-identical, and no new or temp files


def test_failed_finetune_leaves_earlier_output_untouched(tmp_path, tiny_data_dir, pretrained_ckpt, capsys):
    ctx = Ctx(tmp_path, tiny_data_dir, pretrained_ckpt)
    assert finetune_cli.main(ctx.argv("finetune", {"epochs": "0"})) == 0
    before = snapshot(ctx.out)
    (run,) = (ctx.out / "basin_32006").iterdir()
    assert (run / "best_model_basin_32006.pth").is_file()
    bad = _damaged(tmp_path, tiny_data_dir, "all_nan_discharge")
    capsys.readouterr()
    assert finetune_cli.main(ctx.argv("finetune", {"data_dir": bad})) == 1
    one_line(capsys.readouterr().err)
    assert snapshot(ctx.out) == before


def test_failed_pretrain_leaves_earlier_checkpoint_untouched(tmp_path, tiny_data_dir, capsys):
    ctx = Ctx(tmp_path, tiny_data_dir, None)
    assert train_cli.main(ctx.argv("train", {"epochs": "0"})) == 0
    ck = (ctx.out / "m.pth").read_bytes()
    log = ctx.out / "m_run" / "train.log"
    good_log = log.read_text(encoding="utf-8")
    bad = _damaged(tmp_path, tiny_data_dir, "non_numeric")
    capsys.readouterr()
    assert train_cli.main(ctx.argv("train", {"data_dir": bad})) == 1
    error = one_line(capsys.readouterr().err)
    assert (ctx.out / "m.pth").read_bytes() == ck
    assert (ctx.out / "m_run" / "history.csv").is_file()  # the earlier run folder is kept
    # The earlier run's log is kept as it was; the failed run's lines, from its start to its reason, are beside it.
    assert log.read_text(encoding="utf-8") == good_log
    assert good_log.splitlines()[0].endswith(f"new run, output {ctx.out / 'm.pth'}")
    added = (ctx.out / "m_run" / "unfinished" / "train.log").read_text(encoding="utf-8").splitlines()
    assert added[0].endswith(f"sca2lstm.py: new run, output {ctx.out / 'm.pth'}")
    assert " ERROR sca2lstm.py: run failed: " in added[-1]
    assert added[-1].split("run failed: ")[1] in error


def test_messy_csv_is_accepted_by_predict(tmp_path, tiny_data_dir, pretrained_ckpt, capsys):
    """BOM + CRLF + index column + unsorted rows + day-first dates: predicted, with the right observations."""
    ctx = Ctx(tmp_path, _damaged(tmp_path, tiny_data_dir, "messy"), pretrained_ckpt)
    rc = predict_cli.main(ctx.argv("predict", {"start": "1976-01-01", "end": "1976-03-31"}))
    assert rc == 0, capsys.readouterr().err
    got = pd.read_csv(ctx.out / "basin_32006" / "series.csv", parse_dates=["date"]).set_index("date")
    want = read_timeseries(tiny_data_dir, BASIN).loc["1976-01-01":"1976-03-31", "discharge_vol"]
    assert list(got.index) == list(want.index)
    np.testing.assert_allclose(got["observed"].to_numpy(), want.to_numpy(), atol=5e-5)  # written with 4 decimals


# ------------------------------------------------------------------------------------ output paths in the way
def _output_cases(ctx, tiny_data_dir):
    """(argv of ``sca2lstm``, the text of the one stderr line) for each command's output flag given a path
    that cannot be written: a folder where a file goes, a file where a folder goes, a path under a file."""
    file = ctx.cfg                      # an existing file
    under = file / "sub"                # a path under a file
    station = ["station", "import", str(ts_file(tiny_data_dir)), "--id", "x1", "--map",
               "date=date,precipitation=precipitation,discharge=discharge_vol", "--discharge_unit", "m3/s"]
    forecast = ["forecast", "--model", str(ctx.ckpt), "--basin", BASIN]
    weather = ["weather", "fetch", "--basin", BASIN, "--model", str(ctx.ckpt), "--base_url", "http://127.0.0.1:9",
               "--retries", "0"]
    return [
        (["train", *ctx.argv("train", {"output": ctx.out})], f"--output {ctx.out} is a folder; expected a file"),
        (["train", *ctx.argv("train", {"output": under / "m.pth"})], f"{file} is a file, not a folder"),
        (["finetune", *ctx.argv("finetune", {"output_dir": file})], f"--output_dir {file} is a file; expected a folder"),
        (["predict", *ctx.argv("predict", {"output_dir": file})], f"--output_dir {file} is a file; expected a folder"),
        (["predict", *ctx.argv("predict", {"output_dir": under})], f"{file} is a file, not a folder"),
        ([*forecast, "--output_dir", str(file)], f"--output_dir {file} is a file; expected a folder"),
        (["verify", str(file), "--output_dir", str(file)], f"--output_dir {file} is a file; expected a folder"),
        ([*weather, "--out", str(ctx.out)], f"--out {ctx.out} is a folder; expected a file"),
        (["demo", "--tiny", "--out", str(file)], f"--out {file} is a file; expected a folder"),
        (["tune", "--output_dir", str(file)], f"--output_dir {file} is a file; expected a folder"),
        ([*station, "--out", str(under)], f"--out {under}: {file} is a file, not a folder"),
    ]


def test_output_path_that_cannot_be_written_is_one_line_before_any_work(tmp_path, tiny_data_dir, pretrained_ckpt,
                                                                          capsys):
    """A mistyped output path fails up front in one line (exit 2 for a flag, 1 for the station's data folder),
    not with a traceback after training or downloading, and nothing is written beside it."""
    from sca2lstm.cli import main as main_cli

    ctx = Ctx(tmp_path, tiny_data_dir, pretrained_ckpt)
    for argv, expected in _output_cases(ctx, tiny_data_dir):
        before = everything_under(tmp_path)
        rc = main_cli.main(argv)
        line = one_line(capsys.readouterr().err, ignore=(FEW_RECORDS,))
        assert rc == (1 if argv[0] == "station" else 2), (argv, line)
        assert expected in line, (argv, line)
        assert everything_under(tmp_path) == before, argv


def test_a_mistyped_subcommand_or_option_of_one_is_answered_with_the_one_meant(capsys):
    from sca2lstm.cli import main as main_cli

    for argv, expected in [
        (["trian"], "unknown command 'trian' (did you mean train?); choose from train, finetune"),
        (["weather", "fetch", "--basin", BASIN, "--model", "m.pth", "--bse_url", "http://x"],
         "unrecognized arguments: --bse_url http://x (did you mean --base_url?)"),
        (["serve", "--model", "m.pth", "--prot", "8001"], "--prot 8001 (did you mean --port?)"),
        (["train", "--xyz", "3"], "unrecognized arguments: --xyz 3"),   # nothing near: no guess
        # only the shared "--" was near --jobs: no guess
        (["finetune", "--target_basin", BASIN, "--pretrained_model", "m.pth", "--bogus", "1"],
         "unrecognized arguments: --bogus 1"),
    ]:
        assert main_cli.main(argv) == 2
        line = one_line(capsys.readouterr().err)
        assert line.endswith(expected) if argv[0] in ("train", "finetune") else expected in line, line


def test_no_command_is_a_usage_error_on_stderr_and_help_is_on_stdout(capsys):
    from sca2lstm.cli import main as main_cli

    assert main_cli.main([]) == 2
    cap = capsys.readouterr()
    assert cap.out == "" and cap.err.startswith("usage: sca2lstm <command> [options]")
    assert main_cli.main(["--help"]) == 0
    cap = capsys.readouterr()
    assert cap.err == "" and cap.out.startswith("usage: sca2lstm <command> [options]")


def test_version_flag_prints_the_package_version_on_stdout(capsys):
    from sca2lstm import __version__
    from sca2lstm.cli import main as main_cli

    for flag in ("--version", "-V"):
        assert main_cli.main([flag]) == 0
        cap = capsys.readouterr()
        assert cap.err == "" and cap.out == f"sca2lstm {__version__}\n"


def test_every_command_help_ends_with_examples_that_its_parser_accepts(capsys):
    import importlib
    import shlex

    from sca2lstm.cli.main import SUBCOMMANDS

    for name, (module_name, _) in SUBCOMMANDS.items():
        module = importlib.import_module(module_name)
        parser = module.build_parser()
        assert parser.examples, f"sca2lstm {name} --help shows no example"
        assert parser.format_help().endswith("".join(f"  {e}\n" for e in parser.examples))
        for example in parser.examples:
            words = shlex.split(example, comments=True)
            # 'python sca2lstm.py ...' or 'sca2lstm train ...': the flags start after the command's name
            args = words[2:]
            assert words[:2] in (["sca2lstm", name], ["python", parser.prog]), example
            parser.parse_args(args)   # a usage error would exit 2 here


@pytest.mark.parametrize("cmd", [["train"], ["finetune", "--target_basin", "1", "--pretrained_model", "m.pth"]])
@pytest.mark.parametrize("value", ["-1e-4", "-1E-4", "-0.001", "0", "-2e+3"])
def test_a_negative_or_zero_learning_rate_is_refused_naming_the_value_and_the_range(cmd, value, tmp_path, capsys,
                                                                                   monkeypatch):
    """A negative number after a flag is its value, in exponent form too (argparse took -1e-4 for an option and
    answered "expected one argument"): the flag's own refusal names the value and what is allowed."""
    from sca2lstm.cli import main as main_cli

    monkeypatch.chdir(tmp_path)
    rc = main_cli.main([*cmd, "--learning_rate", value, "--epochs", "1"])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    assert f"argument --learning_rate: invalid value '{value}': expected a finite number > 0" in err, err
    assert list(tmp_path.iterdir()) == []
