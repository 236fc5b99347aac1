"""Forecasts for a long-running process (sca2lstm.evaluation.live): the recent part of a record, a new
station's scale fitted once, the checkpoint of each station, and worker processes, each against
issue_forecast on the whole record."""

from __future__ import annotations

import os
import shutil
import time

import pandas as pd
import pytest

from sca2lstm.checkpoint import load_model
from sca2lstm.data import reader
from sca2lstm.errors import DataError, UsageError
from sca2lstm.evaluation import live
from sca2lstm.evaluation.live import (
    LiveForecaster,
    fine_tuned_files,
    forecast_station,
    station_models,
)
from sca2lstm.evaluation.operational import history_days, issue_forecast, recent_part
from sca2lstm.evaluation.reforecast import warned_forecast
from sca2lstm.fileio import file_sha256


def _same(a, b):
    # Exact, not close: both sides run issue_forecast on the same window in a batch of the same size (one window,
    # or a weather ensemble's members), so the same kernels sum in the same order; a worker process runs one torch
    # thread, as the test process does (conftest).
    # check_dtype off: the date columns may differ in their unit (s or us), not in their values.
    pd.testing.assert_frame_equal(a.table, b.table, check_exact=True, check_dtype=False)
    pd.testing.assert_series_equal(a.weights, b.weights, check_exact=True)


def test_recent_part_cuts_only_where_no_feature_can_reach_back(tiny_cfg):
    days = pd.date_range("2000-01-01", "2004-12-31", freq="D", name="date")
    issue = pd.Timestamp("2004-06-30")
    first = issue - pd.Timedelta(days=tiny_cfg.training.seq_len - 1 - tiny_cfg.training.forecast_leads)
    target = issue - pd.Timedelta(days=history_days(tiny_cfg))
    ts = pd.DataFrame({"precipitation": 0.0, "discharge_vol": 1.0}, index=days)  # dry: one run, never ended
    assert recent_part(ts, issue, tiny_cfg).index[0] == days[0]  # the run reaches back to the start
    assert recent_part(ts, issue, tiny_cfg).index[-1] == issue    # days after the issue day are not known
    ts.loc["2001-03-05", "precipitation"] = 5.0                   # neither low nor high: ends both runs
    assert recent_part(ts, issue, tiny_cfg).index[0] == pd.Timestamp("2001-03-05")
    ts.loc[first - pd.Timedelta(days=3), "precipitation"] = 20.0  # high: ends only the dry run
    assert recent_part(ts, issue, tiny_cfg).index[0] == pd.Timestamp("2001-03-05")
    ts.loc[first - pd.Timedelta(days=2), "precipitation"] = float("nan")  # a missing day ends both
    assert recent_part(ts, issue, tiny_cfg).index[0] == target    # the trailing windows reach further
    ts.loc[first, "precipitation"] = 5.0
    assert recent_part(ts, issue, tiny_cfg).index[0] == target


def test_the_history_kept_follows_the_configured_windows(tiny_cfg):
    base = history_days(tiny_cfg)
    longer = tiny_cfg.replace(data={"ssi_window": 300})
    assert history_days(longer) == base + 270  # the SSI's trailing mean of the lagged flow
    assert history_days(tiny_cfg.replace(training={"seq_len": 160})) == base + 100
    no_q = tiny_cfg.replace(data={"use_discharge_input": False})
    assert history_days(no_q) == base - tiny_cfg.data.lead_days - tiny_cfg.data.ssi_window + 30


@pytest.mark.slow
def test_the_recent_part_gives_the_same_forecast_as_the_whole_record(pretrained_ckpt, tiny_data_dir):
    bundle = load_model(pretrained_ckpt)
    # A long SSI window too: the cut must follow the config, not a fixed number of days.
    wide = (bundle[0], bundle[1].replace(data={"ssi_window": 300}), bundle[2], bundle[3])
    for b in (bundle, wide):
        for basin in ("32006", "10002"):
            ts = reader.read_timeseries(tiny_data_dir, basin)
            for day in ("1973-02-10", "1975-08-01", "1977-12-20"):
                full = issue_forecast(b, basin, data_dir=tiny_data_dir, issue_date=day, leads=7)
                cut = forecast_station(b, basin, recent_part(ts, pd.Timestamp(day), b[1]), day, 7, tiny_data_dir)
                _same(cut, full)



