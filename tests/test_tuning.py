"""Hyper-parameter search: the SCA/PSO samplers, search-space validation, a resumable tune study and the
gradient-guided SCA optimiser."""

from __future__ import annotations

import logging
import math

import numpy as np
import optuna
import pytest
import torch
import yaml

from sca2lstm.config import load_config
from sca2lstm.errors import ConfigError
from sca2lstm.training.samplers import PSOSampler, SCASampler, decode, encode, reflect
from sca2lstm.training.sca_optimizer import GradientGuidedSCA

from conftest import TINY_MODEL, TINY_PERIODS

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _quadratic(trial):
    return (trial.suggest_float("x", -5, 5) - 1) ** 2 + (trial.suggest_float("y", -5, 5) + 2) ** 2


def test_sca_sampler_stays_within_bounds_and_converges_on_a_quadratic():
    sampler = SCASampler(population=10, n_trials=200, seed=0)
    study = optuna.create_study(sampler=sampler)
    study.optimize(_quadratic, n_trials=200)
    xs = np.array([[t.params["x"], t.params["y"]] for t in study.trials])
    assert (xs >= -5).all() and (xs <= 5).all()
    # Random search's best of 200 trials on this box is ~0.16 in expectation (pi*eps/100 per trial).
    assert study.best_value < 0.05
    first = np.mean([t.value for t in study.trials[:10]])
    last = np.mean([t.value for t in study.trials[-10:]])
    assert last < first / 5  # the population gathers near the optimum (1, -2)
    assert np.allclose(study.best_params["x"], 1, atol=0.25) and np.allclose(study.best_params["y"], -2, atol=0.25)


@pytest.mark.parametrize("cls", [SCASampler, PSOSampler])
def test_population_samplers_keep_int_log_and_categorical_values_inside_their_ranges(cls):
    seen = []

    def objective(trial):
        lr = trial.suggest_float("lr", 1e-5, 1e-1, log=True)
        h = trial.suggest_int("h", 8, 64, step=8)
        d = trial.suggest_float("d", 0.0, 0.5, step=0.1)
        c = trial.suggest_categorical("c", ["a", "b", "c"])
        seen.append((lr, h, d, c))
        return (math.log10(lr) + 3) ** 2 + (h - 40) ** 2 / 100 + d + (c != "b")

    optuna.create_study(sampler=cls(population=4, n_trials=40, seed=1)).optimize(objective, n_trials=40)
    for lr, h, d, c in seen:
        assert 1e-5 <= lr <= 1e-1 and h in range(8, 65, 8) and c in "abc"
        assert 0 <= d <= 0.5 and abs(d * 10 - round(d * 10)) < 1e-9


def test_coordinates_round_trip_and_reflect_at_the_bounds():
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
    f = FloatDistribution(1e-4, 1e-2, log=True)
    assert decode(f, encode(f, 1e-3)) == pytest.approx(1e-3)
    i = IntDistribution(1, 5)
    assert [decode(i, encode(i, k)) for k in range(1, 6)] == [1, 2, 3, 4, 5]
    c = CategoricalDistribution([16, 32, 64])
    assert [decode(c, encode(c, v)) for v in (16, 32, 64)] == [16, 32, 64]
    assert reflect(np.array([-0.25, 1.25, 0.5, 3.0])).tolist() == [0.25, 0.75, 0.5, 0.0]


def test_sca_amplitude_falls_linearly_from_a_to_zero():
    s = SCASampler(population=4, n_trials=40, seed=0, a=2.0)
    assert s.generations == 10
    assert [s.r1(g) for g in (0, 5, 10)] == [2.0, 1.0, 0.0]


def test_a_sca_study_is_reproducible_from_its_seed():
    runs = []
    for _ in range(2):
        st = optuna.create_study(sampler=SCASampler(population=3, n_trials=12, seed=5))
        st.optimize(_quadratic, n_trials=12)
        runs.append([t.params for t in st.trials])
    assert runs[0] == runs[1]


# ------------------------------------------------------------------ search space
GOOD = {"training.learning_rate": {"low": 1e-4, "high": 1e-2, "log": True},
        "model.hidden_size": {"low": 8, "high": 32, "step": 8}, "model.cell_readout": {"choices": [True, False]}}


