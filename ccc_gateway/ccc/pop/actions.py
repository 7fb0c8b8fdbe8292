"""Which CCC OpenAPI actions the softphone forwarder may call, per CCC generation.

The default allow-list is the workbench SDK's own list for the configured generation
(docs/ccc-openapi.md): the classic 1.x SDK's for API 2017-07-05, the 2.x/3.x SDK's business
and call-control actions plus `SignInGroup` for API 2020-07-01 (CCC 2.0). Both APIs have
administrative actions (CreateUser, DeleteInstance, RegisterDevice, …), and a signed-in
agent's browser has no business reaching those through the gateway even when the agent's
RAM policy or CCC role would allow them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "CCC2_ACTIONS",
    "CCC2_VERSION",
    "CCC_VERSIONS",
    "CLASSIC_VERSION",
    "GET_ACTIONS",
    "READ_ONLY_PREFIXES",
    "WORKBENCH_ACTIONS",
    "ActionPolicy",
    "default_actions",
    "is_read_only",
    "valid_action_name",
]

# The two API versions (generations) of the CCC OpenAPI; an instance belongs to one.
CLASSIC_VERSION = "2017-07-05"
CCC2_VERSION = "2020-07-01"
CCC_VERSIONS = (CCC2_VERSION, CLASSIC_VERSION)

# Exactly as the workbench sends them, including its misspelt "CheckNumberAvaliable".
WORKBENCH_ACTIONS: frozenset[str] = frozenset(
    {
        "ListOutboundPhoneNumberOfUser",
        "ListSkillGroupsOfUser",
        "ListRecentCallRecords",
        "ListConfig",
        "GetConfig",
        "GetServiceExtensions",
        "LaunchAppraise",
        "GetSmsConfig",
        "RequestLoginInfo",
        "RefreshToken",
        "PickGlobalOutboundNumbers",
        "GetNumberRegionInfo",
        "ListRealTimeAgent",
        "ListAgentStates",
        "ListRecordingsByContactId",
        "GenerateAgentStatisticReport",
        "LaunchShortMessageAppraise",
        "SendPredefinedShortMessage",
        "CallOnlinePrivacyNumber",
        "ModifyPrivacyNumberCallDetail",
        "GetRecordOssUploadParam",
        "CreateFault",
        "AddAgentDevice",
        "ModifyAgentDevice",
        "ListAgentDevices",
        "GetTURNCredentials",
        "GetTURNServerList",
        "ResetUserStatus",
        "CheckNumberAvaliable",
        "SaveStats",
        "SaveWebRTCStats",
        "SaveTerminalLog",
        "GetUser",
    }
)

# CCC 2.0 (API 2020-07-01): the web-workbench-sdk 2.x/3.x table of business and call-control
# actions, plus SignInGroup (the sign-in step of its register()). The supervisor actions are
# on it because CCC itself authorises them by the user's role (docs/ccc-openapi.md §6).
CCC2_ACTIONS: frozenset[str] = frozenset(
    {
        "GetLoginDetails",
        "ListSkillLevelsOfUser",
        "ListOutboundNumbersOfUser",
        "ListConfigItems",
        "GetTurnServerList",
        "GetTurnCredentials",
        "ListPrivilegesOfUser",
        "ListDevices",
        "PickOutboundNumbers",
        "GetNumberLocation",
        "ListRealtimeAgentStates",
        "ListAgentStates",
        "ResetAgentState",
        "ListRecentCallDetailRecords",
        "ListSkillGroups",
        "ListBriefSkillGroups",
        "ListHistoricalAgentReport",
        "SaveTerminalLog",
        "SignInGroup",
        "SignOutGroup",
        "TakeBreak",
        "ReadyForService",
        "MakeCall",
        "AnswerCall",
        "ReleaseCall",
        "HoldCall",
        "RetrieveCall",
        "BlindTransfer",
        "InitiateAttendedTransfer",
        "CompleteAttendedTransfer",
        "CancelAttendedTransfer",
        "SendDtmfSignaling",
        "MonitorCall",
        "BargeInCall",
        "InterceptCall",
        "CoachCall",
        "MuteCall",
        "UnmuteCall",
        "LaunchSurvey",
    }
)


def default_actions(version: str) -> frozenset[str]:
    """The workbench SDK's allow-list of the generation `version` names."""
    return CCC2_ACTIONS if version == CCC2_VERSION else WORKBENCH_ACTIONS


# Actions named so only read; replaying one after a lost connection cannot change anything.
READ_ONLY_PREFIXES = ("List", "Get")

# The workbenches' read-only actions: the only ones `/aliyun/ccc/api` serves over GET. Every
# other action, and any action allowed beyond the workbench's list (`allowed_actions: "*"`),
# needs a POST from script, so a same-origin `<img src>` or link in a CRM record cannot make
# Alibaba change anything. Written out rather than derived from READ_ONLY_PREFIXES: a name
# is no proof (GetTURNCredentials and GetRecordOssUploadParam issue credentials), and
# actions that read under another name (RequestLoginInfo, CheckNumberAvaliable) stay POST-only.
GET_ACTIONS: frozenset[str] = frozenset(
    {
        "ListOutboundPhoneNumberOfUser",
        "ListSkillGroupsOfUser",
        "ListRecentCallRecords",
        "ListConfig",
        "GetConfig",
        "GetServiceExtensions",
        "GetSmsConfig",
        "GetNumberRegionInfo",
        "ListRealTimeAgent",
        "ListAgentStates",
        "ListRecordingsByContactId",
        "ListAgentDevices",
        "GetTURNServerList",
        "GetUser",
        # CCC 2.0; not GetLoginDetails nor GetTurnCredentials: they hand out credentials.
        "ListSkillLevelsOfUser",
        "ListOutboundNumbersOfUser",
        "ListConfigItems",
        "GetTurnServerList",
        "ListPrivilegesOfUser",
        "ListDevices",
        "GetNumberLocation",
        "ListRealtimeAgentStates",
        "ListRecentCallDetailRecords",
        "ListSkillGroups",
        "ListBriefSkillGroups",
        "ListHistoricalAgentReport",
    }
)

_ACTION_RE = re.compile(r"[A-Z][A-Za-z0-9]{1,63}")


def valid_action_name(action: str) -> bool:
    """True for a plausible POP action name: `^[A-Z][A-Za-z0-9]{1,63}$`."""
    return isinstance(action, str) and _ACTION_RE.fullmatch(action) is not None


def is_read_only(action: str) -> bool:
    """True when the action only reads (List…/Get…) and so may be retried safely."""
    return valid_action_name(action) and action.startswith(READ_ONLY_PREFIXES)


@dataclass(frozen=True)
class ActionPolicy:
    """The allow-list; `allowed=None` means every well-formed action (`allowed_actions: "*"`,
    as config/load.py reads the setting)."""

    allowed: frozenset[str] | None = WORKBENCH_ACTIONS

    def __post_init__(self) -> None:
        if self.allowed is not None:
            bad = sorted(a for a in self.allowed if not valid_action_name(a))
            if bad:
                raise ValueError(f"not action names: {', '.join(map(repr, bad))}")

    def allows(self, action: str) -> bool:
        """True when the action is well formed and on the list (or the list is "*")."""
        if self.allowed is None:
            return valid_action_name(action)
        return action in self.allowed  # every name on the list is well formed (__post_init__)