def test_precipitation_missing_only_from_the_recent_days_is_refused_naming_the_days_read_and_its_last_value(
        pretrained_ckpt, tiny_data_dir, tmp_path):
    """A station whose precipitation stopped 400 days ago (years before have it) is refused as before (the
    model would run blind to it), in one line that says what is missing: no precipitation in the days the
    forecast reads, and the day of its last value; not 'no value anywhere in its data', which is false."""
    from fastapi.testclient import TestClient
    from serve_helpers import forecaster

    from sca2lstm.serve.app import create_app

    data = tmp_path / "data"
    shutil.copytree(tiny_data_dir, data)
    path = reader.timeseries_file(data, "10002")
    raw = pd.read_csv(path)
    raw.loc[raw.index[-400:], "precipitation"] = float("nan")
    raw.to_csv(path, index=False)
    last = raw["date"].iloc[-401]
    with forecaster(pretrained_ckpt, data) as f, TestClient(create_app(data, tmp_path / "db.sqlite", f)) as c:
        r = c.get("/stations/10002/forecast")
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    ts = reader.read_timeseries(data, "10002")
    part = recent_part(ts, ts.index[-1], load_model(pretrained_ckpt)[1])
    assert detail.startswith(f"station 10002: no precipitation in the {len(part)} days read for the forecast issued "
                             f"{ts.index[-1].date()} ({part.index[0].date()}..{part.index[-1].date()}); its last "
                             f"value is on {last}. The model would run blind to it")
    assert len(part) <= 400 and "anywhere" not in detail and "\n" not in detail


def test_an_input_missing_from_a_table_given_is_refused_naming_the_days_it_holds(pretrained_ckpt, tiny_data_dir):
    """A caller's table may be a part of the record: the refusal names its days, not 'anywhere in its data'."""
    ts = reader.read_timeseries(tiny_data_dir, "10002").loc["1976-01-01":]
    ts["precipitation"] = float("nan")
    with pytest.raises(DataError) as e:
        issue_forecast(load_model(pretrained_ckpt), "10002", data_dir=tiny_data_dir, leads=7, timeseries=ts)
    assert (f"basin 10002: precipitation (precipitation) has no value in the {len(ts)} days given "
            f"(1976-01-01..{ts.index[-1].date()}); the model would run blind to it") in str(e.value)


@pytest.fixture(scope="module")
def new_station_dir(tiny_data_dir, tmp_path_factory):
    """The tiny basins and a station the model was not trained on (99001: 10002's record)."""
    d = tmp_path_factory.mktemp("new_station") / "data"
    shutil.copytree(tiny_data_dir, d)
    src = reader.timeseries_file(d, "10002")
    shutil.copy(src, src.parent / "99001.csv")
    return d


@pytest.mark.slow
def test_a_new_station_is_scaled_once_per_data_version(pretrained_ckpt, new_station_dir, monkeypatch):
    fits = []
    real = live.station_setup
    monkeypatch.setattr(live, "station_setup", lambda *a: fits.append(a[1]) or real(*a))
    bundle = load_model(pretrained_ckpt)
    assert "99001" not in bundle[2].basins
    ts = reader.read_timeseries(new_station_dir, "99001")
    ref = live.ModelRef(str(pretrained_ckpt), file_sha256(pretrained_ckpt), "pretrained")
    with LiveForecaster(ref, {}, new_station_dir, workers=0) as fc:
        for day in ("1977-06-30", "1976-03-01"):
            got = fc.forecast("99001", ts, ("v0",), day, 5).forecast
            want = warned_forecast(bundle, "99001", data_dir=new_station_dir, issue_date=day, leads=5,
                                   timeseries=ts, model_path=pretrained_ckpt)[0]
            _same(got, want)
        assert fits == ["99001"]
        fc.forecast("99001", ts, ("v1",), "1977-06-30", 5)  # new data: worked out again
        assert fits == ["99001", "99001"]
        # Requests that arrive while the setup of new data is worked out wait for it: worked out once.
        futures = [fc.submit("99001", ts, ("v2",), day, 5) for day in ("1977-06-28", "1977-06-29", "1977-06-30")]
        assert [f.result(timeout=120).forecast.issue_date.day for f in futures] == [28, 29, 30]
        assert fits == ["99001"] * 3


