"""Hyper-parameter search on Optuna (``sca2lstm tune``): one study over the config's ``tune.space``.

- A trial is a pretraining run with the trial's values put into the config (flag > file > defaults
  apply to everything else), scored on the validation period only: the best epoch's validation loss, or
  the validation median NSE of that epoch (``tune.objective``). The test period is never loaded into
  a trial's scores.
- Pruning: each epoch reports its validation value; Optuna's median or Hyperband pruner stops a trial
  that falls behind the others (``tune.pruner``).
- The study lives in a file database (SQLite through Optuna's RDB storage, or Optuna's journal file):
  rerunning the same command resumes it and runs only the trials still missing, and several processes
  pointed at the same storage share one budget (Optuna's MaxTrialsCallback). A process killed mid-trial
  leaves that trial RUNNING; the heartbeat marks it failed once its grace period has passed.
- Outputs in the study folder: ``trials.csv`` (Optuna's trials table, its ``best`` column true on the trial
  ``best_config.yaml`` is made from), ``history.png`` (values and best
  so far per trial) and ``best_config.yaml`` (the whole config with the best trial's values, loadable
  with ``--config``).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..config import Config, search_space
from ..errors import ConfigError, TrainingError, UsageError
from ..fileio import atomic_write_text
from ..logs import RESULT
from ..search_space import Dimension, nested_values

log = logging.getLogger(__name__)

STUDY_FILE = "study.db"


def require_optuna():
    """The ``optuna`` module, or one line saying how to install it."""
    try:
        import optuna
    except ImportError:
        raise UsageError("hyper-parameter search needs Optuna, which is not installed; "
                         "pip install 'sca2lstm[tune]' (or: pip install optuna)") from None
    return optuna


def storage_url(storage: str | None, out_dir: Path) -> str:
    """``storage`` as given (a database URL such as ``sqlite:///study.db``, or a ``.log`` journal file),
    else the SQLite file ``out_dir/study.db``."""
    if storage:
        return str(storage)
    return f"sqlite:///{(Path(out_dir) / STUDY_FILE).resolve()}"


def open_storage(url: str):
    """Optuna storage for ``url``: a journal file for ``*.log``/``*.jsonl`` paths, else an RDB URL with a
    heartbeat (a killed worker's trial is marked failed after its grace period)."""
    optuna = require_optuna()
    if "://" not in url:
        if not url.endswith((".log", ".jsonl")):
            raise UsageError(f"--storage {url!r}: expected a database URL (sqlite:///path/study.db) or a "
                             "journal file ending in .log")
        from optuna.storages.journal import JournalFileBackend
        Path(url).parent.mkdir(parents=True, exist_ok=True)
        _check_journal(Path(url))
        return optuna.storages.JournalStorage(JournalFileBackend(url))
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    from sqlalchemy.exc import SQLAlchemyError

    with warnings.catch_warnings():  # the heartbeat is marked experimental in Optuna; it is what resumes need
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        try:
            return optuna.storages.RDBStorage(url, heartbeat_interval=30, grace_period=90)
        except (SQLAlchemyError, ImportError, ValueError) as e:  # unknown scheme, missing driver, bad URL
            detail = " ".join(str(e).split())[:160]
            raise UsageError(f"--storage {url!r}: cannot open it ({type(e).__name__}: {detail}); expected a database "
                             "URL such as sqlite:///path/study.db, or a journal file ending in .log") from None


def _check_journal(path: Path) -> None:
    """Refuse (UsageError) a ``--storage`` journal file that holds something else than Optuna's records.

    Optuna tolerates an unreadable last line (a write cut short) until it appends the next record after it; a
    text file given as the journal then had a record appended to it and failed in a JSONDecodeError traceback.
    """
    import json

    if not path.is_file():
        return
    with open(path, "rb") as f:
        for number, line in enumerate(f, start=1):
            if not line.endswith(b"\n"):
                return  # the last record, cut short: Optuna skips it
            try:
                record = json.loads(line)
            except ValueError as e:  # JSONDecodeError, UnicodeDecodeError
                why = f"line {number} is not JSON ({type(e).__name__})"
            else:
                if isinstance(record, dict) and "op_code" in record:
                    continue
                why = f"line {number} is not an Optuna record"
            raise UsageError(f"--storage {str(path)!r} is not an Optuna journal file ({why}); give another .log "
                             "file, or a database URL such as sqlite:///path/study.db")


def resumed_seed(sampler: str, seed: int | None, n_trials: int) -> int | None:
    """The sampler seed of a study that already holds ``n_trials`` trials.

    Optuna's ``tpe`` (random for its first 10 trials) and ``random`` samplers draw from one random stream that
    starts at their seed: with the seed of the first run, a resumed study proposed the values of trials 0, 1, ...
    again, and spent its remaining budget on configurations it had scored. Their seed is therefore moved on by
    the trials already held (still reproducible: the same study and seed give the same draws). ``sca`` and
    ``pso`` draw from (seed, trial number) already, so a resumed study continues as an uninterrupted one would.
    """
    if sampler not in ("tpe", "random") or n_trials == 0:
        return seed
    import numpy as np

    return int(np.random.SeedSequence([0 if seed is None else int(seed), int(n_trials)]).generate_state(1)[0])


def base_record(cfg: Config, dims, data_dir) -> dict:
    """What every trial of a study shares: ``{"section.key": value}`` of the config but the tune section and the
    searched keys, and ``data_dir`` (the folder the trials read, absolute). A resumed study must run with the same.
    """
    record = {"data_dir": str(Path(data_dir).expanduser().absolute())}
    searched = {d.key for d in dims}
    for section, values in cfg.to_dict().items():
        if section == "tune":
            continue
        for k, v in values.items():
            if f"{section}.{k}" not in searched and not (section == "data" and k == "data_dir"):
                record[f"{section}.{k}"] = v
    return record


def make_pruner(name: str, max_epochs: int):
    optuna = require_optuna()
    if name == "median":
        # Never prune from the first trials or from the first epoch (epoch 0 scores the initial weights).
        return optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=1)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(max_epochs, 1))
    return optuna.pruners.NopPruner()


