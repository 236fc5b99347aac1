"""The typed configuration: defaults, the working-directory file, and validation at load."""

from __future__ import annotations

import pydantic
import pytest
import yaml

from sca2lstm.config import DEFAULT_CONFIG_PATH, Config, load_config
from sca2lstm.errors import ConfigError


def write_yaml(path, data) -> str:
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data, encoding="utf-8")
    return str(path)


@pytest.fixture()
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_load_config_without_argument_gives_the_defaults(in_tmp):
    cfg = load_config()
    with open(DEFAULT_CONFIG_PATH, encoding="utf-8") as f:
        raw = yaml.safe_load(f)
    d = cfg.to_dict()
    for section, values in raw.items():
        for key, value in values.items():
            assert d[section][key] == value, f"{section}.{key}"
    assert cfg.training.seq_len == 270 and cfg.training.spinup == 90 and cfg.training.epochs == 60
    f = cfg.finetune_training()
    assert (f.epochs, f.batch_size, f.learning_rate, f.weight_decay, f.patience, cfg.finetune.fine_tune_ratio) == \
        (20, 16, 1e-4, 1e-5, 8, 0.8)
    assert cfg.data.data_dir is None and cfg.data.cache_dir is None
    assert cfg == Config.from_dict({})


def test_sca2lstm_yaml_in_the_working_directory_is_picked_up(in_tmp):
    write_yaml(in_tmp / "sca2lstm.yaml", {"training": {"epochs": 3}, "model": {"hidden_size": 8}})
    cfg = load_config()
    assert cfg.training.epochs == 3 and cfg.model.hidden_size == 8
    assert cfg.training.seq_len == 270  # a partial file overrides only the keys it names
    # an explicit path wins over the working-directory file; overrides win over both
    other = write_yaml(in_tmp / "other.yaml", {"training": {"epochs": 5}})
    assert load_config(other).training.epochs == 5
    assert load_config(other, overrides={"training": {"epochs": 9}}).training.epochs == 9


def test_empty_file_means_defaults(in_tmp):
    assert load_config(write_yaml(in_tmp / "empty.yaml", "")) == Config.from_dict({})


def test_missing_file_is_a_config_error(in_tmp):
    with pytest.raises(ConfigError, match="nope.yaml"):
        load_config(in_tmp / "nope.yaml")


@pytest.mark.parametrize("content, expected", [
    (b"training:\n\tepochs: 3\n", "c.yaml is not valid YAML: found character '\\t' that cannot start any token "
                                   "(line 2, column 1); indent with spaces, not tabs"),
    (b"training: {epochs: [3\n", "c.yaml is not valid YAML: expected ',' or ']', but got '<stream end>' (line 2"),
    (b"training:\n  epochs: 3 # r\xe9glage\n", "c.yaml is not UTF-8 text (byte 0xe9 at offset 25); save it as UTF-8"),
    (None, "c.yaml is a folder; expected a YAML file"),
])
def test_unreadable_config_file_says_what_and_where_in_one_line(in_tmp, content, expected):
    path = in_tmp / "c.yaml"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert expected in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("data, named", [
    ({"training": {"epoch": 3}}, "training.epoch"),
    ({"model": {"hidden": 3}}, "model.hidden"),
    ({"trainig": {"epochs": 3}}, "trainig"),
    ({"predict": {}}, "predict"),
])
def test_unknown_keys_and_sections_are_named(in_tmp, data, named):
    with pytest.raises(ConfigError) as e:
        load_config(write_yaml(in_tmp / "c.yaml", data))
    msg = str(e.value)
    assert named in msg and "allowed" in msg and "\n" not in msg
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        Config.from_dict(data)


