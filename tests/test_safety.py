"""Safety: checkpoints cannot run code, writes are atomic, interruptions resume exactly, out-of-memory
and non-finite losses end with one clear line."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from sca2lstm.cli import finetune as finetune_cli
from sca2lstm.cli import predict as predict_cli
from sca2lstm.cli import train as train_cli
from sca2lstm.data.dataset import SequenceData
from sca2lstm.training import trainer as trainer_mod
from sca2lstm import __version__
from sca2lstm.checkpoint import atomic_torch_save, load_checkpoint

from conftest import REPO
from failure_helpers import BASIN, FEW_RECORDS, everything_under, one_line, snapshot, tiny_yaml, ts_file


def _train_argv(tmp_path, data, out, *extra):
    cfg = tmp_path / "tiny.yaml"
    if not cfg.exists():
        tiny_yaml(cfg)
    return ["--config", str(cfg), "--data_dir", str(data), "--output", str(out), "--basins", BASIN,
            "--patience", "1000", *extra]


def _ft_argv(ckpt, data, out, *extra):
    return ["--target_basin", BASIN, "--pretrained_model", str(ckpt), "--data_dir", str(data), "--output_dir",
            str(out), "--patience", "1000", *extra]


def _interrupt_on_call(monkeypatch, n):
    """Make the n-th training epoch raise KeyboardInterrupt (as Ctrl-C would)."""
    real = trainer_mod.Trainer._train_epoch
    calls = {"n": 0}

    def epoch(self, e):
        calls["n"] += 1
        if calls["n"] == n:
            raise KeyboardInterrupt
        return real(self, e)

    monkeypatch.setattr(trainer_mod.Trainer, "_train_epoch", epoch)


@pytest.mark.slow
def test_ctrl_c_in_a_strategy_says_it_cannot_be_resumed_and_names_no_removed_state(tmp_path, tiny_data_dir,
                                                                                  pretrained_ckpt, capsys,
                                                                                  monkeypatch):
    """--strategy auto stopped in its first candidate's second epoch: the candidates' folder goes, and --resume
    refuses a strategy, so the line must not send the user to a state file and --resume."""
    out = tmp_path / "o"
    with monkeypatch.context() as m:
        _interrupt_on_call(m, 2)
        rc = finetune_cli.main(_ft_argv(pretrained_ckpt, tiny_data_dir, out, "--epochs", "2", "--quiet",
                                        "--strategy", "auto"))
    line = one_line(capsys.readouterr().err, ignore=(FEW_RECORDS,))
    assert rc == 130 and line == (f"fine_train.py: interrupted; --strategy auto of basin {BASIN} stopped before it "
                                  "kept a model; nothing is saved and it cannot be resumed: rerun the same command "
                                  "without --resume"), line
    assert not list(out.rglob("*.pth"))


@pytest.mark.slow
def test_ctrl_c_in_several_basins_names_the_basins_to_resume(tmp_path, tiny_data_dir, pretrained_ckpt, capsys,
                                                             monkeypatch):
    """Stopped in the second basin's second epoch: the first basin is finished, so --resume of both would fail
    for it; the line names the basin whose state is saved, and that command finishes it."""
    out = tmp_path / "o"
    with monkeypatch.context() as m:
        _interrupt_on_call(m, 4)  # 2 epochs of 32006, then the second of 10002
        rc = finetune_cli.main(_ft_argv(pretrained_ckpt, tiny_data_dir, out, "--target_basin", "10002",
                                        "--epochs", "2", "--quiet"))
    line = one_line(capsys.readouterr().err, ignore=(FEW_RECORDS, "worse than persistence"))
    assert rc == 130 and line == ("fine_train.py: interrupted; the state is saved for basin 10002; rerun with "
                                  "--resume --target_basin 10002 to continue"), line
    assert len(list(out.glob(f"basin_{BASIN}/*/best_model_basin_{BASIN}.pth"))) == 1
    argv = [a if a != BASIN else "10002" for a in _ft_argv(pretrained_ckpt, tiny_data_dir, out, "--epochs", "2",
                                                           "--quiet", "--resume")]
    assert finetune_cli.main(argv) == 0
    assert len(list(out.glob("basin_10002/*/best_model_basin_10002.pth"))) == 1


def _same_weights(a, b):
    sa = torch.load(a, weights_only=True)["model_state_dict"]
    sb = torch.load(b, weights_only=True)["model_state_dict"]
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


# ------------------------------------------------------------------------------------ unsafe checkpoints
class _OpenPayload:
    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):  # unpickling would create the file
        return (open, (self.target, "w"))


class _SystemPayload:
    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):  # unpickling would run a shell command
        return (os.system, (f"touch {self.target}",))


@pytest.mark.parametrize("payload", [_OpenPayload, _SystemPayload], ids=["open", "os.system"])
@pytest.mark.parametrize("cmd", ["predict", "finetune"])
def test_checkpoint_with_code_is_refused(tmp_path, tiny_data_dir, pretrained_ckpt, capsys, payload, cmd):
    pwned = tmp_path / "pwned"
    ck = torch.load(pretrained_ckpt, weights_only=True)  # a real checkpoint, plus one poisoned entry
    ck["val_metrics"] = {"note": payload(pwned)}
    evil = tmp_path / "evil.pth"
    torch.save(ck, evil)
    out = tmp_path / "out"
    if cmd == "predict":
        rc = predict_cli.main(["--model", str(evil), "--basin", BASIN, "--data_dir", str(tiny_data_dir),
                               "--output_dir", str(out)])
    else:
        rc = finetune_cli.main(_ft_argv(evil, tiny_data_dir, out))
    line = one_line(capsys.readouterr().err)
    assert rc == 1
    assert f"checkpoint {evil} was refused" in line and "could run code" in line
    assert not pwned.exists()
    assert not out.exists()


def test_resume_state_with_code_is_refused(tmp_path, tiny_data_dir, capsys):
    pwned = tmp_path / "pwned"
    out = tmp_path / "m.pth"
    state = tmp_path / "m_run" / "last_state.pth"
    state.parent.mkdir()
    torch.save({"format": "sca2lstm-train-state-v1", "epoch": _OpenPayload(pwned)}, state)
    rc = train_cli.main(_train_argv(tmp_path, tiny_data_dir, out, "--resume"))
    line = one_line(capsys.readouterr().err)
    assert rc == 1 and "was refused" in line and str(state) in line
    assert not pwned.exists() and not out.exists()


def test_resume_without_a_saved_state_says_so_before_reading_any_data(tmp_path, tiny_data_dir, tiny_cfg, capsys,
                                                                      monkeypatch):
    """--resume with no saved state of the run ends at once in one line, before the data folder is resolved and
    read (a large one takes minutes; none given, the synthetic basins would be generated first)."""
    from sca2lstm.errors import DataError
    from sca2lstm.training import pretrain as pretrain_mod

    read = []
    real = pretrain_mod.resolve_data_dir
    monkeypatch.setattr(pretrain_mod, "resolve_data_dir", lambda *a, **k: read.append(a) or real(*a, **k))
    out = tmp_path / "models" / "m.pth"
    state = tmp_path / "models" / "m_run" / "last_state.pth"
    rc = train_cli.main(_train_argv(tmp_path, tiny_data_dir, out, "--resume"))
    assert rc == 1 and one_line(capsys.readouterr().err).endswith(
        f"--resume: no resumable state at {state} (the run of --output {out}); give the interrupted run's "
        "--output, or start without --resume")
    with pytest.raises(DataError, match="no resumable state"):
        pretrain_mod.pretrain(tiny_cfg, out, data_dir=tiny_data_dir, resume=True, progress=False)
    assert read == [] and not (tmp_path / "models").exists()


def test_resume_state_that_does_not_fit_gives_one_line(tmp_path, tiny_data_dir, pretrained_ckpt, capsys):
    """A resumable state from another model config (here: one written before the cell readout) is
    refused with one line naming the parameter, and no checkpoint is written."""
    st = torch.load(pretrained_ckpt.with_name("sca2lstm_run") / "last_state.pth", weights_only=True)
    del st["model_state_dict"]["cell_head.weight"]
    out = tmp_path / "m.pth"
    state = tmp_path / "m_run" / "last_state.pth"
    state.parent.mkdir()
    torch.save(st, state)
    # the flags of the run the state records: its config matches, only its weights do not fit
    rc = train_cli.main(["--config", str(tiny_yaml(tmp_path / "tiny.yaml")), "--data_dir", str(tiny_data_dir),
                         "--output", str(out), "--quiet", "--resume"])
    line = one_line(capsys.readouterr().err)
    assert rc == 1 and "does not fit this model config" in line and "cell_head.weight" in line
    assert not out.exists()


def _zip_of_text() -> bytes:
    import io
    import zipfile

    b = io.BytesIO()
    with zipfile.ZipFile(b, "w") as z:
        z.writestr("readme.txt", "not a model")
    return b.getvalue()


def _saved(obj) -> bytes:
    import io

    b = io.BytesIO()
    torch.save(obj, b)
    return b.getvalue()


@pytest.mark.parametrize("kind, content, said", [
    ("text", lambda st, ck: b"epoch,loss\n1,0.5\n", "is a text file, not a PyTorch checkpoint"),
    ("truncated", lambda st, ck: st.read_bytes()[:st.stat().st_size // 2], "is truncated"),
    ("zip of something else", lambda st, ck: _zip_of_text(), "is a zip archive, but not a PyTorch checkpoint"),
    ("model checkpoint", lambda st, ck: ck.read_bytes(),
     "is an sca2lstm model checkpoint, not a resumable training state"),
    ("state without its optimizer", lambda st, ck: _saved(
        {k: v for k, v in torch.load(st, weights_only=True).items() if k != "optimizer_state_dict"}),
     "is a damaged resumable training state: it lacks ['optimizer_state_dict']"),
    ("state with a damaged history", lambda st, ck: _saved({**torch.load(st, weights_only=True), "history": 5}),
     "is a damaged resumable training state (TypeError"),
    ("state whose best weights do not fit", lambda st, ck: _saved({**torch.load(st, weights_only=True),
                                                                   "best_state_dict": {}}),
     "is a damaged resumable training state: its best weights (best_state_dict) do not fit the model"),
])
def test_resume_from_a_file_that_is_not_a_state_says_what_it_is_in_one_line(tmp_path, tiny_data_dir, pretrained_ckpt,
                                                                             capsys, kind, content, said):
    """--resume reads the run's last_state.pth: a file there that is no resumable state (another file, a model
    checkpoint copied over it, a state missing a part) ends in one line naming it and what it is, exit 1, with
    nothing written; a state lacking a part or holding a damaged one ended in a KeyError or TypeError traceback."""
    out = tmp_path / "m.pth"
    state = tmp_path / "m_run" / "last_state.pth"
    state.parent.mkdir()
    state.write_bytes(content(pretrained_ckpt.with_name("sca2lstm_run") / "last_state.pth", pretrained_ckpt))
    before = snapshot(tmp_path / "m_run")
    # the flags of the run the state records (the session's tiny pretraining), so only the file itself is wrong
    rc = train_cli.main(["--config", str(tiny_yaml(tmp_path / "tiny.yaml")), "--data_dir", str(tiny_data_dir),
                         "--output", str(out), "--quiet", "--resume"])
    line = one_line(capsys.readouterr().err)
    assert rc == 1 and line.startswith("sca2lstm.py: error: --resume:") and str(state) in line and said in line, line
    assert not out.exists()
    after = snapshot(tmp_path / "m_run")
    assert {k: v for k, v in after.items() if k != "train.log"} == {k: v for k, v in before.items() if k != "train.log"}


def test_resume_from_the_state_of_another_model_config_names_the_key(tmp_path, tiny_data_dir, pretrained_ckpt,
                                                                    capsys):
    """A state of a model with another hidden size is refused naming the config key and both values, not the
    shapes of the LSTM's tensors it does not fit."""
    out = tmp_path / "m.pth"
    (tmp_path / "m_run").mkdir()
    shutil.copyfile(pretrained_ckpt.with_name("sca2lstm_run") / "last_state.pth", tmp_path / "m_run" / "last_state.pth")
    rc = train_cli.main(["--config", str(tiny_yaml(tmp_path / "tiny.yaml", model={"hidden_size": 8})),
                         "--data_dir", str(tiny_data_dir), "--output", str(out), "--quiet", "--resume"])
    line = one_line(capsys.readouterr().err)
    assert rc == 2 and "records another run (model.hidden_size: recorded 16, now 8)" in line, line
    assert not out.exists()