def suggest(trial, dim: Dimension):
    """The trial's value of one search dimension (Optuna's suggest_* API)."""
    if dim.kind == "categorical":
        return trial.suggest_categorical(dim.key, list(dim.choices))
    if dim.kind == "int":
        return trial.suggest_int(dim.key, dim.low, dim.high, step=dim.step, log=dim.log)
    return trial.suggest_float(dim.key, dim.low, dim.high, step=dim.step, log=dim.log)


def trial_config(cfg: Config, values: dict) -> Config:
    """``cfg`` with a trial's ``{"section.key": value}`` put in (the tune section itself unchanged).

    The trial's values are checked together (``training.spinup`` below ``training.seq_len``: a ConfigError
    fails the trial), but ``tune.space`` is not checked again: its bounds were checked at load against the
    base config, and against one trial's values the other bounds of keys searched together (``seq_len`` 40
    beside a trial's ``spinup`` 50) refused every valid combination as well.
    """
    trial = cfg.replace(tune={"space": {}}, **nested_values(values))
    return trial.model_copy(update={"tune": cfg.tune})


@dataclass
class TrialOutcome:
    """A trained trial: what the objective scored, and its model (for benchmarks that keep the best)."""

    value: float
    cfg: Config
    model: object
    prepared: object
    history: list = field(default_factory=list)
    best_epoch: int = 0  # the epoch ``value`` scores (0: the starting weights, where no trained epoch beat them)


class _PreparedCache:
    """Prepared data per distinct data section and window length: trials that only change the model
    or the optimiser share one preparation."""

    def __init__(self, data_dir):
        self.data_dir = data_dir
        self.store: dict = {}

    def get(self, cfg: Config):
        from .pretrain import prepare_pretraining_data
        key = repr((sorted(cfg.data.model_dump().items()), cfg.training.seq_len))
        if key not in self.store:
            self.store = {key: prepare_pretraining_data(cfg, self.data_dir)}  # keep one: memory stays flat
        return self.store[key]


