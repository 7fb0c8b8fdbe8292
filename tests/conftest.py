"""Shared fixtures: the whole system on loopback (see stack.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from stack import Browser, Stack, start_stack, stop_stack


@pytest.fixture
async def make_stack(
    tmp_path: Path, unused_tcp_port_factory: Callable[[], int]
) -> AsyncIterator[Callable[..., Awaitable[Stack]]]:
    """Start a stack with config overrides: `await make_stack(session={"crm_binding": False})`."""
    stacks: list[Stack] = []

    async def make(**changes: Any) -> Stack:
        stack = await start_stack(
            tmp_path / f"stack{len(stacks)}", unused_tcp_port_factory, **changes
        )
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        await stop_stack(stack)


@pytest.fixture
async def stack(make_stack: Callable[..., Awaitable[Stack]]) -> Stack:
    return await make_stack()


@pytest.fixture
async def browser(stack: Stack) -> AsyncIterator[Browser]:
    b = stack.browser()
    yield b
    await b.close()