@pytest.mark.parametrize("section, key, value, allowed", [
    ("training", "seq_len", 1, ">= 2"),
    ("training", "seq_len", 0, ">= 2"),
    ("model", "dropout", 1.0, "[0, 1)"),
    ("model", "dropout", -0.1, "[0, 1)"),
    ("training", "discharge_dropout", 1.0, "[0, 1)"),
    ("finetune", "fine_tune_ratio", 1.5, "(0, 1)"),
    ("finetune", "fine_tune_ratio", 0.0, "(0, 1)"),
    ("training", "epochs", -1, ">= 0"),
    ("finetune", "epochs", -1, ">= 0"),
    ("training", "batch_size", 0, ">= 1"),
    ("training", "learning_rate", 0.0, "> 0"),
    ("data", "lead_days", 0, ">= 1"),
    ("data", "ssi_window", 0, "[1, 365]"),
    ("data", "ssi_window", 366, "[1, 365]"),
    ("data", "target", "discharge_spec", "discharge_vol"),
    ("data", "pet_from_temperature", "sometimes", "missing, always, never"),
    ("training", "windows_per_epoch", 0, "null or an integer >= 1"),
    ("finetune", "learning_rate", -1.0, "> 0"),
    ("training", "device", "tpu", "auto, cpu, cuda"),
    # seeds NumPy (negative) or torch (beyond 64 bits) refuse: a traceback after the data was read, before
    ("training", "seed", -1, "an integer in [0, 9007199254740991]"),
    ("training", "seed", 2 ** 53, "an integer in [0, 9007199254740991]"),
    ("data", "synthetic_seed", -1, "an integer in [0, 9007199254740991]"),
])
def test_out_of_range_values_name_key_and_range(in_tmp, section, key, value, allowed):
    with pytest.raises(ConfigError) as e:
        load_config(write_yaml(in_tmp / "c.yaml", {section: {key: value}}))
    msg = str(e.value)
    assert f"{section}.{key}" in msg and allowed in msg and "c.yaml" in msg and "\n" not in msg


@pytest.mark.parametrize("key, values", [("dynamic_inputs", ["precipitation", "temperature", "precipitation"]),
                                         ("static_attributes", ["area", "area"])])
def test_an_input_named_twice_is_refused_naming_it(in_tmp, key, values):
    """A repeated dynamic input trained on two columns of the same series without a word; a repeated static
    attribute ended the data preparation in an AttributeError traceback."""
    with pytest.raises(ConfigError) as e:
        load_config(write_yaml(in_tmp / "c.yaml", {"data": {key: values}}))
    assert str(e.value) == f"{in_tmp / 'c.yaml'}: data.{key} lists {values[-1]!r} twice; name each input once"


def test_an_empty_basin_list_is_refused_rather_than_read_as_every_basin(in_tmp):
    """data.basins: [] trained on every basin of the folder (null's meaning) without a word."""
    with pytest.raises(ConfigError) as e:
        load_config(write_yaml(in_tmp / "c.yaml", {"data": {"basins": []}}))
    assert str(e.value).endswith("c.yaml: data.basins must name at least one value, or be null")


def test_a_checkpoint_whose_config_has_an_empty_basin_list_still_loads(pretrained_ckpt, tmp_path):
    """A model trained before [] was refused stored it, meaning every basin: it loads as null."""
    import torch

    from sca2lstm.checkpoint import load_model

    ck = torch.load(pretrained_ckpt, weights_only=True)
    ck["config"]["data"]["basins"] = []
    old = tmp_path / "old.pth"
    torch.save(ck, old)
    assert load_model(old)[1].data.basins is None


def test_spinup_must_be_below_seq_len():
    with pytest.raises(ConfigError, match=r"training\.spinup=60.*training\.seq_len=60"):
        Config.from_dict({"training": {"seq_len": 60, "spinup": 60}})
    with pytest.raises(ConfigError, match=r"training\.spinup"):
        Config.from_dict({"training": {"seq_len": 60, "spinup": 61}})
    # the smallest scored part leaves room for the lead (data.lead_days < seq_len - spinup)
    assert Config.from_dict({"training": {"seq_len": 60, "spinup": 58}}).predict_steps == 2


