"""An operator's first hour (issue 17, point 8): CLI, Makefile, README, emulator home page."""

from __future__ import annotations

import argparse
import asyncio
import re
import subprocess
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from ccc_gateway.emulator.app import create_emulator_app
from ccc_gateway.emulator.settings import demo_settings
from ccc_gateway.runtime.cli import _parser, main
from ccc_gateway.runtime.staging import CallFailed, ring

ROOT = Path(__file__).resolve().parent.parent


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    """`ccc-gateway --version` prints the package's version and exits 0."""
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert re.fullmatch(r"ccc-gateway \S+\n", capsys.readouterr().out)


def _subparsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found += [sub, *_subparsers(sub)]
    return found


def test_every_option_of_every_command_is_explained_with_its_default() -> None:
    """Each subcommand's --help explains every option, and names the default where it has one."""
    missing = []
    for parser in _subparsers(_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
                continue
            if action.help == argparse.SUPPRESS:
                continue
            name = f"{parser.prog} {'/'.join(action.option_strings) or action.dest}"
            if not action.help:
                missing.append(f"{name}: no help")
            elif action.default not in (None, False) and "default" not in action.help:
                missing.append(f"{name}: default {action.default!r} not said")
    assert missing == []


def test_emulator_call_is_a_subcommand() -> None:
    """`ccc-gateway emulator call` parses to the call action with the documented defaults."""
    args = _parser().parse_args(["emulator", "call", "--caller", "135012345679"])
    assert args.command.__name__ == "_emulator_call"
    assert args.agent == "agent1@ccc-demo.onaliyun.com" and args.caller == "135012345679"
    plain = _parser().parse_args(["emulator", "--port", "9555"])
    assert plain.command.__name__ == "_emulator" and plain.port == 9555


def test_gitignore_lists_no_tracked_file() -> None:
    """No file in the repository is matched by .gitignore (it would hide its changes)."""
    result = subprocess.run(
        ["git", "ls-files", "--cached", "--ignored", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.skip("not a git checkout")
    assert result.stdout == ""


def test_make_demo_installs_the_runtime_only() -> None:
    """`make demo` needs the package alone; the test extra is `make test`'s and `make lint`'s."""
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^demo: \$\(RUNTIME_STAMP\)$", makefile, re.MULTILINE)
    runtime = makefile[makefile.index("$(RUNTIME_STAMP): pyproject.toml") :]
    runtime = runtime[: runtime.index("\n\n")]
    assert "pip install --quiet -e .\n" in runtime and "[test]" not in runtime
    assert re.search(r"^test: \$\(STAMP\)", makefile, re.MULTILINE)
    assert re.search(r"^lint: \$\(STAMP\)", makefile, re.MULTILINE)


def test_make_finds_python_311_to_313() -> None:
    """The Makefile's default Python is the first of 3.11, 3.12, 3.13; README says how to pick."""
    script = (ROOT / "scripts" / "find-python.sh").read_text()
    assert "python3.11 python3.12 python3.13" in script
    assert "make PYTHON=" in (ROOT / "README.md").read_text()


def test_readme_sets_up_tls_before_check_config() -> None:
    """The README's steps in front of a CRM give the certificate before check-config runs."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Running it in front of your CRM") :]
    section = section[: section.index("\n### ")]
    assert section.index("TLS_CERT") < section.index("ccc-gateway check-config")
    assert "TLS_KEY" in section and "emulator call" in section


async def test_emulator_home_page_rings_an_agent() -> None:
    """A browser opening the emulator's address gets the ring form (both languages); programs
    still reach the POP endpoint's MissingAction; the form posts to /_emulator/calls."""
    server = TestServer(create_emulator_app(demo_settings("http://127.0.0.1", ())))
    await server.start_server()
    try:
        client = server.make_url("/")
        async with aiohttp.ClientSession() as http:
            async with http.get(client, headers={"Accept": "text/html"}) as page:
                html = await page.text()
                assert page.status == 200 and "<form" in html
                assert "agent1@ccc-demo.onaliyun.com" in html and "/_emulator/calls" in html
                assert "nonce-" in page.headers["Content-Security-Policy"]
            async with http.get(
                client, headers={"Accept": "text/html", "Accept-Language": "zh-CN"}
            ) as page:
                assert "呼叫坐席" in await page.text()
            async with http.get(client, headers={"Accept": "application/json"}) as api:
                assert "MissingAction" in await api.text()
    finally:
        await server.close()


async def test_emulator_call_explains_an_agent_without_softphone() -> None:
    """`emulator call` for an agent whose softphone is closed says to open it (409)."""
    server = TestServer(create_emulator_app(demo_settings("http://127.0.0.1", ())))
    await server.start_server()
    try:
        with pytest.raises(CallFailed, match="no softphone connected"):
            await asyncio.to_thread(
                ring,
                str(server.make_url("/")),
                "agent1@ccc-demo.onaliyun.com",
                "135012345678",
                None,
            )
        with pytest.raises(CallFailed, match="refused the call"):
            await asyncio.to_thread(
                ring, str(server.make_url("/")), "nobody@x", "135012345678", None
            )
    finally:
        await server.close()


def test_emulator_print_config_creates_the_certificate_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--print-config makes the certificate before any start, and prints keys naming it."""
    assert main(["emulator", "--data-dir", str(tmp_path), "--print-config"]) == 0
    out = capsys.readouterr().out
    cert = tmp_path.resolve() / "tls.crt"
    assert cert.is_file()
    assert f"ca_file: {cert}" in out
    for key in ("authorize_url:", "token_url:", "jwks_url:", "endpoint:", "sdk_scripts:"):
        assert key in out


def test_emulator_config_snippet_is_a_valid_ccc2_configuration(tmp_path: Path) -> None:
    """The printed snippet, with the gateway's own tls/upstream/session keys, loads as a CCC 2.0
    configuration whose softphone loads the emulator's 3.x stand-in and may reach its socket."""
    from cryptography.fernet import Fernet

    from ccc_gateway.config.load import parse_config
    from ccc_gateway.runtime.staging import config_snippet
    from ccc_gateway.runtime.tls import ensure_self_signed

    cert, key = ensure_self_signed(tmp_path)
    snippet = config_snippet("https://127.0.0.1:9443", cert)
    own = (
        f'tls: {{cert: "{cert}", key: "{key}"}}\n'
        "upstream: {url: 'http://127.0.0.1:8080'}\n"
        f'session: {{keys: ["{Fernet.generate_key().decode()}"]}}\n'
    )
    redirect = "aliyun:\n  redirect_uri: https://127.0.0.1:8443/aliyun/auth/callback\n"
    text = snippet.replace("aliyun:\n", redirect, 1) + own
    config = parse_config(text, {})
    assert config.ccc.is_v2 and config.ccc.instance_id == "ccc-demo"
    assert config.softphone.sdk == "v3"
    assert config.softphone.sdk_scripts == (
        "https://127.0.0.1:9443/_emulator/sdk/cccWorkbenchSdk.js",
    )


def test_check_config_says_how_to_get_the_emulator_certificate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing aliyun.ca_file is a problem with a hint naming the command that makes it."""
    config = tmp_path / "g.yaml"
    config.write_text(_config(tmp_path, "  ca_file: /nonexistent/tls.crt\n"))
    assert main(["check-config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "aliyun.ca_file: file not found" in err
    assert "hint:" in err and "--print-config" in err


def test_check_config_prints_warnings_and_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Warnings (binding off, the sample CRM's screen-pop page) do not fail check-config."""
    config = tmp_path / "g.yaml"
    text = _config(tmp_path, "").replace("upstream: {", "upstream: {whoami_path: null, ")
    config.write_text(text)
    assert main(["check-config", str(config)]) == 0
    captured = capsys.readouterr()
    assert "configuration OK" in captured.out
    assert "warning: CRM binding is off" in captured.err
    assert "warning: softphone.screen_pop_url is still the sample CRM's" in captured.err


def _config(tmp_path: Path, aliyun_extra: str) -> str:
    from cryptography.fernet import Fernet

    from ccc_gateway.runtime.tls import ensure_self_signed

    cert, key = ensure_self_signed(tmp_path / "tls")
    return (
        f'tls: {{cert: "{cert}", key: "{key}"}}\n'
        "upstream: {url: 'http://localhost:9000'}\n"
        "aliyun:\n"
        '  client_id: "1"\n'
        '  client_secret: "s"\n'
        "  redirect_uri: https://127.0.0.1:8443/aliyun/auth/callback\n"
        f"{aliyun_extra}"
        "ccc: {instance_id: i}\n"
        f'session: {{keys: ["{Fernet.generate_key().decode()}"]}}\n'
    )
