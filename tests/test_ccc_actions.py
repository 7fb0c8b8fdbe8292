"""Tests for ccc_gateway.ccc.pop.actions: the workbench allow-list and read-only detection."""

from __future__ import annotations

import pytest

from ccc_gateway.ccc.pop.actions import (
    WORKBENCH_ACTIONS,
    ActionPolicy,
    is_read_only,
    valid_action_name,
)


def test_workbench_list_is_the_documented_one() -> None:
    """The default list holds the §2 actions, misspelling included, and nothing administrative."""
    assert len(WORKBENCH_ACTIONS) == 33
    assert {"CheckNumberAvaliable", "RequestLoginInfo", "SaveWebRTCStats", "GetUser"} <= (
        WORKBENCH_ACTIONS
    )
    assert not {"CheckNumberAvailable", "CreateUser", "RemoveUsers", "DeleteInstance"} & (
        WORKBENCH_ACTIONS
    )
    assert all(valid_action_name(a) for a in WORKBENCH_ACTIONS)


@pytest.mark.parametrize(
    ("action", "valid"),
    [
        ("ListConfig", True),
        ("Ab", True),
        ("A" + "b" * 63, True),
        ("A" + "b" * 64, False),
        ("A", False),
        ("listConfig", False),
        ("List Config", False),
        ("List-Config", False),
        ("", False),
        ("ListConfig\n", False),
        ("Lïst", False),
    ],
)
def test_valid_action_name(action: str, valid: bool) -> None:
    """Action names match ^[A-Z][A-Za-z0-9]{1,63}$ exactly."""
    assert valid_action_name(action) is valid


@pytest.mark.parametrize(
    ("action", "read_only"),
    [
        ("ListConfig", True),
        ("GetUser", True),
        ("AddAgentDevice", False),
        ("RefreshToken", False),
        ("Listen", True),
        ("listConfig", False),
    ],
)
def test_is_read_only(action: str, read_only: bool) -> None:
    """Only well-formed List…/Get… actions count as read-only."""
    assert is_read_only(action) is read_only


def test_default_policy_allows_workbench_only() -> None:
    """The default policy allows the workbench's actions and refuses administrative ones."""
    policy = ActionPolicy()
    assert policy.allows("ListSkillGroupsOfUser")
    assert not policy.allows("CreateUser")


def test_star_policy_allows_any_well_formed_action() -> None:
    """allowed=None ("*") allows every action whose name is well formed."""
    policy = ActionPolicy(None)
    assert policy.allowed is None
    assert policy.allows("CreateUser")
    assert not policy.allows("create user")


def test_policy_rejects_bad_names() -> None:
    """A configured list with a malformed action name is refused."""
    with pytest.raises(ValueError, match="not action names"):
        ActionPolicy(frozenset({"GetUser", "get user"}))


def test_policy_is_frozen() -> None:
    """The policy cannot be changed after construction."""
    policy = ActionPolicy()
    with pytest.raises(AttributeError):
        policy.allowed = None  # type: ignore[misc]