def test_a_folder_gives_each_station_its_newest_fine_tuned_model(tmp_path):
    run = tmp_path / "model_output"
    (run / "fine_tune" / "basin_32006" / "a").mkdir(parents=True)
    (run / "fine_tune" / "basin_32006" / "b").mkdir(parents=True)
    (run / "sca2lstm.pth").write_bytes(b"pretrained")
    old = run / "fine_tune" / "basin_32006" / "a" / "best_model_basin_32006.pth"
    new = run / "fine_tune" / "basin_32006" / "b" / "best_model_basin_32006.pth"
    other = run / "fine_tune" / "basin_77" / "best_model_basin_77.pth"
    other.parent.mkdir(parents=True)
    for f, t in ((old, 2_000_000_000), (new, 2_000_000_100), (other, 2_000_000_000)):
        f.write_bytes(f.name.encode() + str(t).encode())
        os.utime(f, (t, t))
    default, own = station_models(run, ["32006", "10002"])
    assert default.path == str(run / "sca2lstm.pth") and default.kind == "pretrained"
    assert list(own) == ["32006"] and own["32006"].path == str(new) and own["32006"].kind == "fine-tuned"
    assert own["32006"].sha256 == file_sha256(new)
    file_default, file_own = station_models(new, ["32006"])
    assert file_default.path == str(new) and file_own == {}
    (run / "sca2lstm.pth").unlink()
    (run / "a.pth").write_bytes(b"1")
    (run / "b.pth").write_bytes(b"2")
    with pytest.raises(UsageError, match="a.pth, b.pth"):
        station_models(run, ["32006"])
    with pytest.raises(UsageError, match="no such"):
        station_models(tmp_path / "absent", [])