def objective_value(objective: str, history: list[dict], best_epoch: int) -> float:
    """The trial's score: the best epoch's validation loss, or its validation median NSE."""
    row = next(r for r in history if r["epoch"] == best_epoch)
    return float(row["val_loss"] if objective == "val_loss" else row["val_nse_median"])


def train_trial(cfg: Config, cache: _PreparedCache, device, state_dir: Path, epoch_callback=None) -> TrialOutcome:
    """Pretrain one trial's configuration; its best epoch's weights are restored in the model."""
    from ..models.sca2lstm import SCA2LSTM
    from .pretrain import train_settings
    from .runtime import seed_everything
    from .trainer import Trainer

    prep = cache.get(cfg)
    seed_everything(cfg.training.seed)
    model = SCA2LSTM(cfg).to(device)
    meta = {"config": cfg.to_dict(), "scalers": prep.scalers.to_dict(), "basins": prep.basins}
    trainer = Trainer(model, prep.data, prep.train_periods, prep.data, prep.val_periods, train_settings(cfg),
                      device, Path(state_dir) / "last_state.pth", meta, progress=False,
                      epoch_callback=epoch_callback)
    res = trainer.fit()
    value = objective_value(cfg.tune.objective, res["history"], res["best_epoch"])
    return TrialOutcome(value, cfg, model, prep, res["history"], res["best_epoch"])


