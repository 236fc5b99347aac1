"""The benchmark harness imports and its speed section runs (tiny sizes; no timing assertions)."""

import importlib.util
import os
import sys

from conftest import REPO, make_tiny_config


def _load_harness():
    spec = importlib.util.spec_from_file_location("run_benchmarks", REPO / "bench" / "run_benchmarks.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def test_speed_section_gives_positive_rates(tiny_data_dir):
    bench = _load_harness()
    assert set(bench.SECTIONS) == {"accuracy", "loo", "speed", "predict", "ddp", "memory"}
    df = bench.bench_speed(make_tiny_config(tiny_data_dir), reps=1, warmup=0, batch=2, seq_len=12)
    assert {"SCA2LSTM", "SCA2LSTM, Python loops", "LSTMBaseline"} <= set(df["model"])
    assert "SCA2LSTM_NATIVE" not in os.environ               # the Python-loops row restored the setting
    assert set(df["precision"]) == {"fp32", "bf16 autocast"}
    ran = df[df["note"] == ""]  # bf16 rows may be marked unsupported (oneDNN bf16 LSTM needs AVX-512)
    assert set(ran.loc[ran["precision"] == "fp32", "model"]) >= {"SCA2LSTM", "LSTMBaseline"}
    for col in ("train_samples_s", "infer_samples_s", "train_vs_SCA2LSTM", "infer_vs_SCA2LSTM"):
        assert (ran[col] > 0).all(), df
