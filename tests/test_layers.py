"""The package's layers as a contract: imports point one way, cli -> training -> evaluation -> models/data,
and the service (serve) beside the CLI: it calls the library, and only its command imports it.

Read from the source with ``ast`` (no import-linter dependency), so every import counts: absolute or
relative, at the top of a module or lazily inside a function.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "sca2lstm"

# layer -> what no module of it may import
FORBIDDEN = {
    "data": ("sca2lstm.cli", "sca2lstm.training", "sca2lstm.evaluation", "sca2lstm.serve"),
    "models": ("sca2lstm.cli", "sca2lstm.training", "sca2lstm.evaluation", "sca2lstm.serve"),
    "evaluation": ("sca2lstm.cli", "sca2lstm.training", "sca2lstm.serve"),
    "training": ("sca2lstm.cli", "sca2lstm.serve"),
    # The service sits beside the CLI: it maps HTTP to forecasts (evaluation), never trains, and builds
    # no model inputs itself (the model and its features are the library's).
    "serve": ("sca2lstm.cli", "sca2lstm.training", "sca2lstm.models", "sca2lstm.data.features",
              "sca2lstm.data.dataset", "sca2lstm.data.issue_time", "sca2lstm.data.scaling"),
}
# The one module outside the service that may import it: the command that starts it.
SERVE_ENTRY = "cli/serve.py"


def imported_modules(source: str, package: str) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in ``source``, the text of a module of ``package``
    (dotted, e.g. ``sca2lstm.training``; for an ``__init__.py``, its own package). ``from a import b``
    yields both ``a`` and ``a.b``, since ``b`` may be a submodule."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - (node.level - 1)])
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return found


def violations(source: str, package: str, forbidden: tuple[str, ...], where: str = "") -> list[str]:
    """One line per import statement of ``source`` that reaches a ``forbidden`` package."""
    bad = {line: name for line, name in reversed(imported_modules(source, package))
           if any(name == f or name.startswith(f + ".") for f in forbidden)}
    return [f"{where}:{line} imports {name}" for line, name in sorted(bad.items())]


def _modules(layer: str):
    """(path, package the module's relative imports start from) of every module of ``layer``."""
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        yield path, ".".join(path.parent.relative_to(PACKAGE.parent).parts)


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_point_one_way(layer):
    found = []
    for path, package in _modules(layer):
        found += violations(path.read_text(encoding="utf-8"), package, FORBIDDEN[layer],
                            str(path.relative_to(PACKAGE.parent)))
    assert not found, "layer contract broken:\n" + "\n".join(found)


def test_the_service_calls_the_library_and_only_its_command_imports_it():
    serve_imports = set()
    for path, package in _modules("serve"):
        serve_imports |= {name for _, name in imported_modules(path.read_text(encoding="utf-8"), package)}
    assert "sca2lstm.evaluation.live" in serve_imports  # the forecasts come from the library
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith("serve/") or rel == SERVE_ENTRY:
            continue
        package = ".".join(path.parent.relative_to(PACKAGE.parent).parts)
        found += violations(path.read_text(encoding="utf-8"), package, ("sca2lstm.serve",), rel)
    assert not found, "the service is imported by:\n" + "\n".join(found)


def test_checker_sees_relative_absolute_and_lazy_imports():
    """The checker itself: each way of importing a forbidden layer is caught, allowed ones are not."""
    mod = "sca2lstm.evaluation"
    bad = {
        "from ..training.runtime import load_model": "sca2lstm.training.runtime",
        "def f():\n    from ..cli.common import log\n": "sca2lstm.cli.common",
        "from .. import training": "sca2lstm.training",
        "import sca2lstm.training.trainer as t": "sca2lstm.training.trainer",
        "from sca2lstm.cli import common": "sca2lstm.cli",
    }
    for source, name in bad.items():
        found = violations(source, mod, FORBIDDEN["evaluation"])
        assert found and name in found[0], source
    for ok in ("from .metrics import nse", "from ..data.dataset import load_basin", "from ..checkpoint import x",
               "import sca2lstm.trainingwheels"):
        assert violations(ok, mod, FORBIDDEN["evaluation"]) == [], ok
    # relative imports resolve from the module's package (for sub-packages and __init__ files alike)
    assert [n for _, n in imported_modules("from ...cli import x", "sca2lstm.data.sub")][0] == "sca2lstm.cli"
    assert [n for _, n in imported_modules("from .scaling import x", "sca2lstm.data")][0] == "sca2lstm.data.scaling"
