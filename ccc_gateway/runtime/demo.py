"""`ccc-gateway demo`: gateway + sample CRM + Alibaba emulator on one machine, embedded defaults.

Everything the demo needs is created under its data directory on first start and reused
afterwards: a self-signed certificate (also trusted by the gateway for its calls to the
emulator), a session key (so sign-ins survive restarts) and the CRM's SQLite file.
"""

from __future__ import annotations

import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet

from ccc_gateway.ccc.pop.actions import CCC2_VERSION, CLASSIC_VERSION
from ccc_gateway.config.load import Config, parse_config
from ccc_gateway.config.model import SDK_FOR_VERSION
from ccc_gateway.emulator.settings import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_INSTANCE_ID,
    DEMO_INSTANCE_ID_V2,
    SDK_FILES,
    EmulatorSettings,
    demo_settings,
)
from ccc_gateway.runtime.tls import ensure_self_signed

DEMO_CONFIG = """
listen: {host: "${HOST}", port: "${PORT}", hsts_max_age: 0}
tls: {cert: "${DATA}/tls.crt", key: "${DATA}/tls.key"}
upstream: {url: "http://127.0.0.1:${CRM_PORT}", whoami_path: /api/me, login_path: /login}
aliyun:
  client_id: "${CLIENT_ID}"
  client_secret: "${CLIENT_SECRET}"
  redirect_uri: "https://${HOST}:${PORT}/aliyun/auth/callback"
  authorize_url: "${EMULATOR}/oauth2/v1/auth"
  token_url: "${EMULATOR}/v1/token"
  revoke_url: "${EMULATOR}/v1/revoke"
  userinfo_url: "${EMULATOR}/v1/userinfo"
  jwks_url: "${EMULATOR}/v1/keys"
  issuer: "${EMULATOR}"
  ca_file: "${DATA}/tls.crt"
ccc:
  instance_id: "${INSTANCE_ID}"
  endpoint: "${EMULATOR}/"
  version: "${CCC_VERSION}"
session:
  keys: ["${SESSION_KEY}"]
softphone:
  sdk_scripts: ["${EMULATOR}/_emulator/sdk/${SDK_SCRIPT}"]
  sdk_styles: ["${EMULATOR}/_emulator/sdk/${SDK_STYLE}"]
  # The stand-in SDK's calls travel over the emulator's websocket, not *.aliyuncs.com.
  csp_sources: {connect-src: ["wss://${HOST}:${EMULATOR_PORT}"]}
# Every call's events go to the sample CRM, which lists them on the customer's page.
crm_events: {url: /api/call-events, secret: "${EVENTS_SECRET}"}
"""


# The emulator's instance of each generation; the softphone is its stand-in of the SDK that
# softphone.sdk auto picks (the 3.x UI build for 2.0, 1.x for classic).
INSTANCES = {CCC2_VERSION: DEMO_INSTANCE_ID_V2, CLASSIC_VERSION: DEMO_INSTANCE_ID}


@dataclass(frozen=True)
class DemoSetup:
    config: Config
    emulator: EmulatorSettings
    crm_db: Path
    crm_port: int
    emulator_port: int


def prepare(
    host: str,
    port: int,
    crm_port: int,
    emulator_port: int,
    data_dir: Path,
    ccc_version: str = CCC2_VERSION,
) -> DemoSetup:
    script, style = SDK_FILES[SDK_FOR_VERSION[ccc_version]]
    data_dir = data_dir.resolve()
    ensure_self_signed(data_dir)
    emulator_url = f"https://{host}:{emulator_port}"
    redirect_uris = tuple(
        f"https://{name}:{port}/aliyun/auth/callback"
        for name in dict.fromkeys((host, "127.0.0.1", "localhost"))
    )
    env = {
        "HOST": host,
        "PORT": str(port),
        "CRM_PORT": str(crm_port),
        "DATA": str(data_dir),
        "EMULATOR": emulator_url,
        "CLIENT_ID": DEMO_CLIENT_ID,
        "CLIENT_SECRET": DEMO_CLIENT_SECRET,
        "EMULATOR_PORT": str(emulator_port),
        "CCC_VERSION": ccc_version,
        "INSTANCE_ID": INSTANCES[ccc_version],
        "SDK_SCRIPT": script,
        "SDK_STYLE": style,
        "SESSION_KEY": session_key(data_dir),
        "EVENTS_SECRET": secrets.token_urlsafe(24),  # shared with the sample CRM (cli.py)
    }
    config = parse_config(DEMO_CONFIG, env, "the demo configuration")
    return DemoSetup(
        config=config,
        emulator=demo_settings(emulator_url, redirect_uris),
        crm_db=data_dir / "sample_crm.sqlite3",
        crm_port=crm_port,
        emulator_port=emulator_port,
    )


def session_key(data_dir: Path) -> str:
    """The demo's session key, made once and kept owner-readable only."""
    path = data_dir / "session.key"
    if path.is_file():
        return path.read_text(encoding="ascii").strip()
    key = Fernet.generate_key().decode("ascii")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IRUSR | stat.S_IWUSR)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(key + "\n")
    return key


DEMO_ACCOUNTS = """\
  CRM users:        edward / 1234      sissi / 5678
  Alibaba agents:   agent1@ccc-demo.onaliyun.com / agent1-pass
                    agent2@ccc-demo.onaliyun.com / agent2-pass"""
