#!/usr/bin/env python3
"""Take the README's screenshots (docs/img/*.png) from the running product.

    python scripts/screenshots.py

Runs tests/test_screenshots.py (the browser suite's stack: CRM, emulator, gateway on
loopback, headless Chromium) with CCC_SCREENSHOTS=1; commit the images it writes.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

if __name__ == "__main__":
    os.environ["CCC_SCREENSHOTS"] = "1"
    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT))
    sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", "tests/test_screenshots.py"]))
