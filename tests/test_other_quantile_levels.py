"""A model trained with quantile levels other than the default 0.05/0.25/0.75/0.95 (here 0.1 and 0.9): its
forecast's water levels, the fan chart's interval, the service's answer and the service's issued table carry the
levels it gives, none of them assumes q05 .. q95."""

from __future__ import annotations

import io
import json
import shutil

import numpy as np
import pandas as pd
import pytest
from conftest import make_tiny_config
from fastapi.testclient import TestClient
from serve_helpers import forecaster

from sca2lstm.data.station_meta import StationMeta, meta_path
from sca2lstm.serve.app import create_app

ISSUE = "1976-06-15"
# Q = 10 h^2 (h in m): the water level of a flow Q is sqrt(Q / 10)
CURVE = {"kind": "power", "segments": [{"a": 10.0, "b": 2.0, "h0": 0.0, "h_max": None, "valid_from": None,
                                        "valid_to": None}]}


@pytest.fixture(scope="module")
def decile_ckpt(tiny_data_dir, tmp_path_factory):
    """A tiny model trained one epoch with the quantile levels 0.1, 0.5 and 0.9 only."""
    from sca2lstm.training.pretrain import pretrain

    cfg = make_tiny_config(tiny_data_dir, model={"quantiles": [0.1, 0.5, 0.9]}, training={"epochs": 1})
    out = tmp_path_factory.mktemp("deciles") / "deciles.pth"
    pretrain(cfg, out, data_dir=tiny_data_dir, progress=False)
    return out


@pytest.fixture(scope="module")
def gauged(tiny_data_dir, tmp_path_factory):
    """The tiny basins, 32006 with a rating curve in its metadata file."""
    d = tmp_path_factory.mktemp("rated") / "data"
    shutil.copytree(tiny_data_dir, d)
    path = meta_path(d, "32006")
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(StationMeta("32006", rating_curve=CURVE).to_dict(), indent=2) + "\n", encoding="utf-8")
    return d


def _stage(flow):
    return np.sqrt(np.asarray(flow, dtype=np.float64) / 10.0)


@pytest.mark.slow
def test_forecast_of_other_quantile_levels_has_a_water_level_for_each_and_an_interval_of_its_own(
        decile_ckpt, gauged, tmp_path, capsys, monkeypatch):
    from sca2lstm.cli.main import main
    from sca2lstm.evaluation import plots

    drawn = {}
    real = plots.plot_fan_chart
    monkeypatch.setattr(plots, "plot_fan_chart",
                        lambda *a, **k: drawn.update(bands=dict(a[4])) or real(*a, **k))
    assert main(["forecast", "--model", str(decile_ckpt), "--basin", "32006", "--data_dir", str(gauged),
                 "--issue_date", ISSUE, "--output_dir", str(tmp_path / "out"), "--leads", "3"]) == 0
    out = capsys.readouterr().out
    t = pd.read_csv(next((tmp_path / "out").rglob("forecast.csv")))
    assert {"q10", "q90"} <= set(t.columns) and not {"q05", "q95"} & set(t.columns)
    for c in ("median", "q10", "q90"):   # every level the model gives has its water level
        assert np.allclose(t[f"stage_{c}"], _stage(t[c]), atol=2e-4), c
    assert (t["stage_q10"] <= t["stage_median"]).all() and (t["stage_median"] <= t["stage_q90"]).all()
    # the printed water-level table names them too
    stage_header = next(line for line in out.splitlines() if line.endswith("m (water level)"))
    assert stage_header.split()[3:6] == ["median", "q10", "q90"], stage_header
    # the fan chart shades the interval the model gives, named for its width
    assert list(drawn["bands"]) == ["80 %"]


@pytest.mark.slow
def test_the_service_answers_the_quantile_levels_the_model_gives_with_their_water_levels(decile_ckpt, gauged,
                                                                                          tmp_path):
    from sca2lstm.checkpoint import load_model
    from sca2lstm.evaluation.reforecast import warned_forecast

    bundle = load_model(decile_ckpt)
    fc, _, _ = warned_forecast(bundle, "32006", data_dir=gauged, issue_date=ISSUE, leads=3, model_path=decile_ckpt)
    with forecaster(decile_ckpt, gauged) as live, \
            TestClient(create_app(gauged, tmp_path / "db.sqlite", live, token="tok")) as c:
        auth = {"Authorization": "Bearer tok"}
        a = c.get("/stations/32006/forecast", params={"issue_date": ISSUE, "leads": 3}, headers=auth)
        assert a.status_code == 200, a.text
        rows = a.json()["forecast"]
        issued = c.get("/stations/32006/issued.csv", params={"origin": "all"})
        assert issued.status_code == 200, issued.text
    assert [sorted(r["quantiles"]) for r in rows] == [["q10", "q90"]] * 3
    for c in ("q10", "q90"):
        assert [r["quantiles"][c] for r in rows] == pytest.approx(fc.table[c].tolist(), rel=1e-9)
        assert [r["stage_quantiles"][c] for r in rows] == pytest.approx(_stage(fc.table[c]).tolist(), rel=1e-6)
    assert all(r["q05"] is None and r["q95"] is None for r in rows)   # the levels it lacks: null, not made up
    # what the service issued, as the table `sca2lstm verify` scores: the model's own quantile columns
    table = pd.read_csv(io.StringIO(issued.text))
    assert {"q10", "q90"} <= set(table.columns) and "q05" not in table.columns
    assert table["q10"].tolist() == pytest.approx(fc.table["q10"].tolist(), abs=1e-4)