@pytest.mark.slow
def test_resume_refuses_another_run_naming_the_difference(tmp_path, tiny_data_dir, pretrained_ckpt, capsys):
    """The recorded run (the session's tiny pretraining: three basins, lr 0.005, 2 epochs) resumes only with
    its basins and config; other basins or another key are refused in one line naming them, and nothing is
    written. More epochs is a resume."""
    out = tmp_path / "m.pth"
    (tmp_path / "m_run").mkdir()
    shutil.copyfile(pretrained_ckpt.with_name("sca2lstm_run") / "last_state.pth", tmp_path / "m_run" / "last_state.pth")
    base = ["--config", str(tiny_yaml(tmp_path / "tiny.yaml")), "--data_dir", str(tiny_data_dir), "--output",
            str(out), "--quiet", "--resume"]
    for extra, named in ((["--basins", "32006", "10002"], "basins differ, not in this run: ['10003']"),
                         (["--learning_rate", "0.01"], "training.learning_rate: recorded 0.005, now 0.01")):
        rc = train_cli.main(base + extra)
        line = one_line(capsys.readouterr().err)
        assert rc == 2 and line.startswith("sca2lstm.py: error: --resume:") and named in line, line
        assert not out.exists()
    assert train_cli.main(base + ["--epochs", "3"]) == 0
    assert len(torch.load(out, weights_only=True)["history"]) == 4  # epoch 0 (before training) and 1..3


def test_project_checkpoints_load_weights_only(pretrained_ckpt):
    for p in (pretrained_ckpt, pretrained_ckpt.with_name("sca2lstm_run") / "last_state.pth"):
        ck = torch.load(p, weights_only=True)
        assert isinstance(ck, dict) and "model_state_dict" in ck


@pytest.mark.parametrize("damage, said", [
    ({"model_state_dict": [1, 2]}, "is damaged: its weights are a list, not a mapping of parameter names to tensors"),
    ("weights as text", "is damaged: parameter embedding.0.weight holds a str, not a tensor"),
    ({"format": "sca2lstm-checkpoint-v2"}, "has format 'sca2lstm-checkpoint-v2'; expected 'sca2lstm-checkpoint-v1' "
                                           f"(it was written by a later sca2lstm than this {__version__}: upgrade sca2lstm to "
                                           "run it, as this version cannot read what it holds)"),
    ({"format": "sca2lstm-checkpoint-v0"}, "has format 'sca2lstm-checkpoint-v0'; expected 'sca2lstm-checkpoint-v1'"),
    ({"trained_on": 5}, "has a malformed trained_on record"),
    ({"trained_on": [{"role": "train"}]}, "has a malformed trained_on record"),
])
def test_a_checkpoint_with_damaged_weights_or_record_is_one_line(tmp_path, tiny_data_dir, pretrained_ckpt, capsys,
                                                                 damage, said):
    """A checkpoint whose weights are no mapping of tensors, or whose record of the days it trained on is
    malformed, is refused in one line naming it; these ended in an AttributeError, a RuntimeError of a line per
    parameter, or a KeyError/TypeError traceback."""
    ck = torch.load(pretrained_ckpt, weights_only=True)
    if damage == "weights as text":
        damage = {"model_state_dict": {k: "x" for k in ck["model_state_dict"]}}
    bad = tmp_path / "bad.pth"
    torch.save({**ck, **damage}, bad)
    out = tmp_path / "out"
    rc = predict_cli.main(["--model", str(bad), "--basin", BASIN, "--data_dir", str(tiny_data_dir), "--output_dir",
                           str(out), "--quiet"])
    line = one_line(capsys.readouterr().err)
    assert rc == 1 and f"checkpoint {bad} {said}" in line, line
    assert not out.exists()