def test_a_rescan_takes_a_stations_new_checkpoint_only_once_it_is_finished(pretrained_ckpt, tiny_data_dir, tmp_path,
                                                                             caplog):
    """A service watching its --model folder picks up a station's new fine-tuned checkpoint, never one being
    written: not the writers' temp names (atomic_torch_save's ``.<name>.<pid>.tmp``, save_calibrated's
    ``.<stem>.staged.pth``, a folder built aside), not a half-copied file (refused in one line, taken once
    whole), not one changed moments ago; and it goes back to the pretrained model where the file is gone."""
    folder = tmp_path / "model_output"
    run = folder / "fine_tune" / "basin_10002" / "20260101_000000"
    run.mkdir(parents=True)
    shutil.copyfile(pretrained_ckpt, folder / "sca2lstm.pth")
    default, own = station_models(folder, ["10002", "32006"])
    data = pretrained_ckpt.read_bytes()  # a real checkpoint's bytes (its own path makes it the station's model)
    with LiveForecaster(default, own, tiny_data_dir, folder=folder, stations=["10002", "32006"], rescan_every=3600,
                        settle=0) as fc:
        (run / ".best_model_basin_10002.pth.4242.tmp").write_bytes(data[:1000])
        (run / ".best_model_basin_10002.staged.pth").write_bytes(data)
        aside = folder / "fine_tune" / ".basin_10002.4242.tmp"
        aside.mkdir()
        (aside / "best_model_basin_10002.pth").write_bytes(data)
        assert fine_tuned_files(folder, ["10002", "32006"]) == {}
        assert not fc.rescan_due() and fc.rescan() == []  # rate-limited: not looked at yet
        assert fc.rescan(force=True) == [] and fc.own == {}
        final = run / "best_model_basin_10002.pth"
        final.write_bytes(data[:len(data) // 2])  # copied by hand, half-way
        with caplog.at_level("WARNING", logger="sca2lstm"):
            assert fc.rescan(force=True) == [] and fc.rescan(force=True) == []
        refused = [r.getMessage() for r in caplog.records if "is not used" in r.getMessage()]
        assert len(refused) == 1 and "station 10002" in refused[0] and "truncated" in refused[0], refused
        final.write_bytes(data)  # the copy finished
        assert fc.rescan(force=True) == ["10002"] and fc.model("10002").path == str(final)
        assert fc.model("10002").kind == "fine-tuned" and fc.model("32006") is fc.default
        fc.settle = 3600.0  # a checkpoint (or its calibration) changed moments ago may still be being written
        other = folder / "fine_tune" / "basin_32006" / "20260101_000000" / "best_model_basin_32006.pth"
        other.parent.mkdir(parents=True)
        other.write_bytes(data)
        assert fc.rescan(force=True) == [] and fc.model("32006") is fc.default
        t = time.time() - 7200
        os.utime(other, (t, t))
        assert fc.rescan(force=True) == ["32006"] and fc.model("32006").path == str(other)
        final.unlink()
        assert fc.rescan(force=True) == ["10002"] and fc.model("10002") is fc.default
        assert list(fc.own) == ["32006"]


def _load_in_one_worker(barrier, path: str, sha256: str) -> int:
    """In a worker: wait until every worker runs one of these (so each runs exactly one), then load the version
    ``sha256`` of ``path`` as a forecast would (a CheckpointError where that worker had not loaded it before the
    file was replaced); the worker's pid."""
    barrier.wait(120)
    live._bundle(path, sha256)
    return os.getpid()


@pytest.mark.slow
def test_warm_up_loads_the_models_in_every_worker_so_none_refuses_a_checkpoint_replaced_after_the_start(
        pretrained_ckpt, tiny_data_dir, tmp_path):
    """`sca2lstm serve --workers 2` warms up, then the served checkpoint is replaced on disk: until the
    replacement settles every worker forecasts with the model it replaces. A worker that had not loaded that
    model at the warm-up could not read it any more (the file has other bytes) and its requests got 503."""
    import multiprocessing

    import torch

    served = tmp_path / "sca2lstm.pth"
    shutil.copyfile(pretrained_ckpt, served)
    ref = live.ModelRef(str(served), file_sha256(served), "pretrained")
    with LiveForecaster(ref, {}, tiny_data_dir, workers=2) as f, multiprocessing.Manager() as manager:
        f.warm_up()
        staged = tmp_path / ".staged.pth"
        torch.save({**torch.load(served, weights_only=True), "qa_version": 2}, staged)
        os.replace(staged, served)  # just written: the model it replaces keeps forecasting
        barrier = manager.Barrier(2)
        pids = [p.result(timeout=180) for p in
                [f._pool.submit(_load_in_one_worker, barrier, ref.path, ref.sha256) for _ in range(2)]]
    assert len(set(pids)) == 2


@pytest.mark.slow
def test_worker_processes_give_the_forecast_of_the_calling_process(pretrained_ckpt, tiny_data_dir):
    ref = live.ModelRef(str(pretrained_ckpt), file_sha256(pretrained_ckpt), "pretrained")
    ts = reader.read_timeseries(tiny_data_dir, "32006")
    with LiveForecaster(ref, {}, tiny_data_dir, workers=0) as here, \
            LiveForecaster(ref, {}, tiny_data_dir, workers=1) as there:
        there.warm_up()
        futures = [there.submit("32006", ts, ("v0",), day, 7) for day in ("1977-06-30", "1977-07-01")]
        for day, f in zip(("1977-06-30", "1977-07-01"), futures):
            _same(f.result(timeout=120).forecast, here.forecast("32006", ts, ("v0",), day, 7).forecast)


def test_a_forecast_from_a_worker_process_keeps_its_notes_sayable_in_chinese(pretrained_ckpt, tiny_data_dir):
    """The model runs in worker processes (`sca2lstm serve --workers`): the notes of the forecast they send back
    are still notes with their kind (pickled by text, kind and values), so that the zh page can say them."""
    from sca2lstm.notes import Note

    ref = live.ModelRef(str(pretrained_ckpt), file_sha256(pretrained_ckpt), "pretrained")
    ts = reader.read_timeseries(tiny_data_dir, "32006").copy()
    ts.loc["1977-12-30":, "discharge_vol"] = float("nan")  # issued on the 31st from the flow of the 29th
    with LiveForecaster(ref, {}, tiny_data_dir, workers=1) as there:
        notes = there.submit("32006", ts, ("stale",), "1977-12-31", 3).result(timeout=180).notes
    [stale] = [n for n in notes if isinstance(n, Note) and n.kind == "stale_flow"]
    assert stale.startswith("basin 32006: no flow observed on the issue date 1977-12-31; the forecast starts from the "
                            "last observed flow, ") and stale.endswith("on 1977-12-29, 2 day(s) before it")
    assert stale.said_in("zh").startswith("测站 32006：发布日 1977-12-31 没有实测流量；预报从最近一次实测流量起算，即 1977-12-29 的 ")
