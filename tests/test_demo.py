"""`ccc-gateway demo`'s configuration: the CCC generation it plays and the softphone it serves."""

from __future__ import annotations

from pathlib import Path

import pytest

from ccc_gateway.runtime.cli import _parser
from ccc_gateway.runtime.demo import prepare
from ccc_gateway.softphone.views import page_policy


def test_demo_plays_ccc2_by_default(tmp_path: Path) -> None:
    """Without --ccc-version the demo is CCC 2.0: instance ccc-demo, the 3.x stand-in SDK."""
    args = _parser().parse_args(["demo"])
    assert args.ccc_version == "2020-07-01"
    setup = prepare("127.0.0.1", 8443, 8080, 9443, tmp_path, args.ccc_version)
    assert setup.config.ccc.version == "2020-07-01"
    assert setup.config.ccc.instance_id == "ccc-demo"
    assert setup.config.softphone.sdk == "v3"
    assert setup.config.softphone.sdk_scripts == (
        "https://127.0.0.1:9443/_emulator/sdk/cccWorkbenchSdk.js",
    )
    # The stand-in's websocket is the emulator's, beside 2.0's own *.aliyuncs.com hosts.
    connect = next(d for d in page_policy(setup.config).split("; ") if d.startswith("connect"))
    assert connect.split()[1:] == [
        "'self'",
        "wss://*.aliyuncs.com:*",
        "https://*.aliyuncs.com:*",
        "wss://127.0.0.1:9443",
    ]


def test_demo_plays_classic_on_request(tmp_path: Path) -> None:
    """--ccc-version 2017-07-05: instance ccc-demo-instance and the 1.x stand-in SDK."""
    args = _parser().parse_args(["demo", "--ccc-version", "2017-07-05"])
    setup = prepare("127.0.0.1", 8443, 8080, 9443, tmp_path, args.ccc_version)
    assert setup.config.ccc.version == "2017-07-05"
    assert setup.config.ccc.instance_id == "ccc-demo-instance"
    assert setup.config.softphone.sdk == "v1"
    assert setup.config.softphone.sdk_scripts == (
        "https://127.0.0.1:9443/_emulator/sdk/workbenchSdk.js",
    )


def test_demo_refuses_another_version() -> None:
    """Only the two generations are accepted; argparse explains and exits 2."""
    with pytest.raises(SystemExit) as info:
        _parser().parse_args(["demo", "--ccc-version", "2019-01-01"])
    assert info.value.code == 2
