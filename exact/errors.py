"""Everything that can go wrong talking to Exact Online, as one exception hierarchy.

API errors carry what support needs to act without reproducing: the endpoint, the HTTP
status, Exact's own message (``error.message.value``) and its ``Reason`` header. How an answer
of Exact's is read into one of these is here too (``*_from_response``); exact/client.py sends
the requests.
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


class ExactHostNotAllowed(ExactConnectionUnavailable):
    """Region "custom" while the installation does not allow custom hosts: nothing is sent."""


class ExactDivisionTaken(ExactError):
    """The division (in this region) is connected to another company already."""


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


def api_error_from_response(*, method: str, endpoint: str, response) -> ExactApiError:
    """The error for a 4xx/5xx answer of the REST API (a ``requests.Response``), with
    Exact's message from ``{"error": {"message": {"value": …}}}`` when it sent one."""
    message = ""
    try:
        body = response.json()
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            value = error.get("message")
            message = value.get("value", "") if isinstance(value, dict) else str(value or "")
        elif isinstance(error, str):
            message = error
    except ValueError:
        message = response.text[:200]
    cls = error_class_for(response.status_code)
    return cls(
        message or response.reason or "error",
        method=method,
        endpoint=endpoint,
        status=response.status_code,
        reason=response.headers.get("Reason", ""),
        exact_message=message,
    )


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


def token_refusal_from_response(response) -> ExactTokenError | None:
    """None for a usable answer of the token endpoint: a 200 carrying a refresh token.
    Otherwise the error to raise: a 200 without one (a broken chain: never keep using the
    old token), or the refusal with its OAuth ``error`` / ``error_description`` and the
    ``Reason`` header."""
    if response.status_code == 200:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not body.get("refresh_token"):
            return ExactTokenError("Exact's token response has no refresh token", status=200)
        return None
    try:
        body = response.json()
    except ValueError:
        body = {}
    return ExactTokenError(
        "Exact's token endpoint refused the request",
        status=response.status_code,
        error=str(body.get("error", "")) if isinstance(body, dict) else "",
        description=str(body.get("error_description", "")) if isinstance(body, dict) else "",
        reason=response.headers.get("Reason", ""),
    )
