"""What the emulated Alibaba Cloud knows before anyone signs in: clients, agents, the instance.

These are the facts a real Alibaba account holds (the OAuth application registered in RAM, the
RAM users who are CCC agents, the CCC instance). Tests build their own; `demo_settings()` is
what `ccc-gateway demo` and `ccc-gateway emulator` use.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

DEMO_CLIENT_ID = "4071151845732613353"
DEMO_CLIENT_SECRET = "ccc-demo-secret-not-for-production"  # noqa: S105 - the emulator's own demo app
DEMO_INSTANCE_ID = "ccc-demo-instance"  # the classic (2017-07-05) instance
DEMO_INSTANCE_ID_V2 = "ccc-demo"  # the CCC 2.0 (2020-07-01) instance
CLASSIC_VERSION = "2017-07-05"
CCC2_VERSION = "2020-07-01"
# The stand-in browser SDK per generation, under /_emulator/sdk/ (docs/emulator.md):
# v1 = workbench-sdk 1.x (classic), v2 = web-workbench-sdk 2.x, v3 = web-workbench-sdk 3.x.
SDK_FILES = {
    "v1": ("workbenchSdk.js", "workbenchSdk.css"),
    "v2": ("workbenchSdk2.js", "workbenchSdk.css"),
    "v3": ("cccWorkbenchSdk.js", "workbenchSdk.css"),
}
DEMO_ACCOUNT_ID = "1075807536267325"


@dataclass(frozen=True)
class OAuthClient:
    """An OAuth application registered in RAM ("Web application" type)."""

    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...]


@dataclass(frozen=True)
class Agent:
    """A RAM user who is an agent of the CCC instance."""

    upn: str  # e.g. agent1@ccc-demo.onaliyun.com; the sign-in name
    password: str
    display_name: str
    uid: str  # the RAM user's numeric id (id_token `uid`, `sub`)
    user_id: str  # the agent's CCC user id (GetUser, RequestLoginInfo)
    extension: str
    phone: str
    email: str


DEMO_AGENTS: tuple[Agent, ...] = (
    Agent(
        upn="agent1@ccc-demo.onaliyun.com",
        password="agent1-pass",  # noqa: S106
        display_name="Agent One",
        uid="246564030753828051",
        user_id="ccc-user-agent1",
        extension="8001",
        phone="13800000001",
        email="agent1@ccc-demo.example",
    ),
    Agent(
        upn="agent2@ccc-demo.onaliyun.com",
        password="agent2-pass",  # noqa: S106
        display_name="Agent Two",
        uid="246564030753828052",
        user_id="ccc-user-agent2",
        extension="8002",
        phone="13800000002",
        email="agent2@ccc-demo.example",
    ),
)


@dataclass
class EmulatorSettings:
    """Knobs of the emulator. Mutable on purpose: `/_emulator/settings` changes them at run time."""

    # Where browsers and the gateway reach the emulator, e.g. https://127.0.0.1:9443.
    public_url: str
    clients: tuple[OAuthClient, ...]
    agents: tuple[Agent, ...] = DEMO_AGENTS
    issuer: str | None = None  # id_token `iss`; None means public_url
    account_id: str = DEMO_ACCOUNT_ID
    instance_id: str = DEMO_INSTANCE_ID  # classic; a call names it with Version=2017-07-05
    instance_id_v2: str = DEMO_INSTANCE_ID_V2  # CCC 2.0; Version=2020-07-01
    region: str = "cn-shanghai"
    # "bearer" (opaque, token_type Bearer) | "sts" (token_type AliyunSTS); not a secret.
    token_format: str = "bearer"  # noqa: S105
    expires_in_as_string: bool = False  # the seed's sample sends "3599"
    access_token_ttl: float = 3600.0
    refresh_token_ttl: float = 30 * 86400.0
    rotate_refresh_tokens: bool = False
    code_ttl: float = 60.0
    pop_timestamp_skew: float = 15 * 60.0  # Alibaba rejects a Timestamp further off than this
    clock: Callable[[], float] = field(default=time.time, repr=False)

    @property
    def iss(self) -> str:
        return self.issuer or self.public_url.rstrip("/")

    def instance_for(self, version: str) -> str:
        """The instance of a generation: the demo picks the gateway's `ccc.instance_id` so."""
        return self.instance_id_v2 if version == CCC2_VERSION else self.instance_id

    def ccc2_user_id(self, agent: Agent) -> str:
        """The agent's CCC 2.0 user id, `<RAM user name>@<instance>` (e.g. agent1@ccc-demo)."""
        return f"{agent.upn.split('@', 1)[0]}@{self.instance_id_v2}"

    def agent_by_upn(self, upn: str) -> Agent | None:
        return next((a for a in self.agents if a.upn == upn), None)

    def client_by_id(self, client_id: str) -> OAuthClient | None:
        return next((c for c in self.clients if c.client_id == client_id), None)


def demo_settings(public_url: str, redirect_uris: tuple[str, ...]) -> EmulatorSettings:
    """The demo account: one OAuth app, two agents, one instance."""
    client = OAuthClient(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, redirect_uris)
    return EmulatorSettings(public_url=public_url, clients=(client,))
