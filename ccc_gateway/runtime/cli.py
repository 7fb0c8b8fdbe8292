"""The `ccc-gateway` command: demo, run, check-config, keygen, emulator.

An operator's mistake (missing config file, busy port, bad certificate) is one clear line on
stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.fernet import Fernet

from ccc_gateway.ccc.pop.actions import CCC_VERSIONS
from ccc_gateway.config.load import Config, ConfigError, config_warnings, load_config
from ccc_gateway.ops.log import setup_logging
from ccc_gateway.runtime.loop import run_async
from ccc_gateway.runtime.serve import Listener, StartupError, serve
from ccc_gateway.runtime.staging import CallFailed, config_snippet, ring
from ccc_gateway.runtime.tls import TlsError, server_context
from ccc_gateway.runtime.workers import gateway_listeners

if TYPE_CHECKING:
    from aiohttp import web

    from ccc_gateway.runtime.demo import DemoSetup

EXIT_OK, EXIT_FAILURE, EXIT_INVALID_CONFIG = 0, 1, 2

log = logging.getLogger("ccc_gateway")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.command(args))
    except (StartupError, TlsError) as exc:
        print(f"ccc-gateway: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_OK


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ccc-gateway",
        description="HTTPS sidecar that puts Alibaba Cloud Call Center into any web CRM.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    demo = commands.add_parser(
        "demo",
        help="run gateway + sample CRM + Alibaba emulator on one machine",
        description="Run the whole system on embedded defaults (no cloud account needed). "
        "The emulator plays CCC 2.0 (instance ccc-demo, the 3.x softphone SDK's stand-in) "
        "unless --ccc-version 2017-07-05 asks for classic CCC (instance ccc-demo-instance, "
        "the 1.x SDK's stand-in).",
    )
    demo.add_argument(
        "--host", default="127.0.0.1", help="address for all three (default 127.0.0.1)"
    )
    demo.add_argument("--port", type=int, default=8443, help="gateway HTTPS port (default 8443)")
    demo.add_argument("--crm-port", type=int, default=8080, help="sample CRM port (default 8080)")
    demo.add_argument(
        "--emulator-port", type=int, default=9443, help="emulator HTTPS port (default 9443)"
    )
    demo.add_argument(
        "--data-dir",
        type=Path,
        default=Path("demo-data"),
        help="certificate, session key and CRM database (default ./demo-data)",
    )
    demo.add_argument(
        "--ccc-version",
        choices=CCC_VERSIONS,
        default=CCC_VERSIONS[0],
        help="the call centre generation to emulate: 2020-07-01 (CCC 2.0, the 3.x softphone "
        "SDK; default) or 2017-07-05 (classic CCC, the 1.x softphone SDK)",
    )
    demo.set_defaults(command=_demo)

    run = commands.add_parser(
        "run",
        help="run the gateway in front of a CRM (production)",
        description="Run the gateway with a configuration file (see gateway.yaml); warnings "
        "about the configuration are logged at start-up. SIGHUP reloads session.keys.",
    )
    run.add_argument(
        "--config", type=Path, required=True, help="YAML configuration file (required)"
    )
    # Set by the supervisor when it starts worker processes (listen.workers > 1).
    run.add_argument("--worker-index", type=int, default=None, help=argparse.SUPPRESS)
    run.set_defaults(command=_run)

    check = commands.add_parser(
        "check-config",
        help="validate a configuration file (exit 0 or 2)",
        description="Validate FILE: exit 0 when usable (warnings printed on stderr), 2 with "
        "every problem listed by key path. The TLS certificate and key are loaded too.",
    )
    check.add_argument("file", type=Path, help="YAML configuration file")
    check.set_defaults(command=_check_config)

    keygen = commands.add_parser(
        "keygen",
        help="print a fresh session key for session.keys",
        description="Print a new random session key (for session.keys / SESSION_KEY).",
    )
    keygen.set_defaults(command=_keygen)
    _emulator_parser(commands)
    return parser


def _emulator_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    emulator = commands.add_parser(
        "emulator",
        help="run the Alibaba Cloud emulator alone (or: emulator call)",
        description="Run the Alibaba Cloud emulator alone (OAuth, CCC OpenAPI, softphone). "
        "At start it prints the configuration keys that point a gateway at it. "
        "`ccc-gateway emulator call --help`: ring an agent's softphone.",
    )
    emulator.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    emulator.add_argument("--port", type=int, default=9443, help="HTTPS port (default 9443)")
    emulator.add_argument(
        "--data-dir",
        type=Path,
        default=Path("demo-data"),
        help="where its self-signed certificate lives, created when missing (default "
        "./demo-data; the gateway trusts it with aliyun.ca_file: DIR/tls.crt)",
    )
    emulator.add_argument(
        "--redirect-uri",
        action="append",
        default=None,
        help="a registered redirect URI of the demo client (repeatable; "
        "default https://127.0.0.1:8443/aliyun/auth/callback)",
    )
    emulator.add_argument(
        "--print-config",
        action="store_true",
        help="create the certificate if missing, print the gateway configuration keys for "
        "this emulator and exit without serving",
    )
    emulator.set_defaults(command=_emulator)
    actions = emulator.add_subparsers(title="actions", required=False, metavar="ACTION")
    call = actions.add_parser(
        "call",
        help="ring an agent's softphone (an incoming call)",
        description="Push an incoming call to an agent's softphone through a running "
        "emulator (POST /_emulator/calls). The softphone must be open.",
    )
    call.add_argument(
        "--agent",
        default="agent1@ccc-demo.onaliyun.com",
        help="the agent's RAM user (default agent1@ccc-demo.onaliyun.com)",
    )
    call.add_argument(
        "--caller", default="135012345678", help="the caller's number (default 135012345678)"
    )
    call.add_argument(
        "--url",
        default="https://127.0.0.1:9443",
        help="the emulator's address (default https://127.0.0.1:9443)",
    )
    call.add_argument(
        "--data-dir",
        type=Path,
        default=Path("demo-data"),
        help="where the emulator's certificate is, to trust it (default ./demo-data)",
    )
    call.set_defaults(command=_emulator_call)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ccc-gateway")
    except PackageNotFoundError:
        return "unknown (not installed)"


# What to do about a missing file, by the key that names it.
_FILE_HINTS = {
    "aliyun.ca_file: file not found": "the emulator's certificate is created by "
    "`ccc-gateway emulator --print-config --data-dir DIR` (or its first start) as DIR/tls.crt",
    "tls.cert: file not found": "set TLS_CERT/TLS_KEY to your certificate and key, or make a "
    'self-signed pair for a trial (README, "In front of your CRM")',
}


def _load(path: Path) -> Config | None:
    try:
        return load_config(path)
    except ConfigError as exc:
        print(f"ccc-gateway: {exc}", file=sys.stderr)
        for key, hint in _FILE_HINTS.items():
            if any(problem.startswith(key) for problem in exc.problems):
                print(f"ccc-gateway: hint: {hint}", file=sys.stderr)
        return None


def _check_config(args: argparse.Namespace) -> int:
    config = _load(args.file)
    if config is None:
        return EXIT_INVALID_CONFIG
    if config.tls is not None:
        try:
            server_context(config.tls.cert, config.tls.key)
        except TlsError as exc:
            print(f"ccc-gateway: {args.file} has 1 problem(s):\n  tls: {exc}", file=sys.stderr)
            return EXIT_INVALID_CONFIG
    for warning in config_warnings(config):
        print(f"ccc-gateway: warning: {warning}", file=sys.stderr)
    print(f"{args.file}: configuration OK")
    return EXIT_OK


def _keygen(args: argparse.Namespace) -> int:
    print(Fernet.generate_key().decode("ascii"))
    return EXIT_OK


def _run(args: argparse.Namespace) -> int:
    from ccc_gateway.runtime.workers import run_gateway, supervise

    config = _load(args.config)
    if config is None:
        return EXIT_INVALID_CONFIG
    setup_logging(config.log.level, config.log.format, access_log=config.log.access_log)
    if args.worker_index is None:  # once, by the process the operator started
        for warning in config_warnings(config):
            log.warning("%s", warning)
    if config.listen.workers > 1 and args.worker_index is None:
        if config.tls is not None:
            server_context(config.tls.cert, config.tls.key)  # fail once here, not per worker
        return supervise(args.config, config)
    run_async(run_gateway(args.config, config, args.worker_index or 0))
    return EXIT_OK


def _demo_crm(setup: DemoSetup) -> web.Application:
    """The sample CRM, receiving the demo gateway's call events with its secret."""
    from sample_crm.app import create_app as create_crm_app

    secret = setup.config.crm_events.secret
    return create_crm_app(setup.crm_db, call_events_secret=secret.reveal() if secret else None)


