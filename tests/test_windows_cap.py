"""training.max_windows_per_epoch: a cap on the coverage rule, drawn the fair way above it."""

import numpy as np

from sca2lstm.data.dataset import SequenceData


def _draw(periods, **kw):
    rng = np.random.default_rng(0)
    return SequenceData.training_windows(None, periods, 270, 90, 1.0, rng, **kw)


def test_cap_applies_only_above_the_coverage_count():
    few = [(0, 3600)] * 3                      # 3 x 20 windows by coverage
    b, _ = _draw(few, max_windows=100)
    assert len(b) == 60                        # under the cap: the coverage rule, unchanged
    many = [(0, 3600)] * 40                    # 800 windows by coverage
    b, _ = _draw(many, max_windows=100)
    assert len(b) == 100
    counts = np.bincount(b, minlength=40)
    assert counts.max() - counts.min() <= 1    # fair: every basin 2 or 3 windows


def test_no_cap_is_the_coverage_rule():
    b, _ = _draw([(0, 3600)] * 40, max_windows=None)
    assert len(b) == 800