def test_a_resumable_state_given_as_the_model_names_the_model_its_run_wrote(tmp_path, tiny_data_dir, pretrained_ckpt,
                                                                            capsys):
    """--model last_state.pth (the run folder's state, not its model) said only 'missing key(s) ['config',
    'scalers', 'basins']'; it now says what the file is and names the model beside it."""
    state = pretrained_ckpt.with_name("sca2lstm_run") / "last_state.pth"
    out = tmp_path / "out"
    rc = predict_cli.main(["--model", str(state), "--basin", BASIN, "--data_dir", str(tiny_data_dir), "--output_dir",
                           str(out), "--quiet"])
    line = one_line(capsys.readouterr().err)
    assert rc == 1 and f"checkpoint {state} is a resumable training state" in line, line
    assert line.endswith(f"not a model checkpoint; give the model its run wrote, {pretrained_ckpt}"), line
    assert not out.exists()


# ------------------------------------------------------------------------------------ atomic writes
def test_atomic_save_leaves_no_temp_files(tmp_path):
    p = atomic_torch_save({"w": torch.arange(5)}, tmp_path / "a.pth")
    atomic_torch_save({"w": torch.arange(6)}, p)
    assert everything_under(tmp_path) == ["a.pth"]
    assert torch.equal(torch.load(p, weights_only=True)["w"], torch.arange(6))


@pytest.mark.parametrize("how", ["atomic_write", "atomic_write_text", "atomic_write_files"])
def test_atomic_writes_fsync_the_file_before_the_rename_and_the_folder_after(tmp_path, monkeypatch, how):
    """A rename can reach the disk before the data it names: after a power cut, ext4 or XFS then show an empty
    file under the new name. Each atomic write fsyncs its temp file, holding all its bytes, before renaming it,
    and the folder after (as atomic_torch_save does), so the rename itself survives too."""
    import stat

    from sca2lstm import fileio

    target, text = tmp_path / "sub" / "report.json", '{"nse": 0.71}\n'
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def recording_fsync(fd):
        st = os.fstat(fd)
        events.append(("fsync", "dir" if stat.S_ISDIR(st.st_mode) else "file", st.st_ino, st.st_size))
        real_fsync(fd)

    def recording_replace(src, dst):
        events.append(("replace", os.stat(src).st_ino))
        real_replace(src, dst)

    monkeypatch.setattr(fileio.os, "fsync", recording_fsync)
    monkeypatch.setattr(fileio.os, "replace", recording_replace)
    if how == "atomic_write":
        fileio.atomic_write(target, lambda fh: fh.write(text.encode()), binary=True)
    elif how == "atomic_write_text":
        fileio.atomic_write_text(target, text)
    else:
        fileio.atomic_write_files({target: text})
    assert target.read_text() == text
    ino, folder_ino = target.stat().st_ino, target.parent.stat().st_ino
    assert events[:2] == [("fsync", "file", ino, len(text)), ("replace", ino)], events
    assert [e[:3] for e in events[2:]] == [("fsync", "dir", folder_ino)], events


def test_failed_save_keeps_the_existing_file(tmp_path, monkeypatch):
    p = atomic_torch_save({"w": torch.arange(5)}, tmp_path / "a.pth")
    before = p.read_bytes()

    def broken_save(obj, f, *a, **k):
        f.write(b"PK\x03\x04 half a zip")  # some bytes reach the disk, then the disk fills up
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError):
        atomic_torch_save({"w": torch.arange(7)}, p)
    assert p.read_bytes() == before
    assert everything_under(tmp_path) == ["a.pth"]


def test_ctrl_c_inside_torch_save_is_an_interrupt_not_the_zip_writers_error(tmp_path, monkeypatch):
    """Ctrl-C while torch.save writes: its zip writer then fails to close with a RuntimeError ("unexpected pos")
    that hides the interrupt, and the training loop's Ctrl-C handling (save the state, exit 130) was skipped for a
    traceback. The save raises the interrupt, leaves no temp file, and the earlier file as it was."""
    p = atomic_torch_save({"w": torch.arange(5)}, tmp_path / "a.pth")
    before = p.read_bytes()

    def interrupted_save(obj, f, *a, **k):
        f.write(b"PK\x03\x04 half a zip")
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:   # what torch's writer does on its way out
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 78016 vs 77908")  # noqa: B904

    monkeypatch.setattr(torch, "save", interrupted_save)
    with pytest.raises(KeyboardInterrupt):
        atomic_torch_save({"w": torch.arange(7)}, p)
    assert p.read_bytes() == before and everything_under(tmp_path) == ["a.pth"]

    def broken(obj, f, *a, **k):   # a RuntimeError of its own stays what it is
        raise RuntimeError("disk says no")

    monkeypatch.setattr(torch, "save", broken)
    with pytest.raises(RuntimeError, match="disk says no"):
        atomic_torch_save({"w": torch.arange(7)}, p)


# ------------------------------------------------------------------------------------ interruptions
@pytest.mark.slow
def test_pretrain_resume_equals_uninterrupted(tmp_path, tiny_data_dir, capsys, monkeypatch):
    a, b = tmp_path / "a" / "m.pth", tmp_path / "b" / "m.pth"
    assert train_cli.main(_train_argv(tmp_path, tiny_data_dir, a, "--epochs", "3", "--quiet")) == 0

    with monkeypatch.context() as m:
        _interrupt_on_call(m, 2)
        capsys.readouterr()
        rc = train_cli.main(_train_argv(tmp_path, tiny_data_dir, b, "--epochs", "3", "--quiet"))
    line = one_line(capsys.readouterr().err)
    assert rc == 130
    assert line.startswith("sca2lstm.py: interrupted") and "--resume" in line
    state = b.with_name("m_run") / "last_state.pth"
    assert torch.load(state, weights_only=True)["epoch"] == 1
    assert not b.exists()

    assert train_cli.main(_train_argv(tmp_path, tiny_data_dir, b, "--epochs", "3", "--quiet", "--resume")) == 0
    _same_weights(a, b)
    ha = torch.load(a, weights_only=True)["history"]
    hb = torch.load(b, weights_only=True)["history"]
    for key in ("val_loss", "train_loss", "lr"):  # epoch 0 has no train loss (NaN == NaN here)
        np.testing.assert_array_equal([h[key] for h in ha], [h[key] for h in hb])


@pytest.mark.slow
def test_pretrain_resume_reads_the_data_folder_of_the_run_it_continues(tmp_path, tiny_data_dir, capsys, monkeypatch):
    """A run started with --data_dir, stopped, resumes by the guide's command with --resume added: it reads the
    run's folder, as fine-tuning and prediction read a model's. It read the built-in synthetic basins and
    refused ('the data file of basin 32006 changed since the recorded run')."""
    out = tmp_path / "m.pth"
    argv = _train_argv(tmp_path, tiny_data_dir, out, "--epochs", "2", "--quiet")
    with monkeypatch.context() as m:
        _interrupt_on_call(m, 2)
        assert train_cli.main(argv) == 130
    i = argv.index("--data_dir")
    capsys.readouterr()
    assert train_cli.main(argv[:i] + argv[i + 2:] + ["--resume"]) == 0, capsys.readouterr().err
    ckpt = torch.load(out, weights_only=True)
    assert ckpt["data_dir"] == str(tiny_data_dir) and ckpt["builtin_data"] is False and ckpt["epoch"] >= 1


