"""The two error families Exact answers with: OData envelopes (REST) and plain OAuth JSON."""

from __future__ import annotations


class ApiError(Exception):
    """Rendered as ``{"error":{"code":"","message":{"lang":"","value":…}}}`` (API-NOTES §8)."""

    def __init__(self, status: int, message: str, *, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}

    def body(self) -> dict:
        return {"error": {"code": "", "message": {"lang": "", "value": self.message}}}


class OAuthError(Exception):
    """Rendered as ``{"error":…,"error_description":…}`` (token endpoint, API-NOTES §1.7)."""

    def __init__(
        self,
        status: int,
        error: str,
        description: str | None = None,
        *,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(description or error)
        self.status = status
        self.error = error
        self.description = description
        self.headers = headers or {}

    def body(self) -> dict:
        body = {"error": self.error}
        if self.description is not None:
            body["error_description"] = self.description
        return body


SELECT_REQUIRED = "Please add a $select or a $top=1 statement to the query string."
