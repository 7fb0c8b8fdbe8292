"""The two kinds of POP failure, and typed reading of RPC parameters as Alibaba validates them.

Alibaba's API gateway rejects malformed calls with HTTP 4xx and `{RequestId, HostId, Code,
Message, Recommend}`; the product itself (CCC) answers business failures with HTTP 200 and
`Success: false` (docs/ccc-openapi.md, section 4). Parameter codes follow the public error centre's
patterns `Missing{ParameterName}` ("… is mandatory for this action.") and
`Invalid{ParameterName}` ("Specified parameter … is not valid.").
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_INT = re.compile(r"-?[0-9]{1,18}")  # Java long range, no signs other than minus, no spaces
_BOOLEANS = {"true": True, "false": False}  # Java's Boolean parsing ignores case


class PopError(Exception):
    """A call the API gateway refuses: answered with an HTTP error status."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class BusinessError(Exception):
    """A call CCC refuses after authentication: HTTP 200 with `Success: false`."""

    def __init__(self, code: str, message: str, http_status: int) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.http_status = http_status


def missing(name: str) -> PopError:
    return PopError(400, f"Missing{name}", f"{name} is mandatory for this action.")


def invalid(name: str, why: str = "") -> PopError:
    message = f"Specified parameter {name} is not valid."
    return PopError(400, f"Invalid{name}", f"{message} {why}".strip())


class Params:
    """Read-only view of one call's merged parameters with typed accessors."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)

    def raw(self) -> dict[str, str]:
        return dict(self._values)

    def get(self, name: str) -> str | None:
        """The value, or None when absent or empty (Alibaba treats both as not given)."""
        value = self._values.get(name)
        return value if value else None

    def required(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise missing(name)
        return value

    def integer(self, name: str, *, low: int | None = None, high: int | None = None) -> int | None:
        text = self.get(name)
        return None if text is None else _to_int(name, text, low, high)

    def required_integer(
        self, name: str, *, low: int | None = None, high: int | None = None
    ) -> int:
        return _to_int(name, self.required(name), low, high)

    def boolean(self, name: str) -> bool | None:
        text = self.get(name)
        if text is None:
            return None
        value = _BOOLEANS.get(text.lower())
        if value is None:
            raise invalid(name, "It must be true or false.")
        return value

    def repeated(self, name: str) -> list[str]:
        """A list sent as `Name.1`, `Name.2`, … (the RPC style has no arrays), in index order.

        A bare `Name` (e.g. JSON text of an array) is refused: it means the caller did not
        flatten the list, and Alibaba would not read it as one.
        """
        if name in self._values:
            raise invalid(name, f"Send a list as {name}.1, {name}.2, ….")
        pattern = re.compile(re.escape(name) + r"\.([0-9]+)")
        indexed: list[tuple[int, str]] = []
        for key, value in self._values.items():
            match = pattern.fullmatch(key)
            if match is None:
                continue
            index = int(match.group(1))
            if index < 1:
                raise invalid(name, "List indexes start at 1.")
            indexed.append((index, value))
        return [value for _, value in sorted(indexed)]


def _to_int(name: str, text: str, low: int | None, high: int | None) -> int:
    if not _INT.fullmatch(text):
        raise invalid(name, "It must be an integer.")
    number = int(text)
    if (low is not None and number < low) or (high is not None and number > high):
        raise invalid(name, f"It must be from {low} to {high}.")
    return number
