"""The first-run demo end to end on a tiny configuration: every artefact exists and parses."""

import json
from html.parser import HTMLParser

import pandas as pd
import pytest
import torch

from sca2lstm.cli.demo import main


class _Images(HTMLParser):
    def __init__(self):
        super().__init__()
        self.imgs = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.imgs.append(dict(attrs))


def _images(path):
    p = _Images()
    p.feed(path.read_text(encoding="utf-8"))
    return p.imgs


@pytest.mark.slow
def test_tiny_demo_writes_every_artefact(tmp_path, capsys):
    out = tmp_path / "demo_output"
    assert main(["--tiny", "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "pretrained" in printed and "fine-tuned" in printed and "persistence" in printed
    # the table says what it scores: the test years' hindcast, on days neither model learned from
    assert "Test period 1975-01-01..1975-12-31, basin 32006: lead-1 hindcast" in printed
    assert "out-of-sample for both models" in printed

    pre = out / "model_output" / "sca2lstm.pth"
    fts = list((out / "model_output" / "fine_tune" / "basin_32006").glob("*/best_model_basin_32006.pth"))
    assert len(fts) == 1
    from sca2lstm.checkpoint import load_model
    for ckpt in (pre, fts[0]):
        load_model(ckpt)                       # rebuilds the model from the checkpoint alone
        torch.load(ckpt, weights_only=True)    # and loads safely
    kept_pretrained = torch.load(fts[0], weights_only=True)["kept"] == "pretrained"
    # its data are marked synthetic, as `data synth`'s: its models are taken for synthetic-data models (run on
    # other synthetic basins, refused on real data), and a rerun still knows the folder for the demo's own
    from sca2lstm.cli.demo import _written_by_a_demo
    from sca2lstm.data.dataset import SYNTHETIC_MARKER
    assert (out / "data" / SYNTHETIC_MARKER).is_file() and _written_by_a_demo(out / "data")
    assert all(torch.load(c, weights_only=True)["builtin_data"] for c in (pre, fts[0]))
    assert ("fine-tuning kept the pretrained weights" in printed) == kept_pretrained

    summary = pd.read_csv(out / "demo_test_metrics.csv")
    # the fine-tuned model's scores as predict computed them (and the console rounds), not a 4-decimal copy
    # that the report rounded again: a KGE of 0.97646 was 0.976 on the console and 0.977 in the report
    scored = json.loads((fts[0].parent / "predictions" / "basin_32006" / "metrics.json").read_text())["model"]
    row = summary.set_index("model").loc["fine-tuned"]
    assert (row["NSE"], row["KGE"]) == (scored["nse"], scored["kge"])
    assert list(summary.columns) == ["model", "NSE", "KGE", "days"]
    assert list(summary["model"]) == ["pretrained", "fine-tuned", "persistence"]
    series = pd.read_csv(fts[0].parent / "predictions" / "basin_32006" / "series.csv")
    assert list(series.columns) == ["date", "observed", "predicted", "persistence", "input_gap"]

    reports = [out / "report.html", pre.with_name("sca2lstm_run") / "report.html", fts[0].parent / "report.html",
               fts[0].parent / "predictions" / "basin_32006" / "report.html"]
    for report in reports:
        imgs = _images(report)
        assert imgs, report
        for img in imgs:
            assert img["src"].startswith("data:image/png;base64,")   # self-contained
            assert (report.parent / img["data-src"]).is_file()       # and names a picture that exists


def test_a_basin_the_demo_does_not_make_is_refused_before_anything_is_written(tmp_path, capsys):
    out = tmp_path / "demo_output"
    assert main(["--tiny", "--out", str(out), "--basin", "99999", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--basin '99999' is not one of the demo's 3 synthetic basins: 32006, 10002, 10003" in err[0]
    assert not out.exists()


def test_a_rerun_never_deletes_a_data_folder_the_demo_did_not_write(tmp_path, capsys):
    """--out pointed at a project whose data/ is the user's own: refused, the folder kept byte for byte."""
    out = tmp_path / "project"
    own = out / "data" / "timeseries" / "my_gauge.csv"
    own.parent.mkdir(parents=True)
    own.write_text("date,discharge\n2020-01-01,1.0\n")
    assert main(["--tiny", "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{out / 'data'} exists and is not a demo's synthetic data" in err[0], err
    assert own.read_text() == "date,discharge\n2020-01-01,1.0\n"
    assert sorted(p.name for p in out.rglob("*")) == ["data", "my_gauge.csv", "timeseries"]


@pytest.mark.slow
def test_the_demo_trains_the_default_model_whatever_config_file_the_folder_holds(tmp_path, monkeypatch, capsys):
    """A project's sca2lstm.yaml (its own basins, sizes) is for its runs: the demo still ends, on the default model."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sca2lstm.yaml").write_text('data:\n  basins: ["54001"]\nmodel:\n  hidden_size: 8\n', encoding="utf-8")
    assert main(["--tiny", "--out", "demo_output", "--quiet"]) == 0, capsys.readouterr().err
    assert "sca2lstm.yaml of this folder is not read" in capsys.readouterr().out
    ckpt = torch.load(tmp_path / "demo_output" / "model_output" / "sca2lstm.pth", weights_only=True)
    from sca2lstm.config import load_config
    monkeypatch.chdir(tmp_path / "demo_output")  # no config file here: the project defaults
    assert ckpt["config"]["model"]["hidden_size"] == load_config().model.hidden_size
    assert sorted(ckpt["basins"]) == ["10002", "10003", "32006"]


def test_a_demo_rerun_that_fails_writing_its_summary_leaves_the_earlier_files_whole(tmp_path):
    """A rerun whose disk fills while it writes demo_test_metrics.csv, config.json and the figures (here: a file
    size limit, which fails a write half-way as a full disk does) leaves the earlier demo's files as they were."""
    import resource

    from sca2lstm.cli.demo import _write_summary

    out = tmp_path / "demo_output"
    (out / "figures").mkdir(parents=True)
    earlier = {out / "demo_test_metrics.csv": b"model,NSE,KGE,days\nfine-tuned,0.8,0.7,365\n",
               out / "config.json": b'{"training": {"epochs": 12}}',
               out / "figures" / "pretraining_curve.png": b"\x89PNG earlier picture"}
    for p, data in earlier.items():
        p.write_bytes(data)
    src = tmp_path / "training_curve.png"
    src.write_bytes(b"\x89PNG" + bytes(4096))
    summary = pd.DataFrame({"model": ["pretrained", "fine-tuned", "persistence"] * 20, "NSE": 0.123456789,
                            "KGE": 0.987654321, "days": 365})
    config = {"training": {"epochs": 12, "notes": "x" * 4096}}
    cases = {"demo_test_metrics.csv": (summary, {}, []), "config.json": (summary.head(0), config, []),
             "figures/pretraining_curve.png": (summary.head(0), {}, [(src, "pretraining_curve.png")])}
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    for name, args in cases.items():   # the file whose write fails: those before it are small enough to be written
        resource.setrlimit(resource.RLIMIT_FSIZE, (32, hard))   # a write past 32 bytes fails (Python ignores SIGXFSZ)
        try:
            with pytest.raises(OSError):
                _write_summary(out, *args)
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        assert (out / name).read_bytes() == earlier[out / name], name
        assert not [p.name for p in out.rglob(".*")], name      # and no temporary file is left behind