def run_study(cfg: Config, out_dir, data_dir=None, storage: str | None = None, study_name: str = "sca2lstm",
              device="cpu", seed: int | None = None, n_trials: int | None = None, on_trial=None,
              echo=None) -> dict:
    """Run (or resume) the study until it holds ``n_trials`` finished trials (complete or pruned).

    Parameters
    ----------
    cfg : Config
        Base configuration; its ``tune`` section gives the space, sampler, objective, pruner.
    on_trial : callable, optional
        ``on_trial(trial_number, TrialOutcome)`` after each completed trial (benchmarks keep the best
        model this way).
    echo : callable, optional
        Where every line goes (the study's, one per trial, the best trial and the files written). None: the log,
        the best trial and the files as results (shown with ``--quiet``), the others as progress (not shown).

    Returns
    -------
    dict with ``study``, ``best`` (FrozenTrial), ``best_config`` (Config) and the ``files`` written.
    """
    optuna = require_optuna()
    from ..data.dataset import resolve_data_dir
    from .samplers import make_sampler

    dims = search_space(cfg, "config")
    if not dims:
        raise ConfigError("tune.space is empty: name at least one key to search, e.g. "
                          "tune: {space: {training.learning_rate: {low: 1.0e-4, high: 1.0e-2, log: true}}}")
    if cfg.training.epochs == 0 and "training.epochs" not in {d.key for d in dims}:
        raise UsageError("training.epochs is 0: every trial would be scored by its untrained starting weights; give "
                         "each trial its epochs with --epochs N (or training.epochs in the config)")
    t = cfg.tune
    total = int(n_trials or t.trials)
    out_dir = Path(out_dir)
    data_dir, _ = resolve_data_dir(data_dir, cfg)
    direction = "minimize" if t.objective == "val_loss" else "maximize"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = storage_url(storage, out_dir)
    store = open_storage(url)

    def create():
        return optuna.create_study(storage=store, study_name=study_name, direction=direction,
                                   sampler=make_sampler(t.sampler, seed, t.population, total),
                                   pruner=make_pruner(t.pruner, cfg.training.epochs), load_if_exists=True)

    study = create()
    space_record = {d.key: [d.kind, d.low, d.high, d.log, d.step, list(d.choices)] for d in dims}
    base = base_record(cfg, dims, data_dir)
    settings = {"space": space_record, "objective": t.objective, "base": base}
    if (any(study.user_attrs.get(k) not in (None, v) for k, v in settings.items())
            and all(tr.state == optuna.trial.TrialState.FAIL for tr in study.trials)):
        # No trial of the study ever finished (its first start failed, e.g. on a mistyped --data_dir): it holds no
        # result to keep, and refusing the corrected settings would leave a study no command can resume. Its
        # direction is fixed at creation, so it is made again rather than given the new settings.
        optuna.delete_study(study_name=study_name, storage=store)
        study = create()
    if study.trials:
        study.sampler = make_sampler(t.sampler, resumed_seed(t.sampler, seed, len(study.trials)), t.population, total)
    stored = study.user_attrs.get("space")
    if stored is not None and stored != space_record:
        raise UsageError(f"study {study_name!r} in {url} was run with another search space; use another "
                         f"--study_name or --output_dir to start a new one")
    recorded = study.user_attrs.get("objective")
    if recorded is not None and recorded != t.objective:
        # Optuna keeps the study's first direction: trials scored the other way would be ranked as if they were
        # of the first objective, and the worst of them written as best_config.yaml.
        raise UsageError(f"objective {t.objective!r}: study {study_name!r} in {url} scores its trials by {recorded!r}; "
                         f"resume it with --objective {recorded}, or use another --study_name or --output_dir to "
                         "start a new one")
    ran_with = study.user_attrs.get("base")
    if ran_with is not None:
        changed = next((k for k in sorted(set(base) | set(ran_with)) if base.get(k) != ran_with.get(k)), None)
        if changed is not None:
            # The trials already stored were scored with the study's settings: trials scored on other data, or
            # with another epoch budget or model, would be ranked with them and the best written as best_config.yaml.
            raise UsageError(f"{changed} {base.get(changed)!r}: study {study_name!r} in {url} ran its trials with "
                             f"{changed} {ran_with.get(changed)!r}; resume it with the settings it ran with, or use "
                             "another --study_name or --output_dir to start a new one")
    if stored is None:
        study.set_user_attr("space", space_record)
        study.set_user_attr("objective", t.objective)
    if ran_with is None:
        study.set_user_attr("base", base)
    Finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    done = len(study.get_trials(deepcopy=False, states=Finished))

    def say(line: str, result: bool = False) -> None:
        # progress (the study, each trial) is hidden by --quiet; what the study chose and wrote is a result
        if echo is not None:
            echo(line)
        else:
            log.log(RESULT if result else logging.INFO, line)

    say(f"study {study_name!r} ({url}): sampler {t.sampler}, objective {t.objective} ({direction}), pruner "
        f"{t.pruner}; " + (f"{done} of {total} trials already finished" if done <= total else
                           f"{done} trials already finished, more than the {total} asked: none to run"))
    cache = _PreparedCache(data_dir)

    def objective(trial):
        values = {d.key: suggest(trial, d) for d in dims}
        try:
            tcfg = trial_config(cfg, values)  # an invalid combination (spinup >= seq_len) fails the trial
        except ConfigError as e:
            trial.set_user_attr("failed", str(e).split(": ", 1)[-1])  # the progress line says why
            raise

        def report(epoch, row):
            # the quantity the trial's value scores (objective_value): a pruned trial, valued by its last report,
            # is then ranked on the scale of the completed ones (the hindcast MSE was reported, the validation
            # loss of training_mixture scored, and a pruned trial looked better than every completed one)
            v = float(row["val_loss"] if t.objective == "val_loss" else row["val_nse_median"])
            if not math.isfinite(v):  # the weights diverged: no later epoch can recover a usable score
                raise diverged(f"validation {t.objective} {v} after epoch {epoch}")
            trial.report(v, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned after epoch {epoch}")

        def diverged(why: str):
            trial.set_user_attr("diverged", why)
            return optuna.TrialPruned(f"diverged: {why}")

        t0 = time.time()
        try:
            with tempfile.TemporaryDirectory(prefix="sca2lstm_trial_") as tmp:
                outcome = train_trial(tcfg, cache, device, Path(tmp), report)
        except TrainingError as e:  # too many non-finite batch losses in a row: this configuration diverges
            raise diverged(str(e)) from None
        best = next(r for r in outcome.history if r["epoch"] == outcome.best_epoch)
        trial.set_user_attr("seconds", round(time.time() - t0, 1))
        trial.set_user_attr("epochs", len(outcome.history) - 1)
        trial.set_user_attr("best_epoch", outcome.best_epoch)
        trial.set_user_attr("val_nse_median", best["val_nse_median"])
        if outcome.best_epoch == 0:
            # Its value would score the starting weights, not this configuration: a diverging learning rate
            # would tie with (or beat) the trials that trained, and could be written as best_config.yaml.
            if len(outcome.history) == 1:  # a searched training.epochs of 0
                raise diverged("no epoch trained (training.epochs 0): its value would score the starting weights")
            first = outcome.history[1]["val_loss"]
            raise diverged(f"no trained epoch beat the starting weights (validation loss {best['val_loss']:.4g} "
                           f"at epoch 0, {first:.4g} after epoch 1)")
        if on_trial is not None:
            on_trial(trial.number, outcome)
        return outcome.value

    def progress(study, ft):
        n = len(study.get_trials(deepcopy=False, states=Finished))
        vals = ", ".join(f"{k.split('.')[-1]}={_fmt(v)}" for k, v in ft.params.items())
        if ft.state == optuna.trial.TrialState.COMPLETE:
            what = f"{t.objective} {ft.value:.4f}"
        elif ft.state == optuna.trial.TrialState.FAIL and "failed" in ft.user_attrs:
            what = f"failed: {ft.user_attrs['failed']}"
        elif ft.state == optuna.trial.TrialState.PRUNED:
            why = ft.user_attrs.get("diverged")
            what = f"pruned, diverged: {why}" if why else f"pruned at epoch {ft.last_step}"
        else:
            what = ft.state.name.lower()
        try:
            best = f"best {study.best_value:.4f} (trial {study.best_trial.number})"
        except ValueError:
            best = "no finished trial yet"
        secs = ft.user_attrs.get("seconds")
        say(f"trial {ft.number} [{n}/{total}] {what} | {best} | {vals}" + (f" | {secs:.0f} s" if secs else ""))

    try:
        with _quiet_failed_trials():
            # A failed trial (an invalid combination of the searched keys) is not one of the `total` the study
            # holds: rounds run until that many have finished. One round in which none finished ends it (every
            # draw failed).
            while done < total:
                study.optimize(objective, n_trials=total - done, catch=(ConfigError,), gc_after_trial=True,
                               callbacks=[optuna.study.MaxTrialsCallback(total, states=Finished), progress])
                before, done = done, len(study.get_trials(deepcopy=False, states=Finished))
                if done == before:
                    log.warning(f"{done} of {total} trials finished: the last {total - before} failed; narrow "
                                "tune.space to valid combinations, or rerun to draw more")
                    break
    except KeyboardInterrupt:
        # Ctrl-C: the trials finished so far are in the study; its outputs show them now rather than after a rerun
        # (trials.csv and best_config.yaml were those of the previous run, or absent)
        completed = len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))
        if not completed:
            raise
        files = write_outputs(study, cfg, dims, out_dir, study_name, data_dir=data_dir)
        raise KeyboardInterrupt(f"{', '.join(p.name for p in files.values())} hold the {completed} trial(s) "
                                f"completed so far, in {out_dir}") from None
    files = write_outputs(study, cfg, dims, out_dir, study_name, data_dir=data_dir)
    best = study.best_trial
    say(f"best trial {best.number}: {t.objective} {best.value:.4f} | "
        + ", ".join(f"{k}={_fmt(v)}" for k, v in best.params.items()), result=True)
    say(f"wrote {', '.join(str(p) for p in files.values())}", result=True)
    return {"study": study, "best": best, "best_config": trial_config(cfg, best.params), "files": files}


