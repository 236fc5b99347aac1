"""The Chinese guide (docs/zh/README.md) stays in step with the command line: every command in its
bash blocks parses with today's parsers (nothing runs), and the README links to it in its first lines."""

from __future__ import annotations

import importlib
import re
import shlex

import pytest

from conftest import REPO

GUIDE = REPO / "docs" / "zh" / "README.md"
# How each command of the guide reaches its parser: root scripts, then `sca2lstm <subcommand>`.
SCRIPTS = {"sca2lstm.py": "sca2lstm.cli.train", "fine_train.py": "sca2lstm.cli.finetune",
           "predict.py": "sca2lstm.cli.predict"}


def guide_commands() -> list[str]:
    """Every command line of the guide's ```bash blocks (continuations joined, comments dropped)."""
    text = GUIDE.read_text(encoding="utf-8")
    out = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        out += [line.strip() for line in joined.splitlines() if line.strip() and not line.strip().startswith("#")]
    return out


def parser_and_argv(command: str):
    argv = shlex.split(command)
    if argv[0] == "python" and argv[1] in SCRIPTS:
        return importlib.import_module(SCRIPTS[argv[1]]).build_parser(), argv[2:]
    if argv[0] == "sca2lstm":
        from sca2lstm.cli.main import SUBCOMMANDS

        assert argv[1] in SUBCOMMANDS, f"unknown subcommand in the guide: {command}"
        return importlib.import_module(SUBCOMMANDS[argv[1]][0]).build_parser(), argv[2:]
    return None, argv


COMMANDS = guide_commands()


def test_the_guide_has_the_commands_it_promises():
    text = " ".join(COMMANDS)
    for needle in ("python sca2lstm.py --epochs 60 --parallel", "station import", "--map", "--sheet", "--day_start 08:00", "--rating", "--precipitation_weights", "--levels_in stage",
                   "sca2lstm forecast", "sca2lstm serve"):
        assert needle in text, needle


@pytest.mark.parametrize("command", COMMANDS)
def test_every_guide_command_parses_with_todays_cli(command):
    parser, argv = parser_and_argv(command)
    if parser is None:
        assert argv[0] in ("pip",), f"a command the test cannot check: {command}"
        return
    try:
        parser.parse_args(argv)
    except SystemExit as e:
        pytest.fail(f"the guide's command no longer parses (exit {e.code}): {command}")


def test_readme_links_to_the_chinese_guide_in_its_first_lines():
    head = (REPO / "README.md").read_text(encoding="utf-8").splitlines()[:6]
    assert any("docs/zh/README.md" in line for line in head)
