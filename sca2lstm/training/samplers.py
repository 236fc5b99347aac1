"""Population samplers for Optuna: the sine-cosine algorithm (SCA) and particle swarm (PSO).

Both keep no state of their own: a trial's place in the population and its previous position are read
from the study (trial ``n`` is individual ``n % population`` of generation ``n // population``), so a
study stored in a file resumes, and several processes can share it, exactly as with Optuna's own
samplers. Each trial draws its random numbers from ``(seed, trial number)``: a resumed study repeats
the draws of an uninterrupted one.

Search space. Every parameter is mapped to a coordinate ``u`` in [0, 1]:

- a float: linearly, or on a log scale (``log=True``); a float with a ``step`` is rounded back to it;
- an integer: continuous relaxation on [low - 1/2, high + 1/2] (log scale if asked), rounded back to
  the step grid;
- a categorical of ``n`` choices: choice ``k`` covers [k/n, (k+1)/n); its position is the centre.

Moves leave [0, 1] now and then; they are reflected at the bound, then clipped (a reflection by more
than the width lands on the bound), so every suggestion lies in the declared range.

SCA (Mirjalili 2016, Knowledge-Based Systems 96:120-133). With ``X`` the individual's previous
position and ``P`` the destination (the best finished trial so far), each coordinate moves by::

    X + r1 * sin(r2) * |r3 * P - X|     if r4 < 0.5
    X + r1 * cos(r2) * |r3 * P - X|     otherwise

``r1 = a * (1 - t / T)`` falls linearly from ``a`` (2 in the paper) towards 0 over the ``T``
generations the trial budget allows (``t``: the generation): large ``r1`` explores (|r1 sin| > 1 steps
beyond the destination), small ``r1`` exploits. ``r2 ~ U(0, 2 pi)`` sets the direction and size of the
move, ``r3 ~ U(0, 2)`` weights the destination (above 1 it is emphasised), ``r4 ~ U(0, 1)`` switches
sine and cosine; all four are drawn per coordinate. Generation 0 is uniform random.

Selection: ``X`` is the individual's best finished position so far (greedy selection, its latest one
until it has a finished trial). Moving every individual from its latest position whatever it scored,
as the paper's pseudo-code does, behaved like random search on a 2-D quadratic (best of 200 trials
0.01-0.38 over 5 seeds, against 0.001-0.02 with greedy selection): the sine-cosine step has no mean
pull towards ``P``, only an amplitude set by the distance to it.

PSO (Kennedy and Eberhart 1995), the prototype's baseline, in the same frame: the velocity is the
individual's last displacement, and ``X + w v + c1 r1 (pbest - X) + c2 r2 (gbest - X)`` with inertia
``w = 0.7`` and ``c1 = c2 = 1.5``, ``r1, r2 ~ U(0, 1)`` per coordinate.
"""

from __future__ import annotations

import math
import zlib
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, IntDistribution
from optuna.samplers import BaseSampler
from optuna.search_space import IntersectionSearchSpace
from optuna.study import StudyDirection
from optuna.trial import TrialState


# ------------------------------------------------------------------ coordinates in [0, 1]
def _span(d: BaseDistribution) -> tuple[float, float, bool]:
    """(lo, hi, log) of the continuous coordinate of a numeric distribution."""
    if isinstance(d, IntDistribution):
        lo, hi = d.low - 0.5, d.high + 0.5
    else:
        lo, hi = d.low, d.high
    if d.log:
        return math.log(lo), math.log(hi), True
    return lo, hi, False


def encode(d: BaseDistribution, value: Any) -> float:
    """A parameter value as its coordinate in [0, 1]."""
    if isinstance(d, CategoricalDistribution):
        return (d.to_internal_repr(value) + 0.5) / len(d.choices)
    lo, hi, log = _span(d)
    v = math.log(value) if log else float(value)
    return float(np.clip((v - lo) / (hi - lo), 0.0, 1.0)) if hi > lo else 0.5


def decode(d: BaseDistribution, u: float) -> Any:
    """The parameter value at coordinate ``u`` (clipped to [0, 1]), inside the distribution."""
    u = float(np.clip(u, 0.0, 1.0))
    if isinstance(d, CategoricalDistribution):
        return d.choices[min(int(u * len(d.choices)), len(d.choices) - 1)]
    lo, hi, log = _span(d)
    v = lo + u * (hi - lo)
    v = math.exp(v) if log else v
    if isinstance(d, IntDistribution):
        k = round((v - d.low) / d.step)
        return int(min(max(d.low + k * d.step, d.low), d.high))
    if d.step is not None:
        k = round((v - d.low) / d.step)
        v = d.low + k * d.step
    return float(min(max(v, d.low), d.high))


def reflect(u: np.ndarray) -> np.ndarray:
    """Reflect coordinates that left [0, 1] back at the bound they crossed, then clip."""
    u = np.where(u < 0, -u, u)
    u = np.where(u > 1, 2 - u, u)
    return np.clip(u, 0.0, 1.0)


