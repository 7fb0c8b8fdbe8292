"""The sign-in layer's own refusals and failures: no HTTP here.

auth/views.py `as_http` (asked by the middleware) turns them into answers: `NotSignedIn`
401 NotAuthenticated, `CrmUserMismatch` 403, `CrmIdentityTimeout` and `RefreshTimeout` 504,
`CrmIdentityUnavailable` and `RefreshFailed` 502. Timeouts are subclasses, not flags.
"""

from __future__ import annotations


class NotSignedIn(Exception):
    """The request carries no live Alibaba sign-in (the message, when given, says why)."""


class RefreshFailed(Exception):
    """Alibaba could not refresh the token now; the sign-in is kept (try again)."""


class RefreshTimeout(RefreshFailed):
    """Alibaba did not answer the token refresh in time; the sign-in is kept."""


class CrmUserMismatch(Exception):
    """The sign-in belongs to another CRM user (or CRM session) than the one logged in now."""


class CrmIdentityUnavailable(Exception):
    """The CRM could not say who is logged in (no answer, or not one the gateway reads)."""


class CrmIdentityTimeout(CrmIdentityUnavailable):
    """The CRM did not say who is logged in in time."""
