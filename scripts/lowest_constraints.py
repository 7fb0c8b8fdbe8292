"""Print pip constraints that pin every runtime dependency of pyproject.toml to its floor.

`make test` installs the package with these constraints in a throwaway virtualenv and runs a
smoke subset there, so a floor the code has outgrown fails the build instead of a user's
install. Each dependency must declare a `>=` floor; an environment marker is kept, so
`uvloop>=0.19; sys_platform != 'win32'` becomes `uvloop==0.19; sys_platform != 'win32'`.

Standard library only: it runs with whichever Python `make` found, before any virtualenv.
Usage: python scripts/lowest_constraints.py [pyproject.toml] > constraints.txt
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

# name[extras] then the specifier list, then an optional "; marker".
_REQUIREMENT = re.compile(
    r"^\s*(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*"
    r"(?P<specs>[^;]*?)\s*(?:;\s*(?P<marker>.+?))?\s*$"
)
_FLOOR = re.compile(r"^>=\s*(?P<version>[0-9][0-9A-Za-z.!+-]*)$")


def floor_pin(requirement: str) -> str:
    """`name==floor` (with the marker) for one requirement; ValueError when it has no floor."""
    match = _REQUIREMENT.match(requirement)
    if match is None:
        raise ValueError(f"cannot read the requirement {requirement!r}")
    floors = [
        found.group("version")
        for spec in match.group("specs").split(",")
        if (found := _FLOOR.match(spec.strip()))
    ]
    if len(floors) != 1:
        raise ValueError(f"{requirement!r} must have exactly one '>=' floor")
    pin = f"{match.group('name')}=={floors[0]}"
    marker = match.group("marker")
    return f"{pin}; {marker}" if marker else pin


def lowest_constraints(pyproject: Path) -> list[str]:
    """One constraint line per entry of [project].dependencies, in the file's order."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    return [floor_pin(requirement) for requirement in project["dependencies"]]


def main(argv: list[str]) -> int:
    pyproject = Path(argv[1]) if len(argv) > 1 else Path(__file__).parent.parent / "pyproject.toml"
    try:
        lines = lowest_constraints(pyproject)
    except ValueError as exc:
        print(f"lowest_constraints: {exc}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