def _demo(args: argparse.Namespace) -> int:
    from ccc_gateway.emulator.app import create_emulator_app
    from ccc_gateway.runtime.demo import DEMO_ACCOUNTS, prepare

    try:
        setup = prepare(
            args.host,
            args.port,
            args.crm_port,
            args.emulator_port,
            args.data_dir,
            args.ccc_version,
        )
    except (ConfigError, OSError) as exc:
        print(f"ccc-gateway: demo: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    setup_logging(setup.config.log.level, setup.config.log.format)
    assert setup.config.tls is not None  # the demo configuration always names its certificate
    tls = server_context(setup.config.tls.cert, setup.config.tls.key)
    listeners = [
        Listener("sample CRM", _demo_crm(setup), "127.0.0.1", setup.crm_port),
        Listener(
            "emulator", create_emulator_app(setup.emulator), args.host, setup.emulator_port, tls
        ),
        *gateway_listeners(setup.config),  # the demo does not reload on SIGHUP
    ]

    def started() -> None:
        print(
            f"\nccc-gateway demo is running: open {listeners[2].url}/ (self-signed certificate)\n"
            f"  Alibaba emulator: {listeners[1].url}/   sample CRM (direct): {listeners[0].url}/\n"
            f"  CCC {args.ccc_version}: instance {setup.config.ccc.instance_id}, "
            f"softphone SDK {setup.config.softphone.sdk}\n"
            f"{DEMO_ACCOUNTS}\nPress Ctrl-C to stop.\n",
            flush=True,
        )

    run_async(serve(listeners, shutdown_timeout=5.0, on_started=started))
    return EXIT_OK


def _emulator(args: argparse.Namespace) -> int:
    from ccc_gateway.emulator.app import create_emulator_app
    from ccc_gateway.emulator.settings import demo_settings
    from ccc_gateway.runtime.tls import ensure_self_signed

    hosts = tuple(dict.fromkeys((args.host, "127.0.0.1", "localhost")))
    cert, key = ensure_self_signed(args.data_dir.resolve(), hosts)
    url = f"https://{args.host}:{args.port}"
    if args.print_config:
        print(config_snippet(url, cert), end="")
        return EXIT_OK
    setup_logging("INFO", "text")
    redirect_uris = tuple(args.redirect_uri or ["https://127.0.0.1:8443/aliyun/auth/callback"])
    app = create_emulator_app(demo_settings(url, redirect_uris))
    listener = Listener("emulator", app, args.host, args.port, server_context(cert, key))
    run_async(
        serve(
            [listener],
            shutdown_timeout=5.0,
            on_started=lambda: print(
                f"Alibaba Cloud emulator on {url}/ (open it to ring an agent)\n\n"
                + config_snippet(url, cert),
                flush=True,
            ),
        )
    )
    return EXIT_OK


def _emulator_call(args: argparse.Namespace) -> int:
    cert = args.data_dir / "tls.crt"
    try:
        call_id = ring(args.url, args.agent, args.caller, cert if cert.is_file() else None)
    except CallFailed as exc:
        print(f"ccc-gateway: emulator call: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    print(f"ringing {args.agent}: call {call_id}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