@pytest.mark.slow
def test_finetune_resume_reads_the_station_folder_of_the_run_it_continues(tmp_path, tiny_data_dir, pretrained_ckpt,
                                                                          capsys, monkeypatch):
    """A fine-tune of a station in a folder of its own (--data_dir ./my_stations), stopped, resumes by the guide's
    line with --resume added: it reads that folder again, not the pretrained model's ('unknown basin')."""
    stations = tmp_path / "my_stations"
    (stations / "timeseries").mkdir(parents=True)
    shutil.copy(ts_file(tiny_data_dir), stations / "timeseries" / "st-1.csv")
    argv = ["--target_basin", "st-1", "--pretrained_model", str(pretrained_ckpt), "--output_dir", str(tmp_path / "ft"),
            "--epochs", "2", "--patience", "1000", "--quiet"]
    with monkeypatch.context() as m:
        _interrupt_on_call(m, 2)
        assert finetune_cli.main(argv + ["--data_dir", str(stations)]) == 130
    capsys.readouterr()
    assert finetune_cli.main(argv + ["--resume"]) == 0, capsys.readouterr().err
    (model,) = (tmp_path / "ft").glob("basin_st-1/*/best_model_basin_st-1.pth")
    assert torch.load(model, weights_only=True)["data_dir"] == str(stations)


def test_a_finetune_stopped_before_it_saved_anything_leaves_no_run_folder(tmp_path, tiny_data_dir, pretrained_ckpt,
                                                                         monkeypatch, capsys):
    """Ctrl-C while the pretrained weights are scored, before the first resumable state: nothing to resume, so
    no run folder is left (as after a failure); one holding only its log stayed, which --resume then ignored."""
    from sca2lstm.training import finetune as finetune_mod

    def stop(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(finetune_mod, "evaluate", stop)
    out = tmp_path / "ft"
    assert finetune_cli.main(_ft_argv(pretrained_ckpt, tiny_data_dir, out, "--epochs", "1", "--quiet")) == 130
    assert one_line(capsys.readouterr().err, ignore=(FEW_RECORDS,)) == "fine_train.py: interrupted"
    assert everything_under(out) == []


@pytest.mark.slow
def test_finetune_resume_equals_uninterrupted(tmp_path, tiny_data_dir, pretrained_ckpt, capsys, monkeypatch):
    a, b = tmp_path / "a", tmp_path / "b"
    assert finetune_cli.main(_ft_argv(pretrained_ckpt, tiny_data_dir, a, "--epochs", "2", "--quiet")) == 0
    with monkeypatch.context() as m:
        _interrupt_on_call(m, 2)
        capsys.readouterr()
        rc = finetune_cli.main(_ft_argv(pretrained_ckpt, tiny_data_dir, b, "--epochs", "2", "--quiet"))
    line = one_line(capsys.readouterr().err, ignore=(FEW_RECORDS,))
    assert rc == 130 and line.startswith("fine_train.py: interrupted")
    (run,) = (b / "basin_32006").iterdir()
    assert (run / "last_state.pth").is_file() and not (run / "best_model_basin_32006.pth").exists()
    # Resumed with the test part moved, the days already validated on would become test days: refused
    state = (run / "last_state.pth").read_bytes()
    rc = finetune_cli.main(_ft_argv(pretrained_ckpt, tiny_data_dir, b, "--epochs", "2", "--quiet", "--resume",
                                    "--test_start", "1974-01-01"))
    line = one_line(capsys.readouterr().err, ignore=(FEW_RECORDS, "scores on it will be labelled in-sample"))
    assert rc == 2 and "--resume:" in line and "days differ: recorded" in line and "--test_start" in line, line
    assert (run / "last_state.pth").read_bytes() == state and not (run / "best_model_basin_32006.pth").exists()

    assert finetune_cli.main(_ft_argv(pretrained_ckpt, tiny_data_dir, b, "--epochs", "2", "--quiet",
                                      "--resume")) == 0
    (ca,) = a.glob("basin_32006/*/best_model_basin_32006.pth")
    cb = run / "best_model_basin_32006.pth"
    _same_weights(ca, cb)
    va, vb = torch.load(ca, weights_only=True), torch.load(cb, weights_only=True)
    assert [h["val_loss"] for h in va["history"]] == [h["val_loss"] for h in vb["history"]]
    # "before" scores the pretrained weights in both runs, not the resumed state
    assert va["val_metrics"]["before"] == vb["val_metrics"]["before"]
    torch.load(run / "last_state.pth", weights_only=True)


def _spawn_training(tmp_path, data):
    env = {k: v for k, v in os.environ.items() if k != "SCA2LSTM_DATA_DIR"}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", MPLBACKEND="Agg",
               SCA2LSTM_CACHE_DIR=str(tmp_path / "cache"))
    out = tmp_path / "m.pth"
    argv = [sys.executable, "sca2lstm.py", *_train_argv(tmp_path, data, out, "--epochs", "1000", "--quiet")]
    proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return proc, tmp_path, out, out.with_name("m_run") / "last_state.pth"


@pytest.fixture(scope="module")
def trainings(tmp_path_factory, tiny_data_dir):
    """Two real ``python sca2lstm.py`` runs (1000 epochs), started together to save wall time."""
    # A CI job started in the background (nohup, `&`) ignores SIGINT, and children inherit an ignored
    # signal, so the Ctrl-C sent below would be lost. A handler installed here is reset to the default
    # in the children when they exec, which is what a terminal gives them.
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        runs = {k: _spawn_training(tmp_path_factory.mktemp(k), tiny_data_dir) for k in ("sigint", "sigkill")}
    finally:
        signal.signal(signal.SIGINT, before)
    yield runs
    for proc, *_ in runs.values():
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def _wait_for(proc, cond, timeout=90.0):
    t0 = time.time()
    while not cond():
        if proc.poll() is not None:
            pytest.fail(f"training ended early (rc {proc.returncode}): {proc.communicate()[1]}")
        if time.time() - t0 > timeout:
            proc.kill()
            pytest.fail("timed out waiting for the training state")
        time.sleep(0.05)


@pytest.mark.slow
def test_sigint_saves_state_and_exits_130(trainings):
    proc, _, out, state = trainings["sigint"]
    _wait_for(proc, state.is_file)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    line = one_line(err)
    assert line.startswith("sca2lstm.py: interrupted") and "--resume" in line
    st = torch.load(state, weights_only=True)
    assert st["format"] == "sca2lstm-train-state-v1"
    assert not out.exists()


@pytest.mark.slow
def test_sigkill_leaves_a_loadable_state_that_resumes(trainings, tiny_data_dir, capsys):
    proc, tmp, out, state = trainings["sigkill"]
    _wait_for(proc, state.is_file)
    first = state.stat().st_mtime_ns
    _wait_for(proc, lambda: state.stat().st_mtime_ns != first)  # at least one epoch saved
    proc.kill()  # SIGKILL: no handler runs
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    st = load_checkpoint(state, require_model=False)
    assert st["epoch"] >= 1
    assert not out.exists()
    # The state resumes: with --epochs equal to the epochs it holds, it writes the final checkpoint at once.
    rc = train_cli.main(_train_argv(tmp, tiny_data_dir, out, "--epochs", str(st["epoch"]), "--resume", "--quiet"))
    assert rc == 0, capsys.readouterr().err
    assert torch.load(out, weights_only=True)["history"][-1]["epoch"] == st["epoch"]


