"""Shared fixtures: tiny synthetic basins, a tiny config, and a session-wide pretrained checkpoint.

Everything runs in-process on a few short basins with fixed seeds. Caches go to a temporary folder
(never ~/.cache or ../shared), and the data location variables of the user's shell are ignored.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_CAMELS = REPO.parent / "shared" / "data" / "camels_gb"

TINY_PERIODS = {"train_start": "1971-01-01", "train_end": "1974-12-31", "val_start": "1975-01-01",
                "val_end": "1975-12-31", "test_start": "1976-01-01", "test_end": "1976-12-31"}
TINY_TRAINING = {"seq_len": 60, "spinup": 20, "epochs": 2, "batch_size": 8, "epoch_coverage": 0.5,
                 "learning_rate": 0.005}
TINY_MODEL = {"hidden_size": 16, "attention_hidden_size": 8, "embedding_size": 4}


@pytest.fixture(scope="session", autouse=True)
def _isolated_env(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    old = {k: os.environ.get(k) for k in ("SCA2LSTM_CACHE_DIR", "SCA2LSTM_DATA_DIR", "MPLBACKEND",
                                          "SCA2LSTM_NATIVE_DIR")}
    # The C++ recurrence is built where the package itself keeps it ($SCA2LSTM_NATIVE_DIR, else the
    # user's cache folder, read before it is redirected below): the build is named by a hash of its
    # source and torch version, so it is reused across sessions and checkouts, and only the first run on
    # a machine pays the ~30 s compile. It is made here up front, for the whole session (subprocesses
    # inherit the variable), so that no timed test pays for the compiler. Everything else the tests
    # write goes to the session's temporary cache.
    from sca2lstm.fileio import default_cache_root
    os.environ["SCA2LSTM_NATIVE_DIR"] = old["SCA2LSTM_NATIVE_DIR"] or str(default_cache_root() / "native")
    os.environ["SCA2LSTM_CACHE_DIR"] = str(cache)
    os.environ.pop("SCA2LSTM_DATA_DIR", None)
    os.environ["MPLBACKEND"] = "Agg"
    # The tiny test models are far faster on one thread: small ops do not pay for thread hand-offs.
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    from sca2lstm.models import native
    native.get()
    yield
    torch.set_num_threads(threads)
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory) -> Path:
    """Three synthetic basins (32006, 10002, 10003), 1970-10-01..1977-12-31, seed 7."""
    from sca2lstm.data.synthetic import generate_synthetic

    d = tmp_path_factory.mktemp("tiny") / "camels"
    generate_synthetic(d, n_basins=3, seed=7, end="1977-12-31")
    return d


def make_tiny_config(data_dir, **sections):
    from sca2lstm.config import load_config

    over = {"data": {"data_dir": str(data_dir), **TINY_PERIODS}, "training": dict(TINY_TRAINING),
            "model": dict(TINY_MODEL)}
    for k, v in sections.items():
        over.setdefault(k, {}).update(v)
    return load_config(overrides=over)


@pytest.fixture(scope="session")
def tiny_cfg(tiny_data_dir):
    return make_tiny_config(tiny_data_dir)


@pytest.fixture(scope="session")
def pretrained_ckpt(tiny_cfg, tiny_data_dir, tmp_path_factory) -> Path:
    """A checkpoint pretrained for 2 epochs on the tiny basins (tiny model sizes)."""
    from sca2lstm.training.pretrain import pretrain

    out = tmp_path_factory.mktemp("pretrained") / "sca2lstm.pth"
    pretrain(tiny_cfg, out, data_dir=tiny_data_dir, progress=False)
    return out


@pytest.fixture()
def shared_camels() -> Path:
    if not (SHARED_CAMELS / "timeseries").is_dir():
        pytest.skip(f"the CAMELS-GB sample is not at {SHARED_CAMELS}")
    return SHARED_CAMELS
