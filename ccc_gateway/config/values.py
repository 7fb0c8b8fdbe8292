"""Reading typed values out of parsed YAML, collecting every problem by key path.

`Section` walks one mapping of the configuration. Each accessor returns a usable value even
when the input is wrong (the default, or a placeholder) and records the problem instead of
raising, so that `load_config` can report *every* mistake at once, the way an operator wants
to fix them: `tls.cert: file not found: /x`.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from yarl import URL

T = TypeVar("T")

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
_SIZE = re.compile(r"^\s*(\d+)\s*(B|KB|KiB|MB|MiB|GB|GiB)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    "b": 1,
    "kb": 1000,
    "kib": 1024,
    "mb": 1000**2,
    "mib": 1024**2,
    "gb": 1000**3,
    "gib": 1024**3,
}

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class Secret:
    """A configuration value that must never be printed: repr and str are masked."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class Problems(list[str]):
    """Every problem found so far, each prefixed with its key path."""

    def add(self, path: str, message: str) -> None:
        self.append(f"{path}: {message}")


def expand_env(text: str, env: Mapping[str, str]) -> tuple[str, list[str]]:
    """Replace `${NAME}` and `${NAME:-default}`; return the text and the names unset or empty."""
    missing: list[str] = []

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        value = env.get(name) or ""
        if value:
            return value
        if default is None:
            missing.append(name)
        return default or ""

    return _ENV_REF.sub(substitute, text), missing


def parse_duration(value: Any) -> float:
    """`90s`, `15m`, `12h`, `30d`, `250ms`, or a number of seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like 90s, 15m, 30d")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"expected a duration like 90s, 15m, 30d, not {value!r}")
        seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


def parse_size(value: Any) -> int:
    """`64KiB`, `10MB`, `1GiB`, or a number of bytes."""
    if isinstance(value, bool):
        raise ValueError("expected a size like 64KiB or 10MB")
    if isinstance(value, int):
        size = value
    else:
        match = _SIZE.match(str(value))
        if not match:
            raise ValueError(f"expected a size like 64KiB or 10MB, not {value!r}")
        size = int(match.group(1)) * _SIZE_UNITS[(match.group(2) or "b").lower()]
    if size < 0:
        raise ValueError("a size cannot be negative")
    return size


class Section:
    """One mapping of the configuration, read key by key; unknown keys are reported at the end."""

    def __init__(self, data: Any, path: str, problems: Problems, env: Mapping[str, str]) -> None:
        self.path = path
        self.problems = problems
        self.env = env
        self.seen: set[str] = set()
        self.env_problems: set[str] = set()  # keys already reported for an unset variable
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            problems.add(path or "(top level)", f"expected a mapping, not {_kind(data)}")
            data = {}
        self.data: Mapping[Any, Any] = data

    def key_path(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def section(self, key: str) -> Section:
        self.seen.add(key)
        return Section(self.data.get(key), self.key_path(key), self.problems, self.env)

    def raw(self, key: str) -> Any:
        """The value with `${ENV}` references expanded (strings only), or None when absent."""
        self.seen.add(key)
        value = self.data.get(key)
        return self._expand(key, value)

    def _expand(self, key: str, value: Any) -> Any:
        if isinstance(value, str):
            expanded, missing = expand_env(value, self.env)
            for name in missing:
                self.problems.add(self.key_path(key), f"environment variable {name} is not set")
                self.env_problems.add(key)
            return expanded
        if isinstance(value, list):
            return [self._expand(key, item) for item in value]
        return value

    def get(
        self, key: str, convert: Callable[[Any], T], default: T, *, required: bool = False
    ) -> T:
        """Read `key` through `convert`; a ValueError becomes a problem at this key's path."""
        value = self.raw(key)
        if value is None or value == "":
            if required and key not in self.env_problems:
                self.problems.add(self.key_path(key), "required")
            return default
        try:
            return convert(value)
        except (ValueError, TypeError) as exc:
            self.problems.add(self.key_path(key), str(exc))
            return default

    def reject_unknown(self) -> None:
        for key in self.data:
            if key not in self.seen:
                self.problems.add(self.key_path(str(key)), "unknown key (a typo?)")


# Converters: each takes the YAML value and returns the typed value or raises ValueError.


def as_str(value: Any) -> str:
    if isinstance(value, bool | list | dict):
        raise ValueError(f"expected text, not {_kind(value)}")
    return str(value)


def as_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"expected a whole number, not {_kind(value)}")
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"expected a whole number, not {value!r}") from None


def as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"true", "yes", "on", "1"}:
        return True
    if text in {"false", "no", "off", "0"}:
        return False
    raise ValueError(f"expected true or false, not {value!r}")


def as_port(value: Any) -> int:
    port = as_int(value)
    if not 0 < port < 65536:
        raise ValueError(f"expected a port from 1 to 65535, not {port}")
    return port


def as_positive_int(value: Any) -> int:
    number = as_int(value)
    if number < 1:
        raise ValueError(f"expected a number of at least 1, not {number}")
    return number


def as_http_url(value: Any) -> URL:
    text = as_str(value).strip()
    url = URL(text)
    if url.scheme not in {"http", "https"} or not url.host:
        raise ValueError(f"expected an http(s) URL with a host, not {text!r}")
    return url


def as_relative_path(value: Any) -> str:
    text = as_str(value).strip()
    if not text.startswith("/") or text.startswith("//") or "\\" in text:
        raise ValueError(f"expected a path starting with a single /, not {text!r}")
    return text


def as_readable_file(value: Any) -> Path:
    path = Path(as_str(value)).expanduser()
    if not path.exists():
        raise ValueError(f"file not found: {path}")
    if not path.is_file():
        raise ValueError(f"not a file: {path}")
    if not os.access(path, os.R_OK):
        raise ValueError(f"file not readable: {path}")
    return path


def as_network(value: Any) -> IpNetwork:
    try:
        return ipaddress.ip_network(as_str(value).strip(), strict=False)
    except ValueError:
        raise ValueError(f"expected an IP address or CIDR network, not {value!r}") from None


def choice(*allowed: str) -> Callable[[Any], str]:
    def convert(value: Any) -> str:
        text = as_str(value).strip()
        if text not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}, not {text!r}")
        return text

    return convert


def list_of(convert: Callable[[Any], T]) -> Callable[[Any], tuple[T, ...]]:
    def convert_list(value: Any) -> tuple[T, ...]:
        if not isinstance(value, list):
            raise ValueError(f"expected a list, not {_kind(value)}")
        items = []
        for index, item in enumerate(value):
            try:
                items.append(convert(item))
            except ValueError as exc:
                raise ValueError(f"item {index + 1}: {exc}") from None
        return tuple(items)

    return convert_list


def _kind(value: Any) -> str:
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return "true/false"
    return f"{type(value).__name__} {value!r}"