# ------------------------------------------------------------------------------------ out of memory
OOM = [RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 15.8 GiB total capacity)"),
       torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 512.00 MiB"), MemoryError()]


@pytest.mark.parametrize("exc", OOM, ids=["RuntimeError", "OutOfMemoryError", "MemoryError"])
def test_out_of_memory_suggests_smaller_batch(tmp_path, tiny_data_dir, capsys, monkeypatch, exc):
    def boom(*a, **k):
        raise exc

    monkeypatch.setattr(SequenceData, "loss_mask", boom)  # the training batches, after epoch 0's state
    out = tmp_path / "m.pth"
    rc = train_cli.main(_train_argv(tmp_path, tiny_data_dir, out, "--epochs", "2", "--quiet"))
    line = one_line(capsys.readouterr().err)
    assert rc == 1
    assert line.startswith("sca2lstm.py: error: out of") and "try a smaller --batch_size" in line
    assert not out.exists()


def test_out_of_memory_in_finetune(tmp_path, tiny_data_dir, pretrained_ckpt, capsys, monkeypatch):
    monkeypatch.setattr(SequenceData, "loss_mask", lambda *a, **k: (_ for _ in ()).throw(OOM[0]))
    out = tmp_path / "ft"
    rc = finetune_cli.main(_ft_argv(pretrained_ckpt, tiny_data_dir, out, "--epochs", "2", "--quiet"))
    line = one_line(capsys.readouterr().err, ignore=(FEW_RECORDS,))
    assert rc == 1 and "try a smaller --batch_size" in line
    assert everything_under(out) == []


# ------------------------------------------------------------------------------------ non-finite losses
def _nan_loss(monkeypatch):
    monkeypatch.setattr(trainer_mod, "masked_mse", lambda pred, target, mask, *_: (pred * float("nan")).mean())


BATCH_RE = r"basin 32006 \d{4}-\d\d-\d\d\.\.\d{4}-\d\d-\d\d"


@pytest.mark.slow
def test_nan_guard_stops_pretraining(tmp_path, tiny_data_dir, capsys, monkeypatch):
    _nan_loss(monkeypatch)
    out = tmp_path / "m.pth"
    # One tiny basin has only 3 batches an epoch: the guard counts across epochs.
    rc = train_cli.main(_train_argv(tmp_path, tiny_data_dir, out, "--epochs", "5", "--quiet"))
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err
    lines = err.strip().splitlines()
    warnings = [ln for ln in lines[:-1] if "non-finite loss" in ln]
    assert len(warnings) == len(lines) - 1 == 5  # max_bad_batches, each naming basin and dates
    assert all(re.search(BATCH_RE, w) for w in warnings)
    assert lines[-1].startswith("sca2lstm.py: error: 5 consecutive batches had a non-finite loss")
    assert re.search(BATCH_RE, lines[-1])
    assert not out.exists()


@pytest.mark.slow
def test_nan_guard_stops_finetune_and_keeps_earlier_run(tmp_path, tiny_data_dir, pretrained_ckpt, capsys,
                                                        monkeypatch):
    out = tmp_path / "ft"
    assert finetune_cli.main(_ft_argv(pretrained_ckpt, tiny_data_dir, out, "--epochs", "0", "--quiet")) == 0
    before = snapshot(out)
    _nan_loss(monkeypatch)
    capsys.readouterr()
    rc = finetune_cli.main(_ft_argv(pretrained_ckpt, tiny_data_dir, out, "--epochs", "2", "--quiet"))
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("fine_train.py: error: 5 consecutive batches had a non-finite loss (last: basin 32006 ")
    assert snapshot(out) == before  # the earlier run is byte-identical and the failed one left nothing


@pytest.mark.slow
def test_diverged_pretraining_keeps_the_earlier_model(tmp_path, tiny_data_dir, capsys):
    """A learning rate far too high: no epoch beats the untrained weights, and the good model stays."""
    out = tmp_path / "m.pth"
    assert train_cli.main(_train_argv(tmp_path, tiny_data_dir, out, "--epochs", "2", "--quiet")) == 0
    before = {p: p.read_bytes() for p in tmp_path.glob("m*.*") if p.is_file()}
    assert out in before
    capsys.readouterr()
    rc = train_cli.main(_train_argv(tmp_path, tiny_data_dir, out, "--epochs", "2", "--learning_rate", "1e4",
                                    "--quiet"))
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("sca2lstm.py: error: training diverged: no epoch beat the untrained weights")
    assert "lower --learning_rate (now 10000)" in last and str(out) in last
    assert {p: p.read_bytes() for p in before} == before


@pytest.mark.slow
def test_a_run_stopped_while_calibrating_leaves_the_earlier_model_and_no_uncalibrated_one(
        tmp_path, tiny_data_dir, pretrained_ckpt, monkeypatch, capsys):
    """Ctrl-C during the calibration at the end of pretraining keeps the earlier model and its calibration
    byte-identical; during a fine-tune's, the new run folder holds no model the guide's glob would pick."""
    from sca2lstm.training import finetune as finetune_mod
    from sca2lstm.training import pretrain as pretrain_mod

    out = tmp_path / "m.pth"
    assert train_cli.main(_train_argv(tmp_path, tiny_data_dir, out, "--epochs", "1", "--quiet")) == 0
    before = {p: p.read_bytes() for p in tmp_path.glob("m*.*") if p.is_file()}
    assert out in before and any(p.name.endswith("forecast_calibration.json") for p in before)

    def stop(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pretrain_mod, "calibrate_after_training", stop)
    monkeypatch.setattr(finetune_mod, "calibrate_after_training", stop)
    capsys.readouterr()
    assert train_cli.main(_train_argv(tmp_path, tiny_data_dir, out, "--epochs", "1", "--seed", "3", "--quiet")) != 0
    assert {p: p.read_bytes() for p in before} == before
    assert not [p for p in tmp_path.glob(".m*") if p.is_file()]   # no staged model left behind
    ft = tmp_path / "ft"
    assert finetune_cli.main(_ft_argv(pretrained_ckpt, tiny_data_dir, ft, "--epochs", "1", "--quiet")) != 0
    assert not list(ft.glob(f"basin_{BASIN}/*/best_model_basin_{BASIN}.pth"))
    assert not list(ft.rglob("*.staged*"))


@pytest.mark.slow
def test_a_run_stopped_while_calibrating_names_its_saved_state_and_resume_completes_it(
        tmp_path, tiny_data_dir, pretrained_ckpt, monkeypatch, capsys):
    """Ctrl-C after the last epoch (the calibration takes minutes) ends, like one during an epoch, with the
    line naming the saved state and --resume, also in the run's log; --resume then completes the run. It
    said only 'interrupted', and the fine-tune's log nothing."""
    from sca2lstm.training import finetune as finetune_mod
    from sca2lstm.training import pretrain as pretrain_mod

    def stop(*args, **kwargs):
        raise KeyboardInterrupt

    for mod in (pretrain_mod, finetune_mod):
        monkeypatch.setattr(mod, "calibrate_after_training", stop)
    out, ft = tmp_path / "m.pth", tmp_path / "ft"
    runs = [(train_cli, _train_argv(tmp_path, tiny_data_dir, out, "--epochs", "1", "--quiet"),
             lambda: tmp_path / "m_run", "train.log", "sca2lstm.py"),
            (finetune_cli, _ft_argv(pretrained_ckpt, tiny_data_dir, ft, "--epochs", "1", "--quiet"),
             lambda: next((ft / f"basin_{BASIN}").iterdir()), "finetune.log", "fine_train.py")]
    for cli, argv, run_dir, log_name, prog in runs:
        capsys.readouterr()
        assert cli.main(argv) == 130
        state = run_dir() / "last_state.pth"
        expected = f"{prog}: interrupted; the run's state is saved in {state}; rerun the same command with --resume added to continue"
        assert capsys.readouterr().err.strip().splitlines()[-1] == expected
        assert f"Interrupted: the run's state is saved in {state}" in (run_dir() / log_name).read_text()
    monkeypatch.undo()
    assert train_cli.main(runs[0][1] + ["--resume"]) == 0 and out.is_file()
    assert finetune_cli.main(runs[1][1] + ["--resume"]) == 0
    kept = list(ft.glob(f"basin_{BASIN}/*/best_model_basin_{BASIN}.pth"))
    assert kept
    # the resume trained no epoch: the model's training time is the interrupted run's epochs' (it was 0 s)
    ck = torch.load(kept[0], weights_only=True)
    epochs = [r["seconds"] for r in ck["history"] if r.get("seconds") is not None]
    assert ck["train_seconds"] > 0 and ck["train_seconds"] == pytest.approx(sum(epochs), rel=1e-9)


