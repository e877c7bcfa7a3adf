"""Our own small error set for everything GoCardless answers (mapped in client.py).

Callers decide by class, never by the SDK's exception types:
- ``RetryableError``: try again later (5xx, non-JSON proxy pages after the SDK's own retries,
  timeouts and connection errors, 429 still limited after waiting).
- ``InvalidStateError``: the resource is in the wrong state for the action (do not retry).
- ``ValidationError``: bad input; ``field_errors`` lists ``{field, message, request_pointer}``.
- ``AuthError``: 401/403; the connection needs re-authorisation.
- ``NotFoundError``: the resource does not exist (for this token).
- ``IdempotencyMismatchError``: a 409 conflict pointed at a resource that is NOT the one we
  meant (metadata/amount/currency differ). Loud on purpose: adopting it could book the wrong
  money against an invoice.
- ``ApiUsageError``: any other client-side error (bad request shape, unknown parameter).
- ``GoneError`` (an ``ApiUsageError``): 410 Gone, what is asked for is no longer kept, e.g.
  the items of a payout created more than six months ago. Asking again will not help.
"""

from __future__ import annotations


class GoCardlessError(Exception):
    """Base class: carries what GoCardless said, never the access token."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        type: str = "",
        request_id: str = "",
        reasons: list[str] | None = None,
        errors: list[dict] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.type = type
        self.request_id = request_id or ""
        self.reasons = list(reasons or [])
        self.errors = list(errors or [])

    def __str__(self) -> str:
        parts = [self.message]
        if self.status:
            parts.append(f"status={self.status}")
        if self.type:
            parts.append(f"type={self.type}")
        if self.reasons:
            parts.append(f"reasons={','.join(self.reasons)}")
        if self.request_id:
            parts.append(f"request_id={self.request_id}")
        return " ".join(parts)


class RetryableError(GoCardlessError):
    pass


class InvalidStateError(GoCardlessError):
    pass


class ValidationError(GoCardlessError):
    @property
    def field_errors(self) -> list[dict]:
        return [
            {k: e.get(k) for k in ("field", "message", "request_pointer")}
            for e in self.errors
            if "field" in e
        ]


class AuthError(GoCardlessError):
    pass


class NotFoundError(GoCardlessError):
    pass


class ApiUsageError(GoCardlessError):
    pass


class IdempotencyMismatchError(GoCardlessError):
    pass


class GoneError(ApiUsageError):
    pass
