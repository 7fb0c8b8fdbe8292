"""pyproject.toml's runtime dependencies are true: each one imported is declared, each declared
one has a floor and a ceiling, and the floors can be turned into the constraints `make test`
installs in its lowest-versions virtualenv (scripts/lowest_constraints.py)."""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import re
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
OWN = {"ccc_gateway", "sample_crm"}


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lowest", ROOT / "scripts/lowest_constraints.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


LOWEST = _script()


def _dependencies() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return list(project["dependencies"])


def _name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    assert match is not None
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


def _imported_top_levels() -> set[str]:
    """Top-level modules imported (at run time or for typing) by the shipped packages."""
    found: set[str] = set()
    for package in OWN:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    found.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - OWN


def test_every_imported_distribution_is_declared() -> None:
    declared = {_name(requirement) for requirement in _dependencies()}
    providers = importlib.metadata.packages_distributions()
    for module in sorted(_imported_top_levels()):
        distributions = {_name(d) for d in providers.get(module, [])}
        assert distributions & declared, f"{module} is imported but no dependency provides it"


@pytest.mark.parametrize("requirement", _dependencies())
def test_every_dependency_has_a_floor_and_a_ceiling(requirement: str) -> None:
    specs = requirement.split(";")[0]
    assert re.search(r">=\s*\d", specs), requirement
    assert re.search(r"<\s*\d", specs), requirement


def test_constraints_pin_each_floor_and_keep_markers() -> None:
    assert LOWEST.floor_pin("yarl>=1.25.1,<2") == "yarl==1.25.1"
    assert LOWEST.floor_pin("aiohttp[speedups] >= 3.14.5, <3.15") == "aiohttp==3.14.5"
    assert (
        LOWEST.floor_pin("uvloop>=0.19,<1; sys_platform != 'win32'")
        == "uvloop==0.19; sys_platform != 'win32'"
    )


@pytest.mark.parametrize("requirement", ["redis", "redis<9", "redis==5.0.1", "a>=1,>=2"])
def test_a_dependency_without_exactly_one_floor_is_refused(requirement: str) -> None:
    with pytest.raises(ValueError, match="floor"):
        LOWEST.floor_pin(requirement)


def test_the_constraints_cover_every_dependency() -> None:
    lines = LOWEST.lowest_constraints(ROOT / "pyproject.toml")
    assert [_name(line) for line in lines] == [_name(r) for r in _dependencies()]