@pytest.mark.parametrize("update, named", [
    ({"train_start": "2000-13-01"}, "data.train_start"),
    ({"test_end": "yesterday"}, "data.test_end"),
    ({"val_start": "2001-01-01", "val_end": "2000-12-31"}, "data.val_start"),
    ({"train_end": "2001-01-01"}, "data.train_end"),  # overlaps validation (starts 2000-10-01)
    ({"val_end": "2005-10-01"}, "data.val_end"),  # overlaps test (starts 2005-10-01)
    ({"test_start": "2000-01-01", "test_end": "2001-01-01"}, "data.val_end"),  # test before validation
])
def test_bad_dates_and_overlapping_periods(update, named):
    with pytest.raises(ConfigError) as e:
        Config.from_dict({"data": update})
    assert named in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("text, expected", [
    ("training:\n  epochs: 3\n  epochs: 4\n", "key 'epochs' is given twice (lines 2 and 3); keep one"),
    ("training:\n  epochs: 3\nmodel:\n  hidden_size: 8\ntraining:\n  batch_size: 4\n",
     "key 'training' is given twice (lines 1 and 5); keep one"),
])
def test_a_key_given_twice_is_refused_not_silently_the_last(in_tmp, text, expected):
    with pytest.raises(ConfigError) as e:
        load_config(write_yaml(in_tmp / "c.yaml", text))
    assert "c.yaml" in str(e.value) and expected in str(e.value) and "\n" not in str(e.value)


def test_yaml_dates_unquoted_are_accepted(in_tmp):
    path = write_yaml(in_tmp / "c.yaml", "data:\n  train_start: 1980-10-01\n")
    assert load_config(path).data.train_start == "1980-10-01"


@pytest.mark.parametrize("text", ["1971-13-01", "1971-02-30"])
def test_an_unquoted_impossible_date_is_named_not_a_traceback(in_tmp, text):
    path = write_yaml(in_tmp / "c.yaml", f"data:\n  train_start: {text}\n")
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert f"data.train_start='{text}' is not a date; expected YYYY-MM-DD" in str(e.value)


@pytest.mark.parametrize("section, key, value, expected", [
    ("training", "seq_len", "abc", "integer"),
    ("training", "seq_len", 270.5, "integer"),
    ("training", "epochs", True, "integer"),
    ("model", "dropout", "lots", "number"),
    ("model", "dropout", [0.1], "number"),
    ("data", "derived_features", "yes", "true or false"),
    ("data", "derived_features", 1, "true or false"),
    ("data", "dynamic_inputs", "precipitation", "list"),
    ("training", "seed", None, "null"),
    ("training", "grad_clip", float("inf"), "finite"),  # YAML .inf
    ("tune", "space", [1, 2], "tune.space=[1, 2] must be a mapping of key: value lines"),  # was pydantic's text
])
def test_wrong_types_are_rejected(section, key, value, expected):
    with pytest.raises(ConfigError) as e:
        Config.from_dict({section: {key: value}})
    assert f"{section}.{key}" in str(e.value) and expected in str(e.value)


def test_section_must_be_a_mapping(in_tmp):
    with pytest.raises(ConfigError, match="training"):
        load_config(write_yaml(in_tmp / "c.yaml", "training: 5\n"))
    with pytest.raises(ConfigError, match="mapping"):
        load_config(write_yaml(in_tmp / "c.yaml", "- a\n- b\n"))


def test_unknown_dynamic_input_is_named():
    with pytest.raises(ConfigError, match="rainfall"):
        Config.from_dict({"data": {"dynamic_inputs": ["precipitation", "rainfall"]}})


def test_exponent_notation_from_yaml_is_a_number(in_tmp):
    # PyYAML reads 1e-3 (no dot) as a string; a float setting accepts it
    cfg = load_config(write_yaml(in_tmp / "c.yaml", "training:\n  learning_rate: 1e-3\n"))
    assert cfg.training.learning_rate == 0.001


def test_yaml_is_parsed_safely(in_tmp):
    marker = in_tmp / "pwned"
    text = f"training: !!python/object/apply:os.system ['touch {marker}']\n"
    with pytest.raises(ConfigError) as e:
        load_config(write_yaml(in_tmp / "evil.yaml", text))
    assert "evil.yaml" in str(e.value) and "YAML" in str(e.value)
    assert not marker.exists()
    text = "model: !!python/object:sca2lstm.config.ModelConfig {hidden_size: 3}\n"
    with pytest.raises(ConfigError):
        load_config(write_yaml(in_tmp / "evil2.yaml", text))
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write_yaml(in_tmp / "broken.yaml", "training: [unclosed\n"))


