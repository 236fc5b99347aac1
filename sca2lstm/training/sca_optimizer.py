"""The gradient-guided sine-cosine optimiser (``training.optimizer: sca``) and the optimiser factory.

The research prototype offered a "gradient-guided SCA" in place of Adam. Written here from the
algorithm: at every step a small population of candidate weights is built around the current weights,
each the negative-gradient step mixed with a sine-cosine move (Mirjalili 2016), and the candidate with
the lowest loss on the same mini-batch is kept.

For each parameter tensor ``x`` with gradient ``g`` at step ``t``:

- ``d = -g / ||g||``, the unit descent direction of the tensor, and the destination ``P = x + lr d``;
- candidate 0 is ``P`` itself (the plain normalised-gradient step);
- candidate ``k = 1..K`` is ``x + w lr d + (1 - w) s_k`` with the SCA move
  ``s_k = r1 * wave(r2) * |r3 (P - x)|``, ``wave = sin`` if ``r4 < 0.5`` else ``cos``, drawn per
  element: ``r2 ~ U(0, 2 pi)``, ``r3 ~ U(0, 2)``, ``r4 ~ U(0, 1)``, and ``r1 = a (1 - t / T)``
  falling linearly from ``a`` to 0 over ``horizon`` steps (after it, only candidate 0 is left);
- the loss of each candidate is evaluated by the ``closure`` (forward only, same batch and same dropout
  masks) and the best is kept.

The SCA distance ``|r3 P - X|`` is taken in the frame centred on the current weights, ``|r3 (P - x)|``:
in absolute coordinates it would scale with the weights' distance from the origin, which has no meaning
for a network. ``w`` (``gradient_weight``) mixes the gradient and the sine-cosine move. Decoupled weight
decay as in AdamW. A step costs one backward and ``K + 1`` forward passes, which the equal-wall-time
comparison in docs/tuning.md accounts for.
"""

from __future__ import annotations

import math

import torch

OPTIMIZERS = ("adamw", "sca")


class GradientGuidedSCA(torch.optim.Optimizer):
    """Gradient-guided sine-cosine optimiser (module docstring).

    Parameters
    ----------
    params : iterable of tensors or param groups
    lr : float
        Length of the gradient step per parameter tensor (L2 norm).
    population : int
        SCA candidates ``K`` besides the plain gradient step.
    a : float
        Start of the amplitude ``r1``.
    gradient_weight : float
        ``w`` in [0, 1]: share of the gradient step in each SCA candidate.
    horizon : int
        Steps over which ``r1`` falls to 0.
    weight_decay : float
        Decoupled weight decay.
    """

    needs_closure = True  # the trainer passes a forward-only closure of the batch loss

    def __init__(self, params, lr: float = 1e-3, population: int = 4, a: float = 2.0, gradient_weight: float = 0.5,
                 horizon: int = 2000, weight_decay: float = 0.0):
        if lr <= 0 or population < 0 or not 0 <= gradient_weight <= 1 or horizon < 1 or weight_decay < 0:
            raise ValueError(f"GradientGuidedSCA: bad settings lr={lr}, population={population}, "
                             f"gradient_weight={gradient_weight}, horizon={horizon}, weight_decay={weight_decay}")
        super().__init__(params, dict(lr=lr, population=population, a=a, gradient_weight=gradient_weight,
                                      horizon=horizon, weight_decay=weight_decay))
        # Its own random stream: the closure replays the batch's dropout masks by resetting torch's
        # global generator, which would otherwise replay the candidates' draws too.
        self._gen = torch.Generator().manual_seed(int(torch.randint(0, 2**62, (1,))))

    def _rand(self, x: torch.Tensor) -> torch.Tensor:
        return torch.rand(x.shape, generator=self._gen, dtype=x.dtype).to(x.device)

    def _params(self):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    yield group, p

    @torch.no_grad()
    def step(self, closure=None):
        """One step. ``closure()`` returns the batch loss at the current weights (no backward needed);
        without it only the gradient step is taken."""
        items = list(self._params())
        if not items:
            return None
        start = [p.detach().clone() for _, p in items]
        grad_step = []
        for (group, p), x in zip(items, start):
            st = self.state[p]
            st["step"] = st.get("step", 0) + 1
            if group["weight_decay"]:
                x.mul_(1 - group["lr"] * group["weight_decay"])
            g = p.grad
            norm = torch.linalg.vector_norm(g)
            d = -g / norm if float(norm) > 0 else torch.zeros_like(g)
            grad_step.append(group["lr"] * d)  # P - x
        group0 = self.param_groups[0]
        t = self.state[items[0][1]]["step"]
        r1 = group0["a"] * max(0.0, 1.0 - t / group0["horizon"])
        K = group0["population"] if (closure is not None and r1 > 0) else 0

        def put(k: int) -> None:
            w = group0["gradient_weight"]
            for (_, p), x, step in zip(items, start, grad_step):
                if k == 0:
                    p.copy_(x + step)
                    continue
                r2 = self._rand(x) * (2 * math.pi)
                r3 = self._rand(x) * 2
                wave = torch.where(self._rand(x) < 0.5, torch.sin(r2), torch.cos(r2))
                p.copy_(x + w * step + (1 - w) * r1 * wave * (r3 * step).abs())

        if K == 0:
            put(0)
            return None
        best_k, best_loss = 0, math.inf
        kept = None
        for k in range(K + 1):
            put(k)
            loss = float(closure())
            if math.isfinite(loss) and loss < best_loss:
                best_k, best_loss = k, loss
                kept = [p.detach().clone() for _, p in items]
        if kept is None:  # every candidate non-finite: take the gradient step
            put(0)
        else:
            for (_, p), v in zip(items, kept):
                p.copy_(v)
        for _, p in items:
            self.state[p]["last_candidate"] = best_k
        return best_loss


def make_optimizer(name: str, params, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """``adamw`` (the default) or ``sca`` (:class:`GradientGuidedSCA`)."""
    params = list(params)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if name == "sca":
        return GradientGuidedSCA(params, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}; choose from {', '.join(OPTIMIZERS)}")
