"""What goes wrong calling the CCC OpenAPI, as the POP layer says it (no HTTP here).

The view (`ccc/views.py`) alone turns these into answers: a `RequestShapeError` is the
browser's fault (400), a `PopTimeout` is 504 and any other `PopUnavailable` 502.
"""

from __future__ import annotations


class PopFailure(Exception):
    """Base of the POP layer's errors."""


class RequestShapeError(PopFailure, ValueError):
    """The browser's parameters cannot be turned into POP parameters."""


class PopUnavailable(PopFailure):
    """No usable answer: connection failure, broken or oversized body, not JSON."""

    @property
    def timeout(self) -> bool:
        """True for a `PopTimeout`. Kept for `ops/metrics.pop_outcome` until it tests the
        type itself; new code tests `isinstance(error, PopTimeout)`."""
        return isinstance(self, PopTimeout)


class PopTimeout(PopUnavailable):
    """No whole answer within `ccc.timeout`."""