def test_a_good_space_parses_into_typed_dimensions():
    from sca2lstm.config import search_space
    dims = search_space(load_config(overrides={"tune": {"space": GOOD}}))
    assert [(d.key, d.kind) for d in dims] == [("training.learning_rate", "float"), ("model.hidden_size", "int"),
                                                ("model.cell_readout", "categorical")]
    assert dims[0].log and dims[1].step == 8
    # a float step that divides the range exactly in decimal, though not in binary floating point
    dims = search_space(load_config(overrides={"tune": {"space": {"model.dropout": {"low": 0.1, "high": 0.3,
                                                                                      "step": 0.1}}}}))
    assert (dims[0].low, dims[0].high, dims[0].step) == (0.1, 0.3, 0.1)


BAD_SPACES = [
    ({"training.learnin_rate": {"low": 1e-4, "high": 1e-2}}, "unknown key 'training.learnin_rate'"),
    ({"training.learning_rat": {"low": 1e-4, "high": 1e-2}},
     "unknown key 'training.learning_rat' (did you mean training.learning_rate?)"),
    ({"data.dynamic_inputs": {"choices": ["precipitation", "peti"]}},
     "tune.space.data.dynamic_inputs: the key holds a list, which cannot be searched"),
    ({"training.learning_rate": {"low": 1e-2, "high": 1e-4}}, "low=0.01 must be smaller than high=0.0001"),
    ({"training.learning_rate": {"low": 0.0, "high": 1e-2, "log": True}}, "log: true needs low > 0"),
    ({"training.batch_size": {"choices": []}}, "choices is empty"),
    ({"model.hidden_size": {"low": 8.5, "high": 32}}, "must be an integer"),
    ({"model.cell_readout": {"low": 0, "high": 1}}, "search it with choices"),
    ({"model.dropout": {"low": 0.0, "high": 1.5}}, "tune.space.model.dropout: the value 1.5 is not valid"),
    ({"training.learning_rate": {"low": "fast", "high": 1e-2}}, "low='fast' must be a finite number"),
    ({"training.learning_rate": {"lo": 1e-4, "high": 1e-2}}, "unknown field(s) ['lo']"),
    ({"training.learning_rate": 0.001}, "expected a mapping"),
    ({"finetune.unfreeze_lstm1": {"choices": [False, True]}},
     "tune.space.finetune.unfreeze_lstm1 cannot be searched: the trials pretrain and never read the finetune section"),
    ({"data.val_end": {"choices": ["2003-09-30", "2005-09-30"]}},
     "tune.space.data.val_end cannot be searched: the trials would be scored on different periods"),
    ({"data.data_dir": {"choices": ["a", "b"]}}, "tune.space.data.data_dir cannot be searched: every trial reads"),
    ({"model.hidden_size": {"low": 8, "high": 20, "step": 8}},
     "tune.space.model.hidden_size: high=20 is not low=8 plus a whole number of steps of 8; e.g. high: 16"),
    ({"model.dropout": {"low": 0.0, "high": 0.5, "step": 0.2}},
     "tune.space.model.dropout: high=0.5 is not low=0.0 plus a whole number of steps of 0.2; e.g. high: 0.4"),
]


@pytest.mark.parametrize("space,message", BAD_SPACES)
def test_bad_search_spaces_get_one_line_each(space, message):
    with pytest.raises(ConfigError) as e:
        load_config(overrides={"tune": {"space": space}})
    text = str(e.value)
    assert message in text and "\n" not in text


def test_keys_searched_together_give_every_valid_combination_and_refuse_only_the_invalid_one():
    """A trial's config is checked with the trial's values together, not by checking the space's other bounds
    again against them: with seq_len in [40, 80] and spinup in [20, 50], the trial (80, 50) is valid although
    the bound seq_len 40 is not beside spinup 50; only (40, 50) itself fails."""
    from sca2lstm.training.tune import trial_config

    space = {"training.seq_len": {"choices": [40, 80]}, "training.spinup": {"choices": [20, 50]}}
    cfg = load_config(overrides={"training": {"seq_len": 60, "spinup": 20}, "tune": {"space": space}})
    for seq_len, spinup in [(80, 50), (80, 20), (40, 20)]:
        tcfg = trial_config(cfg, {"training.seq_len": seq_len, "training.spinup": spinup})
        assert (tcfg.training.seq_len, tcfg.training.spinup) == (seq_len, spinup)
        assert tcfg.tune == cfg.tune  # the study's own section, unchanged
    with pytest.raises(ConfigError, match="training.spinup=50 must be smaller than training.seq_len=40"):
        trial_config(cfg, {"training.seq_len": 40, "training.spinup": 50})


