"""GoCardless error bodies (notes section 7) raised by handlers and rendered by the app."""

from __future__ import annotations

import uuid

DOCS = "https://developer.gocardless.com/api-reference#"


class ApiError(Exception):
    """An error response: HTTP status + the ``error`` object GoCardless sends."""

    def __init__(self, status: int, error_type: str, message: str, errors: list[dict]) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message
        self.errors = errors

    def body(self, request_id: str | None = None) -> dict:
        anchor = self.errors[0].get("reason", self.error_type) if self.errors else self.error_type
        return {
            "error": {
                "message": self.message,
                "documentation_url": DOCS + anchor,
                "type": self.error_type,
                "request_id": request_id or str(uuid.uuid4()),
                "code": self.status,
                "errors": self.errors,
            }
        }


def invalid_api_usage(status: int, reason: str, message: str) -> ApiError:
    return ApiError(status, "invalid_api_usage", message, [{"reason": reason, "message": message}])


def invalid_state(reason: str, message: str, *, status: int = 422, links=None) -> ApiError:
    error: dict = {"reason": reason, "message": message}
    if links:
        error["links"] = links
    return ApiError(status, "invalid_state", message, [error])


def not_found() -> ApiError:
    return invalid_api_usage(404, "resource_not_found", "Resource not found")


def internal_error() -> ApiError:
    message = "Uh-oh! Something went wrong. We've been notified and will look into it."
    return ApiError(500, "gocardless", message,
                    [{"reason": "internal_server_error", "message": message}])


def rate_limited() -> ApiError:
    return invalid_api_usage(429, "rate_limit_exceeded", "Rate limit exceeded")


def idempotency_conflict(resource_id: str) -> ApiError:
    return invalid_state(
        "idempotent_creation_conflict",
        "A resource has already been created with this idempotency key",
        status=409,
        links={"conflicting_resource_id": resource_id},
    )


class Validation:
    """Collects field errors so one response lists every problem, like the real API."""

    def __init__(self, envelope: str) -> None:
        self.envelope = envelope
        self.errors: list[dict] = []

    def add(self, field: str, message: str, pointer: str | None = None) -> None:
        self.errors.append({
            "field": field,
            "message": message,
            "request_pointer": f"/{self.envelope}/{pointer or field}",
        })

    def raise_if_any(self) -> None:
        if self.errors:
            raise ApiError(422, "validation_failed", "Validation failed", self.errors)


def query_validation(field: str, message: str) -> ApiError:
    """A bad query parameter (list endpoints); pointer names the parameter."""
    return ApiError(422, "validation_failed", "Validation failed",
                    [{"field": field, "message": message, "request_pointer": f"/{field}"}])


class OAuthError(Exception):
    """A refusal of the OAuth token endpoint: RFC 6749 §5.2 JSON (``error``,
    ``error_description``), not the API's error envelope."""

    def __init__(self, status: int, error: str, description: str = "",
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{error}: {description}" if description else error)
        self.status = status
        self.error = error
        self.description = description
        self.headers = headers or {}

    def body(self) -> dict:
        body = {"error": self.error}
        if self.description:
            body["error_description"] = self.description
        return body
