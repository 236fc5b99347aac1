"""What a command loads before it needs it: a forecast is often run as a whole process per station (a morning
script over many gauges), so a library imported at the top of a module on its path but used only by other
commands, or only later, is paid by every run. Each check runs in a fresh interpreter and reads
``sys.modules``."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import REPO


def loaded(code: str, names) -> list:
    """Which of ``names`` a fresh interpreter has imported after running ``code``."""
    probe = f"{code}\nimport sys; print(sorted(m for m in {tuple(names)!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True)
    return eval(out.stdout.strip().splitlines()[-1])


def test_the_forecast_command_and_its_options_load_no_scipy():
    # `sca2lstm forecast --help` and the parser a forecast starts with: scipy.stats alone took half a second, for
    # the gev/pe3 level fits that only some stations use.
    code = "from sca2lstm.cli import forecast; forecast.build_parser()"
    assert loaded(code, ["scipy"]) == []


def test_return_period_levels_of_the_default_distribution_load_no_scipy():
    # Every forecast fits its station's glo levels (bootstrap included); that fit is numpy only, and scipy is
    # imported for the gev and pe3 fits that need it.
    code = ("import numpy as np; from sca2lstm.evaluation import levels\n"
            "x = np.random.default_rng(0).gamma(3.0, 10.0, 30)\n"
            "assert set(levels.fit_return_levels(x, 'glo')) == {'q2y', 'q5y', 'q10y', 'q20y'}")
    assert loaded(code, ["scipy"]) == []
    assert loaded(code + "\nlevels.fit_return_levels(x, 'pe3')", ["scipy"]) == ["scipy"]


def test_reading_weather_files_loads_no_http_client():
    # Every forecast imports the weather-file readers (a saved Open-Meteo answer is one of the files it takes);
    # httpx is for fetching and is imported where a request is made.
    assert loaded("import sca2lstm.weather.files, sca2lstm.evaluation.operational", ["httpx"]) == []


@pytest.mark.slow
def test_a_whole_forecast_loads_no_library_only_other_commands_use(pretrained_ckpt, tiny_data_dir, tmp_path):
    # The service (fastapi, uvicorn), tuning (optuna), station import (openpyxl), fetching (httpx) and the
    # gev/pe3 fits (scipy) each cost a forecast time to import, for nothing it does.
    code = ("from sca2lstm.cli.main import main\n"
            f"assert main(['forecast', '--model', {str(pretrained_ckpt)!r}, '--basin', '32006', '--data_dir', "
            f"{str(tiny_data_dir)!r}, '--issue_date', '1976-06-15', '--output_dir', {str(tmp_path)!r}, '--quiet']) == 0")
    others = ["scipy", "httpx", "fastapi", "uvicorn", "starlette", "optuna", "openpyxl"]
    assert loaded(code, others) == []
    assert (tmp_path / "basin_32006_issued_1976-06-15" / "forecast.csv").is_file()


def test_verifying_a_reforecast_table_loads_no_torch():
    # `sca2lstm verify` scores a table of numbers (CRPS, coverage, PIT, warnings): it reads quantile columns through
    # evaluation.exceedance, which is numpy only, and torch's second or more of import is paid for nothing.
    assert loaded("import sca2lstm.evaluation.verify, sca2lstm.cli.verify", ["torch"]) == []