class _DropFailedTrialRecords(logging.Filter):
    """Drops Optuna's 'Trial N failed ...' warnings: the progress line says why a trial failed, and an error that
    ends the study (Ctrl-C included) is one line from the command; Optuna's copy added a traceback to stderr."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno == logging.WARNING and record.getMessage().startswith("Trial ")
                    and " failed " in record.getMessage())


@contextlib.contextmanager
def _quiet_failed_trials():
    """:class:`_DropFailedTrialRecords` on the logger of Optuna's optimisation loop, for the ``with`` block."""
    logger = logging.getLogger("optuna.study._optimize")
    drop = _DropFailedTrialRecords()
    logger.addFilter(drop)
    try:
        yield
    finally:
        logger.removeFilter(drop)


def _fmt(v) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def write_outputs(study, cfg: Config, dims, out_dir: Path, study_name: str, data_dir=None) -> dict:
    """trials.csv, history.png and best_config.yaml of the study (rewritten from the stored study).

    ``best_config.yaml`` names the data folder the study ran on (``data_dir``, absolute; ``builtin`` where the
    config asked for the built-in basins by that name), and says that its ``training.epochs`` was each trial's budget, not an epoch count chosen by the study."""
    from ..evaluation.tuning_plots import plot_optimization_history
    optuna = require_optuna()

    out_dir.mkdir(parents=True, exist_ok=True)
    trials = study.get_trials(deepcopy=False)
    if not any(tr.state == optuna.trial.TrialState.COMPLETE for tr in trials):
        n_div = sum(1 for tr in trials if "diverged" in tr.user_attrs)
        n_ended = sum(1 for tr in trials if tr.state.is_finished())
        raise UsageError(f"study {study_name!r} has no completed trial yet; nothing to write"
                         + (f" ({n_div} of its {n_ended} finished trials diverged: narrow tune.space, e.g. its "
                            "learning rate range)" if n_div else ""))
    df = study.trials_dataframe()
    # which row best_config.yaml was made from, in the table itself (and the report's table of it)
    df.insert(1, "best", df["number"] == study.best_trial.number)
    files = {"trials": atomic_write_text(out_dir / "trials.csv", df.to_csv(index=False))}
    values = [tr.value if tr.value is not None else
              (tr.intermediate_values[tr.last_step] if tr.last_step is not None else math.nan) for tr in trials]
    objective = cfg.tune.objective
    files["history"] = plot_optimization_history(
        [tr.number for tr in trials], values,
        ["DIVERGED" if "diverged" in tr.user_attrs else tr.state.name for tr in trials], out_dir / "history.png",
        objective, minimize=study.direction == optuna.study.StudyDirection.MINIMIZE,
        title=f"Study {study_name}: {cfg.tune.sampler}, {len(trials)} trials")
    best = study.best_trial
    best_cfg = trial_config(cfg, best.params).to_dict()
    if data_dir is not None and best_cfg["data"].get("data_dir") != "builtin":
        # the folder the trials read, whatever named it (--data_dir and $SCA2LSTM_DATA_DIR beat the config's), and
        # absolute: the config's own may be another folder, or relative to where the study ran
        best_cfg["data"]["data_dir"] = str(Path(data_dir).expanduser().absolute())
    tune_section = best_cfg.pop("tune")
    header = (f"# The best trial ({best.number}) of study {study_name!r}: {objective} {best.value:.6g} on the "
              f"validation period,\n# sampler {tune_section['sampler']}. Searched: "
              + ", ".join(f"{k}={_fmt(v)}" for k, v in best.params.items())
              + "\n# Use it with --config (e.g. python sca2lstm.py --config best_config.yaml)."
              + ("" if "training.epochs" in best.params else
                 f"\n# training.epochs {best_cfg['training']['epochs']} was each trial's budget, not chosen by the "
                 "study: give the final training its own (e.g. --epochs 60).") + "\n")
    files["best_config"] = atomic_write_text(out_dir / "best_config.yaml",
                                             header + yaml.safe_dump(copy.deepcopy(best_cfg), sort_keys=False))
    return files
