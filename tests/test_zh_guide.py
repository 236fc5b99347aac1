"""The guides stay in step with the command line: every command in the bash blocks of the Chinese guide
(docs/zh/README.md), the user's guide beside the checkout (../shared/docs/fine_tune_guide.zh.md), the README
and docs/*.md parses with today's parsers and is valid bash (nothing runs), and the README links to the Chinese guide in its
first lines."""

from __future__ import annotations

import importlib
import re
import shlex
import shutil
import subprocess

import pytest

from conftest import REPO

GUIDE = REPO / "docs" / "zh" / "README.md"
#: Every document whose commands a user copies (the user's guide only where ../shared is beside the checkout).
DOCUMENTS = [GUIDE, REPO / "README.md", *sorted((REPO / "docs").glob("*.md")),
             *[p for p in [REPO.parent / "shared" / "docs" / "fine_tune_guide.zh.md"] if p.is_file()]]
# How each command of the guide reaches its parser: root scripts, then `sca2lstm <subcommand>`.
SCRIPTS = {"sca2lstm.py": "sca2lstm.cli.train", "fine_train.py": "sca2lstm.cli.finetune",
           "predict.py": "sca2lstm.cli.predict"}


def guide_commands(path=GUIDE) -> list[str]:
    """Every command line of a document's ```bash blocks (continuations joined, comments dropped)."""
    text = path.read_text(encoding="utf-8")
    out = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        lines = (re.split(r"\s+#\s", line, maxsplit=1)[0].strip() for line in joined.splitlines())
        out += [line for line in lines if line and not line.startswith("#")]
    return out


def as_written(command: str) -> str:
    """A documented command with its optional parts taken: ``[--flag V]`` -> ``--flag V``, ``a|b`` -> ``a``."""
    command = command.replace("[", " ").replace("]", " ")
    return re.sub(r"(\S+?)\|\S+", r"\1", command)


def parser_and_argv(command: str):
    argv = shlex.split(as_written(command))
    while argv and re.fullmatch(r"[A-Z_]+=\S*", argv[0]):  # an environment assignment before the command
        argv = argv[1:]
    if argv[:3] == ["python", "-m", "sca2lstm"]:
        argv = ["sca2lstm", *argv[3:]]
    if argv[0] == "python" and argv[1] in SCRIPTS:
        return importlib.import_module(SCRIPTS[argv[1]]).build_parser(), argv[2:]
    if argv[0] == "sca2lstm":
        from sca2lstm.cli.main import SUBCOMMANDS

        assert argv[1] in SUBCOMMANDS, f"unknown subcommand in the guide: {command}"
        return importlib.import_module(SUBCOMMANDS[argv[1]][0]).build_parser(), argv[2:]
    return None, argv


COMMANDS = guide_commands()
DOCUMENTED = [(p.relative_to(REPO.parent).as_posix(), c) for p in DOCUMENTS for c in guide_commands(p)]


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


@pytest.mark.parametrize("document, command", DOCUMENTED)
def test_every_documented_command_parses_with_todays_cli(document, command):
    parser, argv = parser_and_argv(command)
    if parser is None:  # pip, cd, a benchmark script: nothing of the CLI's to check
        return
    try:
        parser.parse_args([a for a in argv if a != "..."])
    except SystemExit as e:
        pytest.fail(f"{document}: a documented command no longer parses (exit {e.code}): {command}")


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash to check the documented commands' syntax")
@pytest.mark.parametrize("document, command", DOCUMENTED)
def test_every_documented_command_is_valid_shell(document, command):
    # The parsers above get the words shlex makes; a user's shell gets the line: an unquoted '(' (--map
    # stage=水位(m)) is a bash syntax error before any sca2lstm code runs.
    r = subprocess.run(["bash", "-n", "-c", command], capture_output=True, text=True)
    assert r.returncode == 0, f"{document}: a documented command is not valid shell ({r.stderr.strip()}): {command}"


def test_the_documents_hold_commands_to_check():
    checked = [c for _, c in DOCUMENTED if parser_and_argv(c)[0] is not None]
    assert len(checked) >= 40, len(checked)


def test_the_functions_the_readme_calls_are_named_where_they_can_be_imported():
    # `name(...)` in the README is copied into a notebook: a bare name (import_station) says not where it lives.
    calls = re.findall(r"`([A-Za-z_][\w.]*)\(", (REPO / "README.md").read_text(encoding="utf-8"))
    assert calls
    for call in calls:
        module, _, name = call.rpartition(".")
        assert module, f"README calls {call}(...) without the module it is imported from"
        assert callable(getattr(importlib.import_module(module), name)), call


def test_readme_links_to_the_chinese_guide_in_its_first_lines():
    head = (REPO / "README.md").read_text(encoding="utf-8").splitlines()[:6]
    assert any("docs/zh/README.md" in line for line in head)


USERS_GUIDE = REPO.parent / "shared" / "docs" / "fine_tune_guide.zh.md"


@pytest.mark.skipif(not USERS_GUIDE.is_file(), reason="the user's guide is shipped beside the data in ../shared")
def test_every_default_the_users_guide_lists_is_the_help_and_the_run_default():
    """The guide's 参数说明 (`--epochs`: 微调轮次，默认20 ...): fine_train.py --help names each default as the
    guide writes it, and a run without the flag uses that value (the built-in finetune section, the seed 42)."""
    from sca2lstm import load_config
    from sca2lstm.cli import finetune

    listed = re.findall(r"^- `--(\w+)`: [^\n]*?默认\s*([0-9.e+-]+)", USERS_GUIDE.read_text(encoding="utf-8"), re.M)
    assert {flag for flag, _ in listed} >= {"epochs", "batch_size", "learning_rate", "weight_decay", "patience",
                                            "fine_tune_ratio", "seed"}, listed
    helps = {a.dest: a.help for a in finetune.build_parser()._actions}
    built_in = load_config(path=None).finetune
    for flag, value in listed:
        assert re.search(rf"default {re.escape(value)}\b", helps[flag]), (flag, value, helps[flag])
        run_default = finetune.DEFAULT_SEED if flag == "seed" else getattr(built_in, flag)
        assert float(run_default) == float(value), (flag, value, run_default)


#: The documents whose links a reader follows.
LINKED = [REPO / "README.md", REPO / "bench" / "README.md", *sorted((REPO / "docs").rglob("*.md"))]


@pytest.mark.parametrize("document", LINKED, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_of_the_documents_resolves(document):
    # A Markdown link is relative to the document's own folder: `docs/x.md` written inside docs/ is docs/docs/x.md.
    text = re.sub(r"```.*?```", "", document.read_text(encoding="utf-8"), flags=re.S)
    links = [m for m in re.findall(r"\]\(([^)\s]+)\)", text) if not re.match(r"[a-z]+:|#", m)]
    broken = [link for link in links if not (document.parent / link.split("#")[0]).exists()]
    assert not broken, f"{document.relative_to(REPO)}: links that lead nowhere: {broken}"
