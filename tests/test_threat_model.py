"""THREAT_MODEL.md's proofs exist: every `file::test` it names is a test in that file."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parents[1]
TEXT = (ROOT / "THREAT_MODEL.md").read_text(encoding="utf-8")
# "`H` = `tests/test_hardening.py`": the shorthands the table uses.
SHORTHANDS = dict(re.findall(r"`([A-Z0-9]+)` = `(tests/[\w/]+\.py)`", TEXT))
# "`H::test_x`", "`tests/test_y.py::test_z`", also with a [parameter] suffix.
PROOF = re.compile(r"`((?:tests/[\w/]+\.py)|[A-Z0-9]+)::(test_\w+)(?:\[[^\]`]*\])?`")


def _defined_tests(path: Path) -> set[str]:
    return set(re.findall(r"^(?:async )?def (test_\w+)\(", path.read_text(), re.M))


def test_every_named_proof_is_a_test_that_exists() -> None:
    """A renamed or deleted test cannot leave a threat without its proof unnoticed."""
    proofs = PROOF.findall(TEXT)
    assert len(proofs) > 50 and SHORTHANDS
    missing = []
    for file, name in proofs:
        path = ROOT / SHORTHANDS.get(file, file)
        if not path.is_file() or name not in _defined_tests(path):
            missing.append(f"{file}::{name}")
    assert missing == []