def test_tune_command_refuses_a_bad_space_in_one_line_and_writes_nothing(tmp_path, capsys):
    from sca2lstm.cli.main import main
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"tune": {"space": {"training.learning_rate": {"low": -1, "high": 1, "log": True}}}}))
    out = tmp_path / "study"
    assert main(["tune", "--config", str(cfg), "--output_dir", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "log: true needs low > 0" in err[0]
    assert not out.exists()


@pytest.mark.parametrize("storage, detail", [("bogus://x", "NoSuchModuleError"),
                                             ("mysql://user@localhost/db", "ImportError")])
def test_tune_storage_that_cannot_be_opened_is_one_line(tiny_data_dir, tmp_path, capsys, storage, detail):
    """An unknown database scheme or a missing driver: one line naming --storage and what it accepts, not a
    SQLAlchemy traceback."""
    from sca2lstm.cli.main import main
    rc = main(["tune", "--config", str(_tune_yaml(tmp_path, tiny_data_dir)), "--storage", storage, "--output_dir",
               str(tmp_path / "study")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert f"--storage {storage!r}: cannot open it ({detail}" in err[0] and "sqlite:///path/study.db" in err[0]


@pytest.mark.parametrize("content, detail", [("hello\n", "line 1 is not JSON"),
                                             ('{"name": "not a journal"}\n', "line 1 is not an Optuna record")])
def test_a_journal_storage_that_is_not_a_journal_is_one_line_and_kept(tiny_data_dir, tmp_path, capsys, content,
                                                                      detail):
    """A --storage .log file holding something else (a text file, other JSON lines) is refused naming it, not
    Optuna's JSONDecodeError or KeyError traceback after it appended a record to the file, which is left as it was."""
    from sca2lstm.cli.main import main
    journal = tmp_path / "study.log"
    journal.write_text(content)
    rc = main(["tune", "--config", str(_tune_yaml(tmp_path, tiny_data_dir)), "--storage", str(journal),
               "--output_dir", str(tmp_path / "study")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert f"--storage {str(journal)!r} is not an Optuna journal file" in err[0] and detail in err[0], err
    assert journal.read_text() == content


def test_a_study_of_zero_epoch_trials_is_refused_before_it_starts(tiny_data_dir, tmp_path, capsys):
    """training.epochs 0 scored every trial by its untrained weights and wrote one of them as best_config.yaml."""
    from sca2lstm.cli.main import main

    cfg = yaml.safe_load(_tune_yaml(tmp_path, tiny_data_dir).read_text())
    cfg["training"]["epochs"] = 0
    p = tmp_path / "zero.yaml"
    p.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "study"
    assert main(["tune", "--config", str(p), "--output_dir", str(out), "--trials", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "training.epochs is 0" in err[0] and "--epochs N" in err[0], err
    assert not out.exists()
    # searched, a trial of 0 epochs is pruned for the same reason
    cfg["training"]["epochs"] = 2
    cfg["tune"]["space"] = {"training.epochs": {"choices": [0]}}
    p.write_text(yaml.safe_dump(cfg))
    assert main(["tune", "--config", str(p), "--output_dir", str(out), "--trials", "1", "--quiet"]) == 2
    assert "1 of its 1 finished trials diverged" in capsys.readouterr().err
    trial = optuna.load_study(study_name="sca2lstm", storage=f"sqlite:///{out / 'study.db'}").trials[0]
    assert trial.state.name == "PRUNED" and "no epoch trained" in trial.user_attrs["diverged"]


# ------------------------------------------------------------------ tune study
def _tune_yaml(tmp_path, data_dir, trials=4):
    cfg = {"data": {"data_dir": str(data_dir), **TINY_PERIODS},
           "training": {"seq_len": 60, "spinup": 20, "epochs": 2, "batch_size": 8, "windows_per_epoch": 4},
           "model": TINY_MODEL,
           "tune": {"trials": trials, "population": 2, "pruner": "none", "sampler": "sca",
                    "space": {"training.learning_rate": {"low": 1e-3, "high": 1e-2, "log": True},
                              "model.hidden_size": {"low": 8, "high": 16, "step": 8}}}}
    p = tmp_path / "tune.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


@pytest.mark.slow
def test_a_tune_run_interrupted_and_resumed_completes_its_trials(tiny_data_dir, tmp_path, monkeypatch, capsys):
    from sca2lstm.cli.main import main
    from sca2lstm.training import tune

    cfg = _tune_yaml(tmp_path, tiny_data_dir, trials=4)
    out = tmp_path / "study"
    real = tune.train_trial
    calls = []

    def interrupted(*a, **k):  # Ctrl-C during the third trial
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(tune, "train_trial", interrupted)
    argv = ["tune", "--config", str(cfg), "--output_dir", str(out)]  # progress lines: not --quiet
    assert main(argv) == 130
    assert "rerun the same command" in capsys.readouterr().err
    study = optuna.load_study(study_name="sca2lstm", storage=f"sqlite:///{out / 'study.db'}")
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE", "FAIL"]

    monkeypatch.setattr(tune, "train_trial", real)
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "2 of 4 trials already finished" in text
    study = optuna.load_study(study_name="sca2lstm", storage=f"sqlite:///{out / 'study.db'}")
    finished = [t for t in study.trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(finished) == 4 and len(study.trials) == 5  # the failed trial is not counted again
    assert main(argv) == 0  # a finished study runs no more trials
    assert main([*argv, "--trials", "3"]) == 0  # nor one asked for fewer than it holds, and says so
    assert "4 trials already finished, more than the 3 asked: none to run" in capsys.readouterr().out
    assert len(optuna.load_study(study_name="sca2lstm", storage=f"sqlite:///{out / 'study.db'}").trials) == 5

    import pandas as pd
    table = pd.read_csv(out / "trials.csv")
    assert len(table) == 5 and (out / "history.png").stat().st_size > 0
    best = load_config(out / "best_config.yaml")  # what --config accepts
    assert best.training.learning_rate == pytest.approx(study.best_params["training.learning_rate"])
    assert best.model.hidden_size == study.best_params["model.hidden_size"]
    assert best.data.val_start == TINY_PERIODS["val_start"]
    assert best.data.data_dir is not None                      # the folder the study ran on, never none
    assert "was each trial's budget, not chosen by the study" in (out / "best_config.yaml").read_text()


@pytest.mark.slow
def test_an_interrupted_study_writes_its_outputs_from_the_trials_finished_so_far(tiny_data_dir, tmp_path,
                                                                                monkeypatch, capsys):
    """Ctrl-C during a trial: trials.csv and best_config.yaml show the trials completed before it (they were
    written only at the study's end, so an interrupted run left none, or the previous run's), exit 130 and one line
    naming them. Interrupted before any trial completed, nothing is written."""
    import pandas as pd

    from sca2lstm.cli.main import main
    from sca2lstm.training import tune

    cfg = _tune_yaml(tmp_path, tiny_data_dir, trials=3)
    out = tmp_path / "study"
    real = tune.train_trial
    calls = []

    def interrupted_at(n):
        def train(*a, **k):  # Ctrl-C during trial n (counted from 1)
            calls.append(1)
            if len(calls) == n:
                raise KeyboardInterrupt
            return real(*a, **k)
        return train

    argv = ["tune", "--config", str(cfg), "--output_dir", str(out), "--quiet"]
    monkeypatch.setattr(tune, "train_trial", interrupted_at(1))
    assert main(argv) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["sca2lstm tune: interrupted; the study is stored; rerun the same command to finish its trials"]
    assert not (out / "trials.csv").exists() and not (out / "best_config.yaml").exists()

    calls.clear()
    monkeypatch.setattr(tune, "train_trial", interrupted_at(3))  # trials 1 and 2 of this run complete
    assert main(argv) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "trials.csv, history.png, best_config.yaml hold the 2 trial(s) completed so far" in err[0]
    assert "rerun the same command to finish its trials" in err[0], err
    table = pd.read_csv(out / "trials.csv")
    assert table["state"].tolist() == ["FAIL", "COMPLETE", "COMPLETE", "FAIL"]
    study = optuna.load_study(study_name="sca2lstm", storage=f"sqlite:///{out / 'study.db'}")
    assert study.best_trial.number in (1, 2)
    best = load_config(out / "best_config.yaml")
    assert best.training.learning_rate == pytest.approx(study.best_params["training.learning_rate"])
    assert f"# The best trial ({study.best_trial.number})" in (out / "best_config.yaml").read_text()
    assert not list(out.glob("*.tmp*")) and not list(out.glob(".*"))  # written whole, no staged file left


def _pair_study(tmp_path, data_dir):
    """A tune config searching ``training.seq_len`` and ``training.spinup`` together (choices 40/60 and 20/45, of which
    (40, 45) does not go together), and an empty study of its output folder to enqueue trials in: (config path,
    output folder, storage URL)."""
    cfg = yaml.safe_load(_tune_yaml(tmp_path, data_dir).read_text())
    cfg["tune"]["space"] = {"training.seq_len": {"choices": [40, 60]}, "training.spinup": {"choices": [20, 45]}}
    p = tmp_path / "pair.yaml"
    p.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "study"
    out.mkdir()
    storage = f"sqlite:///{out / 'study.db'}"
    optuna.create_study(storage=storage, study_name="sca2lstm")
    return p, out, storage


class _OptunaRecords(logging.Handler):
    """The records Optuna's loggers pass to their handlers (what Optuna would print on stderr)."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage() + ("\n" + str(record.exc_info[1]) if record.exc_info else ""))

    def __enter__(self):
        logging.getLogger("optuna").addHandler(self)
        return self

    def __exit__(self, *exc):
        logging.getLogger("optuna").removeHandler(self)


@pytest.mark.slow
def test_a_failed_or_interrupted_trial_is_one_line_without_optunas_traceback(tiny_data_dir, tmp_path, monkeypatch,
                                                                             capsys):
    """An invalid combination of searched keys fails its trial; the trial's progress line says why. Ctrl-C ends the
    study in the command's one line. Optuna's own 'Trial N failed' warning (with a traceback, and for Ctrl-C the
    trainer's hint to rerun with --resume, which tune has not, naming a deleted temporary folder) is not printed."""
    from sca2lstm.cli.main import main
    from sca2lstm.training import tune

    p, out, storage = _pair_study(tmp_path, tiny_data_dir)
    study = optuna.load_study(study_name="sca2lstm", storage=storage)
    study.enqueue_trial({"training.seq_len": 40, "training.spinup": 45})
    study.enqueue_trial({"training.seq_len": 60, "training.spinup": 20})
    study.enqueue_trial({"training.seq_len": 40, "training.spinup": 20})
    argv = ["tune", "--config", str(p), "--output_dir", str(out)]  # progress lines: not --quiet
    with _OptunaRecords() as records:
        assert main([*argv, "--trials", "2"]) == 0
    text = capsys.readouterr()
    assert "trial 0 [0/2] failed: training.spinup=45 must be smaller than training.seq_len=40" in text.out, text.out
    assert "trial 1 [1/2] val_loss" in text.out
    assert "Traceback" not in text.err and not [m for m in records.messages if "failed" in m], records.messages

    def interrupted(*a, **k):
        raise KeyboardInterrupt("the state after epoch 0 is saved in /tmp/x/last_state.pth; rerun with --resume")

    monkeypatch.setattr(tune, "train_trial", interrupted)
    study.enqueue_trial({"training.seq_len": 60, "training.spinup": 45})  # a valid one: its training is interrupted
    with _OptunaRecords() as records:
        assert main([*argv, "--trials", "3"]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "rerun the same command to finish its trials" in err[0], err
    assert not [m for m in records.messages if "failed" in m or "--resume" in m], records.messages


@pytest.mark.slow
def test_a_failed_trial_is_not_one_of_the_studys_trials_and_another_is_drawn_in_its_place(tiny_data_dir, tmp_path,
                                                                                         capsys):
    """--trials 2 with the first trial an invalid combination: the run ends with two finished trials, not one; a run
    whose trials all fail stops (no endless drawing) and says so."""
    from sca2lstm.cli.main import main

    p, out, storage = _pair_study(tmp_path, tiny_data_dir)
    study = optuna.load_study(study_name="sca2lstm", storage=storage)
    for seq_len, spinup in [(40, 45), (60, 20), (40, 20)]:
        study.enqueue_trial({"training.seq_len": seq_len, "training.spinup": spinup})
    argv = ["tune", "--config", str(p), "--output_dir", str(out), "--quiet"]
    assert main([*argv, "--trials", "2"]) == 0
    assert [t.state.name for t in optuna.load_study(study_name="sca2lstm", storage=storage).trials] == [
        "FAIL", "COMPLETE", "COMPLETE"]
    capsys.readouterr()

    study.enqueue_trial({"training.seq_len": 40, "training.spinup": 45})  # the one more trial asked fails
    assert main([*argv, "--trials", "3"]) == 0
    err = capsys.readouterr().err
    assert "2 of 3 trials finished: the last 1 failed; narrow tune.space" in err, err
    assert len(optuna.load_study(study_name="sca2lstm", storage=storage).trials) == 4


@pytest.mark.slow
def test_a_study_resumed_with_another_objective_is_refused_naming_both(tiny_data_dir, tmp_path, capsys):
    """A study keeps its first direction: trials scored by another objective would be ranked by it (a low
    val_nse taken for a good val_loss) and the worst written as best_config.yaml."""
    from sca2lstm.cli.main import main

    out = tmp_path / "study"
    argv = ["tune", "--config", str(_tune_yaml(tmp_path, tiny_data_dir)), "--output_dir", str(out), "--quiet"]
    assert main([*argv, "--trials", "1"]) == 0
    best = (out / "best_config.yaml").read_bytes()
    capsys.readouterr()
    assert main([*argv, "--trials", "2", "--objective", "val_nse"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "objective 'val_nse'" in err[0] and "by 'val_loss'" in err[0], err
    assert "--objective val_loss" in err[0]
    assert (out / "best_config.yaml").read_bytes() == best
    assert len(optuna.load_study(study_name="sca2lstm", storage=f"sqlite:///{out / 'study.db'}").trials) == 1


@pytest.mark.slow
@pytest.mark.parametrize("sampler", ["random", "tpe"])
def test_a_resumed_study_proposes_new_values_rather_than_its_first_trials_again(tiny_data_dir, tmp_path, sampler):
    """Rerunning the command with a larger --trials resumes the study: its new trials are other settings, not
    the draws of trials 0, 1, ... again (a seeded sampler restarted at its seed), which would spend the budget
    on configurations already scored."""
    from sca2lstm.cli.main import main

    out = tmp_path / "study"
    argv = ["tune", "--config", str(_tune_yaml(tmp_path, tiny_data_dir)), "--output_dir", str(out), "--quiet",
            "--sampler", sampler]
    assert main([*argv, "--trials", "2"]) == 0
    assert main([*argv, "--trials", "4"]) == 0
    trials = optuna.load_study(study_name="sca2lstm", storage=f"sqlite:///{out / 'study.db'}").trials
    assert len(trials) == 4
    first = [t.params["training.learning_rate"] for t in trials[:2]]
    resumed = [t.params["training.learning_rate"] for t in trials[2:]]
    assert not set(resumed) & set(first), (first, resumed)


@pytest.mark.slow
def test_a_study_resumed_with_other_data_or_epochs_is_refused_naming_the_setting(tiny_data_dir, tmp_path, capsys):
    """The trials a study holds were scored on its data with its epoch budget: a rerun on another data folder
    or with another --epochs would rank trials of two kinds together and write the best as best_config.yaml."""
    import shutil

    from sca2lstm.cli.main import main

    out = tmp_path / "study"
    argv = ["tune", "--config", str(_tune_yaml(tmp_path, tiny_data_dir)), "--output_dir", str(out), "--quiet"]
    assert main([*argv, "--trials", "1"]) == 0
    best = (out / "best_config.yaml").read_bytes()
    capsys.readouterr()
    assert main([*argv, "--trials", "2", "--epochs", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "training.epochs 1:" in err[0] and "ran its trials with training.epochs 2" in err[0], err
    other = tmp_path / "other"
    shutil.copytree(tiny_data_dir, other)
    assert main([*argv, "--trials", "2", "--data_dir", str(other)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"data_dir {str(other)!r}" in err[0] and str(tiny_data_dir) in err[0], err
    assert (out / "best_config.yaml").read_bytes() == best
    assert len(optuna.load_study(study_name="sca2lstm", storage=f"sqlite:///{out / 'study.db'}").trials) == 1
    assert main([*argv, "--trials", "2"]) == 0     # the same settings resume it


@pytest.mark.slow
def test_a_study_whose_first_start_failed_starts_again_with_the_corrected_settings(tiny_data_dir, tmp_path, capsys):
    """A first start on a mistyped data folder fails before any trial finishes; it had recorded its settings, and
    the corrected command was refused for ever ('ran its trials with data_dir ...'), though no trial had run with
    them. The corrected command runs the study, with its own objective's direction."""
    from sca2lstm.cli.main import main

    out = tmp_path / "study"
    argv = ["tune", "--config", str(_tune_yaml(tmp_path, tiny_data_dir)), "--output_dir", str(out), "--quiet",
            "--trials", "1"]
    (tmp_path / "typo" / "timeseries").mkdir(parents=True)
    assert main([*argv, "--data_dir", str(tmp_path / "typo")]) == 1
    assert "no timeseries files" in capsys.readouterr().err
    assert main([*argv, "--objective", "val_nse"]) == 0, capsys.readouterr().err
    study = optuna.load_study(study_name="sca2lstm", storage=f"sqlite:///{out / 'study.db'}")
    assert study.direction == optuna.study.StudyDirection.MAXIMIZE
    assert [t.state.name for t in study.trials] == ["COMPLETE"]
    assert study.user_attrs["base"]["data_dir"] == str(tiny_data_dir)


@pytest.mark.slow
def test_best_config_names_the_data_folder_the_study_ran_on_not_the_configs(tiny_data_dir, tmp_path, monkeypatch):
    """The config names one folder (relative to where the study ran), --data_dir another: the trials read the
    second, and best_config.yaml, for --config of the final training, names it, absolute. It named the config's."""
    import shutil

    from sca2lstm.cli.main import main

    monkeypatch.chdir(tmp_path)
    shutil.copytree(tiny_data_dir, tmp_path / "configured")
    shutil.copytree(tiny_data_dir, tmp_path / "given")
    cfg = yaml.safe_load(_tune_yaml(tmp_path, tiny_data_dir).read_text())
    cfg["data"]["data_dir"] = "configured"
    p = tmp_path / "rel.yaml"
    p.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "study"
    assert main(["tune", "--config", str(p), "--output_dir", str(out), "--trials", "1", "--quiet",
                 "--data_dir", "given"]) == 0
    assert load_config(out / "best_config.yaml").data.data_dir == str(tmp_path / "given")


@pytest.mark.slow
def test_a_diverging_trial_is_pruned_and_never_the_best(tiny_data_dir, tmp_path, capsys, monkeypatch):
    """A trial whose learning rate makes training diverge (1e6: its validation loss goes to 1e16) never beats its
    starting weights; scored there, it tied with or beat the trials that trained and could be written as
    best_config.yaml. It is pruned, saying why; a study with no other trial writes nothing and says so."""
    import pandas as pd

    from sca2lstm.cli.main import main

    cfg = yaml.safe_load(_tune_yaml(tmp_path, tiny_data_dir).read_text())
    cfg["tune"]["sampler"] = "random"
    cfg["tune"]["space"] = {"training.learning_rate": {"choices": [1.0e6, 3.0e-3]}}
    p = tmp_path / "diverging.yaml"
    p.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "study"
    storage = f"sqlite:///{out / 'study.db'}"
    out.mkdir()
    study = optuna.create_study(storage=storage, study_name="sca2lstm", direction="minimize")
    study.enqueue_trial({"training.learning_rate": 1.0e6})  # the diverging trial first, then one that trains
    study.enqueue_trial({"training.learning_rate": 3.0e-3})
    argv = ["tune", "--config", str(p), "--output_dir", str(out)]  # progress lines: not --quiet

    assert main([*argv, "--trials", "1"]) == 2
    captured = capsys.readouterr()
    assert "pruned, diverged: no trained epoch beat the starting weights" in captured.out
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and "no completed trial" in err[0] and "1 of its 1 finished trials diverged" in err[0], err
    assert not (out / "best_config.yaml").exists()

    from sca2lstm.evaluation import tuning_plots

    figs = []
    save = tuning_plots._save
    monkeypatch.setattr(tuning_plots, "_save", lambda fig, path: figs.append(fig.axes[0].get_ylim()) or save(fig, path))
    assert main([*argv, "--trials", "2"]) == 0
    assert figs[-1][1] < 10, figs  # history.png: the diverged trial (1e16) marked off the scale, not drawn at it
    trials = optuna.load_study(study_name="sca2lstm", storage=storage).trials
    assert [t.state.name for t in trials] == ["PRUNED", "COMPLETE"]
    assert "starting weights" in trials[0].user_attrs["diverged"]
    assert trials[1].user_attrs["best_epoch"] > 0 and "diverged" not in trials[1].user_attrs
    assert optuna.load_study(study_name="sca2lstm", storage=storage).best_trial.number == 1
    assert load_config(out / "best_config.yaml").training.learning_rate == pytest.approx(3.0e-3)
    table = pd.read_csv(out / "trials.csv")
    assert list(table["state"]) == ["PRUNED", "COMPLETE"]


@pytest.mark.slow
def test_a_trial_reports_each_epoch_on_the_scale_of_its_value(tiny_data_dir, tmp_path, capsys):
    """The pruner compares, and a pruned trial is valued by, the epochs' reports: they are the quantity the
    trial's value scores (the validation loss early stopping follows), not the hindcast MSE beside it, on which
    a pruned trial looked better than every completed one."""
    from sca2lstm.cli.main import main

    cfg = yaml.safe_load(_tune_yaml(tmp_path, tiny_data_dir).read_text())
    cfg["tune"]["space"] = {"training.learning_rate": {"choices": [3.0e-3]}}
    p = tmp_path / "one.yaml"
    p.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "study"
    assert main(["tune", "--config", str(p), "--output_dir", str(out), "--trials", "1", "--quiet"]) == 0
    lines = capsys.readouterr().out.splitlines()  # --quiet: no progress lines, what the study chose and wrote
    assert [line.split(" ")[0] for line in lines] == ["best", "wrote"], lines
    trial = optuna.load_study(study_name="sca2lstm", storage=f"sqlite:///{out / 'study.db'}").trials[0]
    assert trial.state.name == "COMPLETE" and trial.user_attrs["best_epoch"] > 0
    assert sorted(trial.intermediate_values) == [1, 2]
    assert trial.intermediate_values[trial.user_attrs["best_epoch"]] == pytest.approx(trial.value, rel=1e-12)


# ------------------------------------------------------------------ gradient-guided SCA optimiser
def test_gradient_guided_sca_keeps_the_best_candidate_and_fits_a_regression():
    torch.manual_seed(0)
    X = torch.randn(64, 5)
    y = X @ torch.tensor([1.0, -2.0, 0.5, 0.0, 3.0]) + 0.1
    model = torch.nn.Linear(5, 1)
    opt = GradientGuidedSCA(model.parameters(), lr=0.1, population=3, horizon=40)

    def loss_fn():
        return torch.mean((model(X).squeeze(1) - y) ** 2)

    start = float(loss_fn().detach())
    for _ in range(60):
        opt.zero_grad()
        loss_fn().backward()
        before = [p.detach().clone() for p in model.parameters()]
        grads = [p.grad.clone() for p in model.parameters()]
        kept = opt.step(loss_fn)
        if kept is not None:  # the kept loss is no worse than the plain normalised-gradient step
            saved = [p.detach().clone() for p in model.parameters()]
            with torch.no_grad():
                for p, b, g in zip(model.parameters(), before, grads):
                    p.copy_(b - 0.1 * g / g.norm())
                plain = float(loss_fn())
                for p, s in zip(model.parameters(), saved):
                    p.copy_(s)
            assert kept <= plain + 1e-6
    assert float(loss_fn().detach()) < start / 20


def test_training_optimizer_key_selects_the_optimizer():
    from sca2lstm.training.sca_optimizer import make_optimizer
    assert load_config().training.optimizer == "adamw"
    p = [torch.nn.Parameter(torch.zeros(2))]
    assert isinstance(make_optimizer("sca", p, 1e-3, 0.0), GradientGuidedSCA)
    assert isinstance(make_optimizer("adamw", p, 1e-3, 0.0), torch.optim.AdamW)
    with pytest.raises(ConfigError, match="training.optimizer='adam' is not allowed; expected one of adamw, sca"):
        load_config(overrides={"training": {"optimizer": "adam"}})


@pytest.mark.slow
def test_pretraining_with_the_sca_optimizer_improves_validation(tiny_data_dir, tmp_path):
    from conftest import make_tiny_config
    from sca2lstm.training.pretrain import pretrain
    cfg = make_tiny_config(tiny_data_dir, training={"optimizer": "sca", "epochs": 2, "windows_per_epoch": 8,
                                                    "learning_rate": 0.05})
    r = pretrain(cfg, tmp_path / "m.pth", data_dir=tiny_data_dir, progress=False)
    losses = [h["val_loss"] for h in r["history"]]
    assert min(losses[1:]) < losses[0]  # epoch 0 scores the initial weights
    ck = torch.load(tmp_path / "m.pth", weights_only=True)
    assert ck["config"]["training"]["optimizer"] == "sca"


def test_tune_without_optuna_is_one_line(tmp_path, capsys, monkeypatch):
    import sys

    from sca2lstm.cli.main import main
    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna raises ImportError
    assert main(["tune", "--output_dir", str(tmp_path / "study")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'sca2lstm[tune]'" in err[0]
    assert not (tmp_path / "study").exists()