# ------------------------------------------------------------------ samplers
class PopulationSampler(BaseSampler):
    """Shared frame of :class:`SCASampler` and :class:`PSOSampler` (see the module's docstring).

    Parameters
    ----------
    population : int
        Individuals per generation (>= 2).
    n_trials : int
        The study's trial budget: it sets the number of generations ``T = ceil(n_trials / population)``
        over which the schedule runs.
    seed : int, optional
        Random draws come from ``(seed, trial number)``.
    """

    def __init__(self, population: int = 6, n_trials: int = 24, seed: int | None = None):
        if population < 2:
            raise ValueError(f"population={population} must be >= 2")
        self.population = int(population)
        self.n_trials = max(int(n_trials), 1)
        self.seed = 0 if seed is None else int(seed)
        self._space = IntersectionSearchSpace(include_pruned=True)

    @property
    def generations(self) -> int:
        return max(1, math.ceil(self.n_trials / self.population))

    def _rng(self, number: int, salt: str = "") -> np.random.Generator:
        return np.random.default_rng([self.seed, number, zlib.crc32(salt.encode())])

    def infer_relative_search_space(self, study, trial) -> dict[str, BaseDistribution]:
        return {k: d for k, d in self._space.calculate(study).items() if not d.single()}

    def sample_independent(self, study, trial, param_name, param_distribution) -> Any:
        """Uniform in the coordinate: generation 0, and any parameter the population has not seen."""
        return decode(param_distribution, self._rng(trial.number, param_name).random())

    def sample_relative(self, study, trial, search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        gen, ind = divmod(trial.number, self.population)
        if gen == 0 or not search_space:
            return {}
        names = sorted(search_space)
        trials = {t.number: t for t in study.get_trials(deepcopy=False)}

        def position(t) -> np.ndarray | None:
            if t is None or any(n not in t.params for n in names):
                return None
            return np.array([encode(search_space[n], t.params[n]) for n in names])

        # The individual's history, newest first (a trial of a parallel worker may not exist yet).
        own = [position(trials.get(g * self.population + ind)) for g in range(gen - 1, -1, -1)]
        own = [p for p in own if p is not None]
        sign = 1.0 if study.direction == StudyDirection.MINIMIZE else -1.0
        done = [t for t in trials.values() if t.state == TrialState.COMPLETE and position(t) is not None
                and t.value is not None and math.isfinite(t.value)]
        if not own or not done:
            return {}
        best = min(done, key=lambda t: sign * t.value)
        own_done = [t for t in done if t.number % self.population == ind]
        pbest = position(min(own_done, key=lambda t: sign * t.value)) if own_done else own[0]
        u = reflect(self.move(own, position(best), pbest, gen, self._rng(trial.number)))
        return {n: decode(search_space[n], float(v)) for n, v in zip(names, u)}

    def move(self, own: list[np.ndarray], best: np.ndarray, pbest: np.ndarray, gen: int,
             rng: np.random.Generator) -> np.ndarray:
        """The new position (may leave [0, 1]). ``own``: the individual's positions, newest first."""
        raise NotImplementedError


class SCASampler(PopulationSampler):
    """The sine-cosine algorithm as an Optuna sampler (module docstring: schedule and bounds).

    Parameters
    ----------
    a : float
        Start of the linearly falling amplitude ``r1`` (2 in Mirjalili 2016).
    """

    def __init__(self, population: int = 6, n_trials: int = 24, seed: int | None = None, a: float = 2.0):
        super().__init__(population, n_trials, seed)
        self.a = float(a)

    def r1(self, gen: int) -> float:
        """The amplitude of generation ``gen``: ``a`` at 0, falling linearly towards 0 at ``T``."""
        return self.a * (1.0 - gen / self.generations)

    def move(self, own, best, pbest, gen, rng):
        x = pbest  # greedy selection: move from the individual's best position
        r1 = self.r1(gen)
        r2 = rng.uniform(0.0, 2.0 * math.pi, x.shape)
        r3 = rng.uniform(0.0, 2.0, x.shape)
        r4 = rng.uniform(0.0, 1.0, x.shape)
        wave = np.where(r4 < 0.5, np.sin(r2), np.cos(r2))
        return x + r1 * wave * np.abs(r3 * best - x)


class PSOSampler(PopulationSampler):
    """Particle swarm optimisation in the same frame (the prototype's PSO-LSTM baseline)."""

    def __init__(self, population: int = 6, n_trials: int = 24, seed: int | None = None, inertia: float = 0.7,
                 c1: float = 1.5, c2: float = 1.5):
        super().__init__(population, n_trials, seed)
        self.inertia, self.c1, self.c2 = float(inertia), float(c1), float(c2)

    def move(self, own, best, pbest, gen, rng):
        x = own[0]
        v = own[0] - own[1] if len(own) > 1 else np.zeros_like(x)
        r1, r2 = rng.uniform(size=x.shape), rng.uniform(size=x.shape)
        return x + self.inertia * v + self.c1 * r1 * (pbest - x) + self.c2 * r2 * (best - x)


def make_sampler(name: str, seed: int | None = None, population: int = 6, n_trials: int = 24) -> BaseSampler:
    """``sca``, ``pso``, ``tpe`` (Optuna's TPESampler) or ``random`` (Optuna's RandomSampler)."""
    if name == "sca":
        return SCASampler(population, n_trials, seed)
    if name == "pso":
        return PSOSampler(population, n_trials, seed)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ValueError(f"unknown sampler {name!r}; choose from sca, tpe, random, pso")
