"""Everything that can go wrong talking to Exact Online, as one exception hierarchy.

API errors carry what support needs to act without reproducing: the endpoint, the HTTP
status, Exact's own message (``error.message.value``) and its ``Reason`` header.
"""

from __future__ import annotations

from datetime import datetime


class ExactError(Exception):
    """Base class of every Exact integration error."""


# --- the connection cannot be used --------------------------------------------------------
class ExactConnectionUnavailable(ExactError):
    """Not connected, needs re-authorisation, or paused: jobs skip it, nothing is sent."""


class ExactNeedsReauth(ExactConnectionUnavailable):
    """The refresh-token chain is gone; only a new consent (Reconnect) helps."""


class ExactPaused(ExactConnectionUnavailable):
    def __init__(self, message: str, *, until: datetime | None):
        super().__init__(message)
        self.until = until


# --- API calls ----------------------------------------------------------------------------
class ExactApiError(ExactError):
    def __init__(
        self,
        message: str,
        *,
        method: str = "",
        endpoint: str = "",
        status: int | None = None,
        reason: str = "",
        exact_message: str = "",
    ):
        self.method = method
        self.endpoint = endpoint
        self.status = status
        self.reason = reason
        self.exact_message = exact_message
        super().__init__(message)

    def __str__(self) -> str:
        parts = [f"{self.method} {self.endpoint}".strip() or "Exact API"]
        parts.append(f"HTTP {self.status}" if self.status else "no response")
        text = self.exact_message or self.args[0]
        if text:
            parts.append(text)
        if self.reason:
            parts.append(f"Reason: {self.reason}")
        return " — ".join(parts)


class ExactTransportError(ExactApiError):
    """Timeout or connection failure: we do not know whether Exact processed the call."""


class ExactBadRequest(ExactApiError):
    pass


class ExactUnauthorized(ExactApiError):
    pass


class ExactForbidden(ExactApiError):
    pass


class ExactNotFound(ExactApiError):
    pass


class ExactRateLimited(ExactApiError):
    pass


class ExactServerError(ExactApiError):
    pass


class ExactDailyBudgetExhausted(ExactApiError):
    """The division's daily budget is spent; calls resume at ``reset_at`` (00:00 UTC)."""

    def __init__(self, message: str, *, reset_at: datetime | None, **kwargs):
        super().__init__(message, **kwargs)
        self.reset_at = reset_at


STATUS_ERRORS: dict[int, type[ExactApiError]] = {
    400: ExactBadRequest,
    401: ExactUnauthorized,
    403: ExactForbidden,
    404: ExactNotFound,
    405: ExactBadRequest,
    429: ExactRateLimited,
}


def error_class_for(status: int) -> type[ExactApiError]:
    if status >= 500:
        return ExactServerError
    return STATUS_ERRORS.get(status, ExactApiError)


# --- the token endpoint -------------------------------------------------------------------
class ExactTokenError(ExactError):
    """A refusal from /api/oauth2/token (plain OAuth JSON: error / error_description)."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error: str = "",
        description: str = "",
        reason: str = "",
    ):
        self.status = status
        self.error = error
        self.description = description
        self.reason = reason
        super().__init__(message)

    def __str__(self) -> str:
        bits = [self.args[0]]
        if self.status:
            bits.append(f"HTTP {self.status}")
        if self.error:
            bits.append(self.error + (f": {self.description}" if self.description else ""))
        if self.reason:
            bits.append(f"Reason: {self.reason}")
        return " — ".join(bits)

    @property
    def too_early(self) -> bool:
        return "TooEarlyToRefreshTokens" in self.reason or "not expired" in self.description

    @property
    def chain_broken(self) -> bool:
        """A refusal that no retry can fix: the user must consent again."""
        if self.too_early:
            return False
        if self.status in (401, 400) and self.error in (
            "invalid_grant",
            "unauthorized_client",
            "invalid_request",
            "access_denied",
        ):
            return True
        return False


class ExactTokenLost(ExactTokenError):
    """The token call got no answer (timeout / reset): Exact may have rotated the chain."""