@pytest.mark.slow
def test_a_pretraining_stopped_while_calibrating_leaves_the_run_folder_describing_the_earlier_model(
        tmp_path, tiny_data_dir, monkeypatch, capsys):
    """The run folder's history, metrics, config and curve describe the model beside it: a run with other
    settings, stopped during its calibration, leaves them as the earlier model's."""
    from sca2lstm.training import pretrain as pretrain_mod

    out = tmp_path / "m.pth"
    assert train_cli.main(_train_argv(tmp_path, tiny_data_dir, out, "--epochs", "1", "--quiet")) == 0
    record = ["history.csv", "config.json", "val_metrics.csv", "data_summary.csv", "training_curve.png"]
    before = {name: (tmp_path / "m_run" / name).read_bytes() for name in record}

    def stop(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pretrain_mod, "calibrate_after_training", stop)
    assert train_cli.main(_train_argv(tmp_path, tiny_data_dir, out, "--epochs", "2", "--learning_rate", "0.001",
                                      "--quiet")) == 130
    assert {name: (tmp_path / "m_run" / name).read_bytes() for name in record} == before


@pytest.mark.slow
def test_a_pretraining_resumed_after_training_reports_its_training_time_and_points_only_at_its_own_files(
        tmp_path, tiny_data_dir, monkeypatch, capsys):
    """A run stopped while calibrating says nothing of the data_summary.csv it has not written (the earlier run's is
    still there); its resume, which trains no epoch, reports the seconds the epochs took before it ("0.0 s" was
    the resume's own time) and then points at the file it wrote."""
    from sca2lstm.training import pretrain as pretrain_mod

    out, run_dir = tmp_path / "m.pth", tmp_path / "m_run"
    argv = _train_argv(tmp_path, tiny_data_dir, out, "--epochs", "2", "--quiet")
    assert train_cli.main(argv) == 0

    def stop(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pretrain_mod, "calibrate_after_training", stop)
    other = argv + ["--basins", BASIN, "10002"]               # another run: its data_summary.csv differs
    assert train_cli.main(other) == 130
    stopped = (run_dir / "unfinished" / "train.log").read_text().split("sca2lstm.py: new run")[-1]  # beside the earlier run
    assert "Validation median NSE" in stopped and "data_summary.csv in" not in stopped
    monkeypatch.undo()
    assert train_cli.main(other + ["--resume"]) == 0
    resumed = (run_dir / "train.log").read_text().split("sca2lstm.py: resumed run")[-1]
    state = torch.load(run_dir / "last_state.pth", weights_only=True)
    trained = sum(r["seconds"] for r in state["history"])
    assert trained > 0
    line = next(ln for ln in resumed.splitlines() if "Validation median NSE" in ln)
    assert f"| {trained:.1f} s of training before the resume (resumed after training)" in line, line
    assert torch.load(out, weights_only=True)["train_seconds"] == pytest.approx(trained)
    pointer = [ln for ln in resumed.splitlines() if "data_summary.csv in" in ln]
    assert len(pointer) == 1 and "training 2 used" in pointer[0], pointer
    assert "10002" in (run_dir / "data_summary.csv").read_text()


def test_a_basin_listed_twice_is_pretrained_on_once(tmp_path, tiny_data_dir, capsys):
    """`--basins 32006 32006` (or a list file naming a gauge twice) trains on the basin once, as fine_train.py and
    predict.py take repeated ids, and says so; it was sampled twice as often and stored twice in the model."""
    out = tmp_path / "m.pth"
    argv = _train_argv(tmp_path, tiny_data_dir, out, "--epochs", "0", "--quiet")
    argv[argv.index("--basins") + 1:argv.index("--basins") + 2] = [BASIN, "10002", BASIN]
    assert train_cli.main(argv) == 0
    assert f"basin(s) {BASIN} listed more than once; each is used once" in capsys.readouterr().err
    ckpt = load_checkpoint(out)
    assert ckpt["basins"] == [BASIN, "10002"]
    assert all(span["basins"] == sorted([BASIN, "10002"]) for span in ckpt["trained_on"])


def test_check_learned_refuses_a_diverged_run_and_warns_about_one_that_did_not_learn(caplog):
    import logging

    from sca2lstm.errors import TrainingError
    from sca2lstm.training.pretrain import check_learned

    row = lambda e, v, t=1.0: {"epoch": e, "val_loss": v, "train_loss": t}  # noqa: E731
    check_learned([row(0, 1.0), row(1, 1.2), row(2, 0.9)], "m.pth", 1e-3)   # epoch 2 beats the start
    check_learned([row(0, 1.0)], "m.pth", 1e-3)                             # no epoch ran: nothing to judge
    for rows in ([row(1, 5e13, 8e13)], [row(1, 2.0), row(2, float("nan"))], [row(1, 1.5, float("inf"))],
                 [row(1, 11.0)]):
        with pytest.raises(TrainingError, match="training diverged: .*m.pth was not written"):
            check_learned([row(0, 1.0)] + rows, "m.pth", 1e-3)
    with caplog.at_level(logging.WARNING):                                   # one short epoch, not yet better
        check_learned([row(0, 1.48), row(1, 1.491, 1.077)], "m.pth", 5e-3)
    assert "the model written is the untrained one; train for more epochs" in caplog.text


