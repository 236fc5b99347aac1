"""fine_train.py --strategy: the guide's presets, explicit flags over them, auto and search."""

from __future__ import annotations

import base64
import json
import re
import shlex
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from sca2lstm.cli.finetune import build_parser, given_flags, settings
from sca2lstm.training.strategies import PRESETS, auto_candidates

from conftest import REPO

GUIDE = REPO.parent / "shared" / "docs" / "fine_tune_guide.zh.md"
# The guide's three command lines (微调策略建议), flag for flag.
GUIDE_PRESETS = {
    "conservative": "--epochs 15 --learning_rate 1e-4 --fine_tune_ratio 0.8",
    "deep": "--epochs 30 --learning_rate 5e-5 --unfreeze_embedding --unfreeze_lstm1 --fine_tune_ratio 0.9",
    "fast": "--epochs 10 --batch_size 64 --learning_rate 5e-4 --patience 5",
}
BASE = ["--target_basin", "32006", "--pretrained_model", "m.pth"]


def _parse(extra: str):
    return build_parser().parse_args(BASE + shlex.split(extra))


@pytest.mark.parametrize("name", sorted(GUIDE_PRESETS))
def test_strategy_presets_equal_the_guides_flags(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ./sca2lstm.yaml
    assert PRESETS[name] == given_flags(_parse(GUIDE_PRESETS[name]))
    # --strategy NAME gives exactly what the guide's command line gives
    assert settings(_parse(f"--strategy {name}")) == settings(_parse(GUIDE_PRESETS[name]))


def test_the_guides_strategy_section_holds_the_same_command_lines():
    if not GUIDE.is_file():
        pytest.skip(f"the user's guide is not at {GUIDE}")
    text = GUIDE.read_text(encoding="utf-8")
    section = text.split("## 微调策略建议", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
    assert len(blocks) == 3
    for block, name in zip(blocks, ("conservative", "deep", "fast")):
        flags = shlex.split(block.replace("\\\n", " "))[2:]  # after: python fine_train.py
        a = build_parser().parse_args(flags)
        assert given_flags(a) == PRESETS[name], name


def test_explicit_flags_override_a_preset_and_a_preset_overrides_the_config_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sca2lstm.yaml").write_text(yaml.safe_dump({"finetune": {"learning_rate": 3e-3, "weight_decay": 0.0}}))
    over, seed = settings(_parse("--strategy fast --epochs 3"))
    assert over == {"epochs": 3, "batch_size": 64, "learning_rate": 5e-4, "patience": 5, "weight_decay": 0.0}
    assert seed == 42
    assert settings(_parse(""))[0] == {"learning_rate": 3e-3, "weight_decay": 0.0}  # no strategy: unchanged


def test_auto_candidates_share_one_split_and_keep_explicit_flags():
    cands = auto_candidates({"epochs": 2, "fine_tune_ratio": 0.7}, {"epochs": 2, "fine_tune_ratio": 0.7})
    assert list(cands) == ["default", "conservative", "deep", "fast"]
    assert all(c["fine_tune_ratio"] == 0.7 and c["epochs"] == 2 for c in cands.values())
    assert cands["deep"]["unfreeze_lstm1"] and cands["fast"]["batch_size"] == 64
    plain = auto_candidates({}, {})
    assert all("fine_tune_ratio" not in c for c in plain.values())  # every one on the checkpoint's ratio
    assert plain["default"] == {}


@pytest.mark.parametrize("extra,message", [
    ("--strategy auto --resume", "--resume cannot continue --strategy auto"),
    ("--strategy fast --trials 3", "--trials applies to --strategy search only"),
])
def test_strategy_flag_combinations_refused_in_one_line(extra, message, tmp_path, capsys):
    from sca2lstm.cli.finetune import main
    argv = ["--target_basin", "32006", "--pretrained_model", str(tmp_path / "m.pth"), "--output_dir",
            str(tmp_path / "ft"), "--quiet"] + shlex.split(extra)  # refused before the model is read
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not (tmp_path / "ft").exists()


@pytest.mark.slow
def test_strategy_auto_keeps_the_best_candidate_on_validation(pretrained_ckpt, tiny_data_dir, tmp_path):
    from sca2lstm.checkpoint import load_model
    from sca2lstm.cli.finetune import main

    out = tmp_path / "ft"
    argv = ["--target_basin", "32006", "--pretrained_model", str(pretrained_ckpt), "--data_dir", str(tiny_data_dir),
            "--output_dir", str(out), "--strategy", "auto", "--epochs", "2", "--quiet"]
    assert main(argv) == 0
    (run,) = list((out / "basin_32006").iterdir())
    table = pd.read_csv(run / "strategies.csv")
    assert set(table["strategy"]) == {"default", "conservative", "deep", "fast", "pretrained (zero-shot)"}
    assert table["kept"].sum() == 1
    kept = table[table["kept"]].iloc[0]
    score = dict(zip(table["strategy"], table["val_score"]))  # the score every fine-tune keeps its model by
    assert kept["val_score"] >= score["default"] and kept["val_score"] >= score["pretrained (zero-shot)"]
    assert kept["val_score"] == table["val_score"].max()
    # every candidate validated on the same days
    splits = {json.dumps(json.loads((p / "config.json").read_text())["split"]) for p in
              (run / "candidates").glob("*/basin_32006/*")}
    assert len(splits) == 1
    # the kept model is the winner's, where predict.py's glob finds it
    ckpt = run / "best_model_basin_32006.pth"
    source = kept["checkpoint"] if kept["strategy"] != "pretrained (zero-shot)" else \
        table[table["fine_tune_kept"] == "pretrained"].iloc[0]["checkpoint"]
    winner = torch.load(source, weights_only=True)["model_state_dict"]
    assert all(torch.equal(v, torch.load(ckpt, weights_only=True)["model_state_dict"][k]) for k, v in winner.items())
    load_model(ckpt, "cpu")
    assert list(out.glob("basin_32006/*/best_model_basin_32006.pth")) == [ckpt]
    # its forecast calibration goes with it and is the winner's, tied to the kept bytes
    from sca2lstm.evaluation.calibration import read_calibration
    kept_calib = read_calibration(ckpt)
    assert kept_calib and {k: v for k, v in kept_calib.items() if k != "model_sha256"} == \
        {k: v for k, v in read_calibration(source).items() if k != "model_sha256"}
    # the winner's log, history and report are beside it, as in a single fine-tune's folder
    src_dir = Path(source).parent
    for name in ("finetune.log", "history.csv", "val_metrics.json"):
        assert (run / name).read_bytes() == (src_dir / name).read_bytes(), name
    page = (run / "report.html").read_text(encoding="utf-8")
    links = re.findall(r'<img src="data:image/png;base64,([^"]+)" data-src="([^"]+)"', page)
    assert {rel for _, rel in links} == set(re.findall(r'data-src="([^"]+)"',
                                                       (src_dir / "report.html").read_text(encoding="utf-8")))
    assert {rel for _, rel in links} >= {"performance_chart.png", "training_curve.png"}
    for data, rel in links:  # each figure's path resolves in the strategy's folder, to the figure shown
        assert base64.b64decode(data) == (run / rel).read_bytes(), rel
    assert "best val_loss" in page  # the history's section


@pytest.mark.slow
def test_strategy_search_starts_from_the_guides_default_and_writes_its_table(pretrained_ckpt, tiny_data_dir,
                                                                            tmp_path):
    from sca2lstm.training.strategies import GUIDE_DEFAULTS, finetune_with_strategy

    r = finetune_with_strategy("search", pretrained_ckpt, "32006", {"epoch_coverage": 0.5}, {}, trials=3,
                               data_dir=tiny_data_dir, out_root=tmp_path, progress=False, seed=1)
    table = r["strategies"]
    assert list(table["strategy"]).count("pretrained (zero-shot)") == 1 and len(table) == 4
    first = json.loads(table.set_index("strategy").loc["trial_0", "settings"])
    assert first == {"epoch_coverage": 0.5, **{k: v for k, v in GUIDE_DEFAULTS.items()}}
    assert (r["run_dir"] / "strategies.csv").is_file() and r["checkpoint"].is_file()
    assert r["strategy_kept"] in set(table["strategy"])