def _plain(v) -> bool:
    if isinstance(v, dict):
        return all(isinstance(k, str) and _plain(x) for k, x in v.items())
    if isinstance(v, list):
        return all(_plain(x) for x in v)
    return v is None or type(v) in (str, int, float, bool)


def test_to_dict_round_trips_and_is_plain():
    cfg = Config.from_dict({"training": {"epochs": 3, "learning_rate": 0.01},
                            "data": {"basins": ["32006", 10002], "train_start": "1980-10-01"}})
    d = cfg.to_dict()
    assert _plain(d) and set(d) == {"data", "model", "training", "finetune", "tune"}
    assert d["data"]["basins"] == ["32006", "10002"]
    back = Config.from_dict(d)
    assert back == cfg and back.to_dict() == d
    assert yaml.safe_load(yaml.safe_dump(d)) == d
    # replace() validates too
    assert cfg.replace(training={"epochs": 4}).training.epochs == 4
    with pytest.raises(ConfigError, match="training.epochs"):
        cfg.replace(training={"epochs": -4})
    with pytest.raises(pydantic.ValidationError):  # sections are immutable: replace() is the one validated way to change them
        cfg.training.epochs = 5


def test_finetune_trains_with_training_settings_except_the_keys_it_names():
    cfg = Config.from_dict({"training": {"grad_clip": 0.5, "lr_factor": 0.3, "epochs": 50},
                            "finetune": {"epochs": 7}})
    ft = cfg.finetune_training()
    assert ft.epochs == 7 and cfg.training.epochs == 50  # named in finetune: its own value
    assert ft.grad_clip == 0.5 and ft.lr_factor == 0.3  # not named: the training value
    assert (ft.batch_size, ft.learning_rate, ft.epoch_coverage) == (16, 1e-4, 4.0)  # the guide's defaults
    # Pretraining's epoch size never leaks into fine-tuning: the default section resets it to the coverage rule.
    big = Config.from_dict({"training": {"windows_per_epoch": 8192}})
    assert big.finetune_training().windows_per_epoch is None
    # A checkpoint's stored config round-trips with its finetune overrides.
    assert Config.from_dict(cfg.to_dict()).finetune_training() == ft


@pytest.mark.parametrize("key", ["seq_len", "spinup", "seed", "hidden_size", "epoch"])
def test_finetune_refuses_keys_it_cannot_override(key):
    with pytest.raises(ConfigError) as e:
        Config.from_dict({"finetune": {key: 3}})
    msg = str(e.value)
    assert f"unknown key finetune.{key}" in msg and "allowed keys" in msg and "fine_tune_ratio" in msg
    assert "\n" not in msg


@pytest.mark.parametrize("fraction", [0.2, 0.5])
def test_station_test_fraction_sets_a_stations_test_part(tiny_data_dir, fraction):
    """A record outside the configured periods keeps its last ``data.station_test_fraction`` of observed
    days for the test; the days before it are for fine-tuning."""
    import numpy as np

    from conftest import make_tiny_config
    from sca2lstm.data.dataset import load_basin
    from sca2lstm.data.periods import basin_periods

    outside = {"train_start": "1990-01-01", "train_end": "1993-12-31", "val_start": "1994-01-01",
               "val_end": "1994-12-31", "test_start": "1995-01-01", "test_end": "1995-12-31",
               "station_test_fraction": fraction}
    cfg = make_tiny_config(tiny_data_dir, data=outside)
    rec = load_basin(tiny_data_dir, "32006", cfg)
    p = basin_periods(rec, cfg)
    obs = rec.dates[np.isfinite(rec.y)]
    n_test = int((obs >= p.test_start).sum())
    assert p.rule == "station" and p.fit_end == p.test_start - np.timedelta64(1, "D")
    assert n_test == len(obs) - int(np.ceil(len(obs) * (1 - fraction)))