def test_synthetic_basins_written_to_a_folder_are_known_as_synthetic(pretrained_ckpt, tmp_path, capsys):
    """`sca2lstm data synth --out` writes basins with real gauge ids; a model trained on real data is refused
    on them in one line, as on the built-in basins."""
    from sca2lstm.cli.main import main

    out = tmp_path / "synth"
    assert main(["data", "synth", "--out", str(out), "--basins", "3", "--end", "1975-12-31"]) == 0
    capsys.readouterr()
    rc = predict_cli.main(["--model", str(pretrained_ckpt), "--basin", "32006", "--data_dir", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and len(err) == 1 and "would run on the built-in synthetic basins" in err[0]


@pytest.mark.parametrize("command", ["data synth", "demo"])
def test_synthetic_basins_never_appear_without_their_marker_even_on_ctrl_c_just_after(tmp_path, monkeypatch,
                                                                                     capsys, command):
    """The basins' folder is built aside and renamed into place; the synthetic marker was written after that
    rename, so a Ctrl-C between the two left synthetic basins (with real gauge ids) that every model took for
    real data. The marker is in the folder when it is renamed, and so in the folder a Ctrl-C leaves."""
    from sca2lstm.cli import demo as demo_cli
    from sca2lstm.cli.main import main
    from sca2lstm.data import synthetic
    from sca2lstm.data.dataset import SYNTHETIC_MARKER

    out = tmp_path / ("synth" if command == "data synth" else "demo_output")
    final = out if command == "data synth" else out / "data"
    at_rename = []
    rename = os.rename

    def rename_then_ctrl_c(src, dst):
        if os.fspath(dst) != os.fspath(final):
            return rename(src, dst)
        at_rename.append(sorted(p.name for p in os.scandir(src)))
        rename(src, dst)
        raise KeyboardInterrupt   # Ctrl-C the moment the folder has appeared

    monkeypatch.setattr(synthetic.os, "rename", rename_then_ctrl_c)
    if command == "data synth":
        rc = main(["data", "synth", "--out", str(out), "--basins", "2", "--end", "1971-12-31"])
    else:
        rc = demo_cli.main(["--tiny", "--out", str(out), "--quiet"])
    assert rc == 130, capsys.readouterr().err
    assert at_rename == [sorted(["attributes", "timeseries", SYNTHETIC_MARKER])], at_rename
    assert (final / SYNTHETIC_MARKER).is_file()
    assert "not observations" in (final / SYNTHETIC_MARKER).read_text(encoding="utf-8")


def test_synth_with_start_after_end_is_a_usage_error_naming_both_and_writes_nothing(tmp_path, capsys):
    """--start after --end is a bad flag value: exit 2 and one line naming both, as predict's --start/--end."""
    from sca2lstm.cli.main import main

    out = tmp_path / "synth"
    assert main(["data", "synth", "--out", str(out), "--start", "1980-01-01", "--end", "1979-01-01"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--start 1980-01-01 is after --end 1979-01-01" in err[0], err
    assert not out.exists()


@pytest.mark.slow
def test_output_read_by_a_closed_pipe_ends_quietly_without_a_traceback(tiny_data_dir):
    """`sca2lstm data check | head -2`: the reader closes the pipe; the command ends with exit 141 (as one stopped by
    SIGPIPE) and nothing on stderr, not a BrokenPipeError traceback. A subprocess: the pipe must be a real one."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line
    try:
        proc = subprocess.run([sys.executable, "-m", "sca2lstm", "data", "check", "--data_dir", str(tiny_data_dir)],
                              cwd=REPO, stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write_end)
    assert proc.returncode == 141 and proc.stderr == "", proc.stderr


def test_synth_into_a_folder_under_a_file_names_the_file_in_one_line(tmp_path, capsys):
    """--out notes.txt/basins: the file in the way is named (it said 'notes.txt: File exists'); nothing is written."""
    from sca2lstm.cli.main import main

    (tmp_path / "notes.txt").write_text("mine")
    assert main(["data", "synth", "--out", str(tmp_path / "notes.txt" / "basins"), "--basins", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{tmp_path / 'notes.txt'} is a file, not a folder" in err[0], err
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_synth_of_many_basins_names_the_first_ones_in_one_short_line(tmp_path, capsys):
    """500 basins: the line says how many were written and names the first 20, not 500 ids in one line."""
    from sca2lstm.cli.main import main

    out = tmp_path / "synth"
    assert main(["data", "synth", "--out", str(out), "--basins", "500", "--start", "1971-01-01",
                 "--end", "1971-01-10"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Wrote 500 synthetic basins to {out}")
    assert lines[0].endswith("... (480 more)") and len(lines[0]) < 300, lines[0]
    assert len(list((out / "timeseries").glob("*.csv"))) == 500


def test_synthetic_basins_written_under_a_tilde_path_are_known_as_synthetic(pretrained_ckpt, tmp_path, monkeypatch,
                                                                            capsys):
    """`--out=~/synth` reaches the command with its '~' (no shell expands it there): the marker goes beside the
    basins under the home folder, without a traceback, so a real-data model is refused on them."""
    from sca2lstm.cli.main import main

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert main(["data", "synth", "--out=~/synth", "--basins", "1", "--end", "1975-12-31"]) == 0
    assert not (tmp_path / "~").exists()
    capsys.readouterr()
    rc = predict_cli.main(["--model", str(pretrained_ckpt), "--basin", "32006", "--data_dir", str(tmp_path / "synth")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and len(err) == 1 and "would run on the built-in synthetic basins" in err[0]


@pytest.mark.slow
def test_paths_given_with_a_tilde_the_shell_left_are_under_the_home_folder(tiny_data_dir, tmp_path, monkeypatch,
                                                                             capsys):
    """`--output=~/m.pth` reaches the commands with its '~': the guide's three steps write and read under the home
    folder, as the checks before them (and --data_dir) already took it; they wrote into a folder named ~ under the
    working folder, read a model from there, and predict.py failed with a traceback."""
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    assert train_cli.main(_train_argv(tmp_path, tiny_data_dir, "~/m.pth", "--epochs", "1", "--quiet")) == 0
    assert (home / "m.pth").is_file()
    assert finetune_cli.main(["--target_basin", BASIN, "--pretrained_model=~/m.pth", "--data_dir", str(tiny_data_dir),
                              "--epochs", "0", "--output_dir=~/ft", "--quiet"]) == 0
    (model,) = home.glob(f"ft/basin_{BASIN}/*/best_model_basin_{BASIN}.pth")
    capsys.readouterr()
    assert predict_cli.main([f"--model=~/ft/basin_{BASIN}/*/best_model_basin_{BASIN}.pth", "--basin", BASIN,
                             "--output_dir=~/pr", "--quiet"]) == 0
    assert str(model.resolve()) in capsys.readouterr().out
    assert (home / "pr" / f"basin_{BASIN}" / "series.csv").is_file()
    assert everything_under(work) == []


@pytest.mark.slow
def test_a_model_trained_on_a_data_synth_folder_runs_on_that_folder_only(tiny_data_dir, tmp_path, capsys):
    """Pointed at real data it names its own folder (not the built-in cache, other basins); with the folder
    gone it is refused in one line instead of running on the cache's basins."""
    from sca2lstm.cli.main import main

    synth = tmp_path / "synth"
    assert main(["data", "synth", "--out", str(synth), "--basins", "3", "--seed", "7", "--end", "1977-12-31"]) == 0
    model = tmp_path / "m.pth"
    assert train_cli.main(_train_argv(tmp_path, synth, model, "--epochs", "1", "--quiet")) == 0
    capsys.readouterr()
    rc = predict_cli.main(["--model", str(model), "--basin", BASIN, "--data_dir", str(tiny_data_dir)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and f"--data_dir {synth}" in err[0]
    synth.rename(tmp_path / "moved")
    rc = predict_cli.main(["--model", str(model), "--basin", BASIN])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and f"synthetic basins of {synth}, which is not found" in err[0]


def test_a_real_data_model_is_not_replaced_by_one_trained_on_the_built_in_basins(pretrained_ckpt, tmp_path):
    """The guide's first command run without a data folder would train on the synthetic basins; over a model
    trained on real data it is refused before any training, naming both ways out."""
    from sca2lstm.errors import UsageError
    from sca2lstm.training.pretrain import keep_real_model

    out = tmp_path / "sca2lstm.pth"
    shutil.copy(pretrained_ckpt, out)
    with pytest.raises(UsageError, match="holds a model trained on real data .* give the real data folder, or --output"):
        keep_real_model(out, builtin=True)
    keep_real_model(out, builtin=False)                    # real data over real data: the normal rerun
    keep_real_model(tmp_path / "absent.pth", builtin=True)  # nothing to keep


def test_a_fine_tune_resumes_only_from_the_pretrained_model_it_started_from():
    from sca2lstm.training.trainer import resume_difference

    run = {"basins": ["32006"], "config": {}, "source_sha256": "a" * 64}
    assert resume_difference(run, dict(run)) is None
    assert "--pretrained_model is another checkpoint" in resume_difference(run, {**run, "source_sha256": "b" * 64})


def test_a_killed_runs_half_built_folder_is_cleared_by_the_next_run(tmp_path):
    """kill -9 during a prediction leaves .basin_X.<pid>.tmp; the next write of that folder removes it (its
    process is gone), and leaves one of a process still running alone."""
    from sca2lstm.fileio import folder_built_aside

    final = tmp_path / "basin_32006"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".basin_32006.{int(dead.stdout)}.tmp"
    stale.mkdir()
    (stale / "series.csv").write_text("half\n")
    live = tmp_path / f".basin_32006.{os.getppid()}.tmp"
    live.mkdir()
    with folder_built_aside(final) as tmp:
        (tmp / "series.csv").write_text("whole\n")
    assert (final / "series.csv").read_text() == "whole\n"
    assert not stale.exists() and live.exists()


def test_ctrl_c_while_a_command_loads_is_one_line_and_exit_130(monkeypatch, capsys):
    # The subcommand's import takes about a second (pydantic, pandas): a Ctrl-C then must end the command
    # as it does once it runs, not with a traceback of the import machinery.
    from sca2lstm.cli import main as cli_main

    def interrupted(name):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_main.importlib, "import_module", interrupted)
    assert cli_main.launch("train", ["--epochs", "1"], prog="sca2lstm.py") == 130
    assert cli_main.main(["forecast", "--help"]) == 130
    err = capsys.readouterr().err
    assert err.splitlines() == ["sca2lstm.py: interrupted", "sca2lstm: interrupted"]


def test_the_entry_points_load_no_heavy_library_before_the_command_runs():
    # What runs before launch() can catch a Ctrl-C must be quick: the package root, the command table and
    # the guide's root scripts import neither torch nor pydantic nor pandas.
    code = ("import sys; import sca2lstm.cli.main; "
            "print(sorted(m for m in ('torch', 'pydantic', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    for script in ("sca2lstm.py", "fine_train.py", "predict.py"):
        assert "from sca2lstm.cli.main import launch" in (REPO / script).read_text(encoding="utf-8")


def test_a_file_the_system_refuses_is_one_line_naming_it(tmp_path, tiny_data_dir, pretrained_ckpt, capsys):
    """An output the system will not write (here a folder that cannot be made, as under /proc or a read-only
    share) ends in one line naming the path and the system's reason, exit 1, not a traceback; an OSError that
    names no file is a bug and keeps its traceback."""
    import argparse

    from sca2lstm.cli.common import run_main
    from sca2lstm.cli.predict import main as predict_main

    blocked = tmp_path / "no_such_folder" / "out.csv"

    def writes(args):
        open(blocked, "w")

    assert run_main("prog", writes, argparse.ArgumentParser(), []) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"prog: error: {blocked}: No such file or directory"]

    def disk_full(args):
        raise OSError(28, "No space left on device")  # as a write says it: no file named

    assert run_main("prog", disk_full, argparse.ArgumentParser(), []) == 1
    assert capsys.readouterr().err.strip().splitlines() == ["prog: error: No space left on device"]

    def bug(args):
        raise OSError("something without a file")

    with pytest.raises(OSError, match="without a file"):
        run_main("prog", bug, argparse.ArgumentParser(), [])

    if os.path.isdir("/proc/self"):  # Linux: nothing can be made under /proc
        rc = predict_main(["--model", str(pretrained_ckpt), "--basin", "32006", "--data_dir", str(tiny_data_dir),
                           "--output_dir", "/proc/sca2lstm_out", "--quiet"])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 1 and len(err) == 1 and "/proc/sca2lstm_out" in err[0], err


def test_json_files_are_strict_json_with_null_for_what_cannot_be_computed():
    """metrics.json, val_metrics.json and forecast.json are written by one function: NaN and infinities become
    null (json.dumps writes NaN, which jq, R's jsonlite and browsers refuse), NumPy scalars plain numbers."""
    import json

    from sca2lstm.fileio import json_text

    def refuse(name):
        raise ValueError(f"{name} is not JSON")

    doc = {"nse": float("nan"), "kge": np.float32(0.5), "n": np.int64(3), "bound": -np.inf,
           "leads": [1.0, np.float64("nan"), (2, float("inf"))], "nested": {"x": None, "y": "NaN"}}
    back = json.loads(json_text(doc, default=float), parse_constant=refuse)
    assert back == {"nse": None, "kge": 0.5, "n": 3, "bound": None, "leads": [1.0, None, [2, None]],
                    "nested": {"x": None, "y": "NaN"}}


@pytest.mark.parametrize("failure", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_a_folder_swap_that_fails_after_moving_the_earlier_folder_aside_puts_it_back(tmp_path, monkeypatch, failure):
    """A prediction's or forecast's folder is swapped in by two renames (the earlier folder aside, the new one in):
    where the second fails, or Ctrl-C comes between them, the earlier folder is in place again, not left hidden
    as .<name>.<pid>.old, which the next run's clean-up deletes."""
    from sca2lstm import fileio

    final = tmp_path / "basin_32006"
    final.mkdir()
    (final / "series.csv").write_text("earlier\n")
    rename = os.replace

    def failing_swap(src, dst):
        if os.fspath(dst) == os.fspath(final) and os.fspath(src).endswith(".tmp"):  # the new folder's rename in
            raise failure
        rename(src, dst)

    monkeypatch.setattr(fileio.os, "replace", failing_swap)
    with pytest.raises(type(failure)):
        with fileio.folder_built_aside(final) as tmp:
            (tmp / "series.csv").write_text("new\n")
    assert (final / "series.csv").read_text() == "earlier\n"
    assert [p.name for p in tmp_path.iterdir()] == ["basin_32006"]    # nothing left beside it


@pytest.mark.slow
@pytest.mark.parametrize("stop", [KeyboardInterrupt, RuntimeError])
def test_a_pretraining_stopped_beside_an_earlier_good_run_leaves_it_intact_and_resumes(
        tmp_path, tiny_data_dir, monkeypatch, capsys, stop):
    """A second run into the same --output stopped after one epoch (Ctrl-C, or an error: out of memory) appended to the good run's
    train.log and replaced its last_state.pth. It now keeps its state and log in m_run/unfinished/: the earlier
    model, run folder and log stay byte-identical, --resume continues the stopped run, and once it completes its
    state replaces the earlier one and its log lines follow the earlier run's in train.log."""
    out, run_dir = tmp_path / "m.pth", tmp_path / "m_run"
    assert train_cli.main(_train_argv(tmp_path, tiny_data_dir, out, "--epochs", "1", "--quiet")) == 0
    before = snapshot(tmp_path)
    real = trainer_mod.Trainer._train_epoch

    def epoch(self, e):
        if e == 2:
            raise KeyboardInterrupt if stop is KeyboardInterrupt else stop("CUDA out of memory in epoch 2")
        return real(self, e)

    monkeypatch.setattr(trainer_mod.Trainer, "_train_epoch", epoch)
    argv = _train_argv(tmp_path, tiny_data_dir, out, "--epochs", "2", "--quiet")
    assert train_cli.main(argv) == (130 if stop is KeyboardInterrupt else 1)
    staged = run_dir / "unfinished"
    after = snapshot(tmp_path)
    assert {k: v for k, v in after.items() if not k.startswith(str(Path("m_run") / "unfinished"))} == before
    assert torch.load(staged / "last_state.pth", weights_only=True)["epoch"] == 1
    log = (staged / "train.log").read_text()
    assert "sca2lstm.py: new run" in log and f"run {'interrupted' if stop is KeyboardInterrupt else 'failed'}" in log
    monkeypatch.undo()
    assert train_cli.main(argv + ["--resume"]) == 0
    assert not staged.exists() and out.read_bytes() != before["m.pth"]
    assert torch.load(run_dir / "last_state.pth", weights_only=True)["epoch"] == 2
    earlier = before[str(Path("m_run") / "train.log")].decode()
    log = (run_dir / "train.log").read_text()
    assert log.startswith(earlier) and log.index("sca2lstm.py: new run", len(earlier)) < log.index("resumed run")
