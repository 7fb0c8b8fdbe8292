"""The package's boundaries (pyproject.toml [tool.importlinter]) hold: checked in `make test`
as well as `make lint`, so CI enforces them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHECK = (
    "import sys; from importlinter.cli import lint_imports; "
    "sys.exit(lint_imports(no_cache=True, no_logo=True))"
)


def test_import_contracts_are_kept() -> None:
    """Protocol code free of aiohttp.web, ops/http free of features, emulator and CRM apart."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", CHECK], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "BROKEN" not in done.stdout


def test_no_gateway_module_outgrows_one_screen_of_thought() -> None:
    """No module of the gateway or the sample CRM is over 400 lines (static files aside)."""
    big = {
        str(path.relative_to(ROOT)): lines
        for path in [*ROOT.glob("ccc_gateway/**/*.py"), *ROOT.glob("sample_crm/**/*.py")]
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > 400
    }
    assert big == {}


def test_every_app_and_request_key_is_declared_in_keys_py() -> None:
    """The gateway's typed app and request state is declared in one place, ccc_gateway/keys.py
    (the emulator and the sample CRM are apps of their own, with their own keys modules)."""
    elsewhere = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in ROOT.glob("ccc_gateway/**/*.py")
        if "emulator" not in path.parts and path.name != "keys.py"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if "AppKey(" in line or "RequestKey(" in line
    ]
    assert elsewhere == []
