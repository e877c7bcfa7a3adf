"""The only module that does HTTP to GoCardless: a thin wrapper around ``gocardless_pro.Client``.

What it adds to the official SDK (facts in API-NOTES-GOCARDLESS.md §3, §4, §7, §8):
- a timeout on every call (``GOCARDLESS_HTTP_TIMEOUT``);
- OUR deterministic ``Idempotency-Key`` on every create (the caller passes it; the SDK's random
  uuid4 would make a crash-and-rerun create a second payment); the SDK reuses it across its own
  retries of timeouts/connection errors/non-JSON answers;
- ``raise_on_idempotency_conflict=True``: on a 409 we fetch the conflicting resource ourselves
  and check it really is the one we meant (metadata; amount and currency for payments and
  refunds). A mismatch raises ``IdempotencyMismatchError``; it is never silently adopted;
- 429: wait until ``RateLimit-Reset`` (HTTP-date) and try again, a bounded number of times.
  The SDK neither retries 429 nor exposes the 429's headers, so we capture the headers of the
  last response on our own ApiClient instance;
- every SDK error mapped to ``gocardless.errors``;
- keep-alive HTTP: the SDK calls the module-level ``requests.get/post/...``, which opens a new
  TCP connection per call and rescans the proxy environment variables every time. Our
  ``_SessionApiClient`` sends the very same requests (URL, headers, body, timeout) through a
  pooled ``requests.Session``, one per thread and (base URL, token), whose proxy and CA
  settings are read from the environment once, when it is made. It keeps no cookies, like the
  one-shot calls it replaces.

Resources come back as plain dicts (the API's JSON). Lists are generators that stream through
the SDK's ``Paginator`` (newest first, as the API lists them).

An instance is not thread-safe (it remembers the last response's headers); make one per job.
"""

from __future__ import annotations

import hashlib
import http.cookiejar
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import gocardless_pro
import requests
from django.conf import settings
from gocardless_pro import errors as sdk_errors
from gocardless_pro.api_client import ApiClient
from gocardless_pro.paginator import Paginator
from gocardless_pro.rate_limit import update_rate_limit

from core.http import session_environment_pin
from gocardless import errors
from gocardless.conf import custom_base_url_allowed
from gocardless.connection_status import (
    connection_mark_needs_reauth,
    connection_refuse_custom_url,
)

CUSTOM_URL_REFUSED = (
    "This GoCardless connection uses a custom base URL, which this installation does not "
    "allow (GOCARDLESS_ALLOW_CUSTOM_BASE_URL): nothing was sent. A superuser sets its "
    "environment to live or sandbox, then connects again."
)

# Resource type (event ``resource_type`` / API path) → SDK service attribute.
SERVICES = {
    "customers": "customers",
    "customer_bank_accounts": "customer_bank_accounts",
    "mandates": "mandates",
    "payments": "payments",
    "payouts": "payouts",
    "refunds": "refunds",
    "billing_requests": "billing_requests",
    "subscriptions": "subscriptions",
    "instalment_schedules": "instalment_schedules",
    "creditors": "creditors",
    "events": "events",
}


def _utcnow() -> datetime:
    return datetime.now(tz=UTC)


def _differs(existing: dict, params: dict, name: str) -> bool:
    ours, theirs = params[name], existing.get(name)
    if name == "metadata":
        return (theirs or {}) != (ours or {})
    if name == "links":
        # The resource carries more links than we sent; ours must all be there.
        return any((theirs or {}).get(k) != v for k, v in (ours or {}).items())
    return theirs != ours


class _NoCookies(http.cookiejar.DefaultCookiePolicy):
    def set_ok(self, cookie, request):
        return False


_sessions = threading.local()
_SESSIONS_PER_THREAD = 32


def _session_for(base_url: str, access_token: str) -> requests.Session:
    """A keep-alive session for this thread, base URL and token (tokens never share one).

    ``trust_env`` is off so that requests does not rescan the environment on every call; what
    it would have found there (proxies for this URL, unless ``NO_PROXY`` excludes it, and a CA
    bundle) is read once instead and set on the session explicitly.
    """
    pool = getattr(_sessions, "pool", None)
    if pool is None:
        pool = _sessions.pool = {}
    key = (base_url, hashlib.sha256(access_token.encode()).hexdigest())
    session = pool.get(key)
    if session is None:
        if len(pool) >= _SESSIONS_PER_THREAD:
            pool.pop(next(iter(pool))).close()
        session = requests.Session()
        session_environment_pin(session=session, url=base_url)
        session.cookies.set_policy(_NoCookies())
        pool[key] = session
    return session


class _SessionApiClient(ApiClient):
    """The SDK's ApiClient, sending through a keep-alive session (see the module docstring).

    Same requests as the SDK's methods: URL, default and custom headers, JSON body, timeout;
    the rate-limit bookkeeping and ``_handle_errors`` (which we wrap) are unchanged."""

    def __init__(self, base_url, access_token, timeout) -> None:
        super().__init__(base_url, access_token, timeout=timeout)
        self._session = _session_for(base_url, access_token)
        self._defaults = ApiClient._default_headers(self)  # the user agent, computed once

    def _default_headers(self):
        return dict(self._defaults)

    def _send(self, method: str, path: str, **kwargs):
        response = self._session.request(
            method, self._url_for(path), headers=self._headers(kwargs.pop("headers")),
            timeout=self.timeout, **kwargs,
        )
        self._handle_errors(response)
        return response

    @update_rate_limit
    def get(self, path, params=None, headers=None):
        return self._send("GET", path, params=params, headers=headers)

    @update_rate_limit
    def post(self, path, body, headers=None):
        return self._send("POST", path, data=json.dumps(body), headers=headers)

    @update_rate_limit
    def put(self, path, body, headers=None):
        return self._send("PUT", path, data=json.dumps(body), headers=headers)

    @update_rate_limit
    def delete(self, path, body, headers=None):
        return self._send("DELETE", path, data=json.dumps(body), headers=headers)


class _RateLimitedService:
    """Presents ``list`` to the SDK's Paginator with our error mapping and 429 handling."""

    def __init__(self, client: GoCardlessClient, service) -> None:
        self._client = client
        self._service = service

    def list(self, params=None, **identity):
        return self._client._call(self._service.list, params=params, **identity)


class GoCardlessClient:
    def __init__(
        self,
        *,
        access_token: str,
        base_url: str,
        timeout: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime] = _utcnow,
        max_rate_limit_retries: int | None = None,
        max_rate_limit_wait: float | None = None,
        on_auth_error: Callable[[errors.AuthError], None] | None = None,
        refusal: str = "",
    ) -> None:
        if not access_token:
            raise errors.AuthError("no access token configured")
        self.timeout = timeout if timeout is not None else settings.GOCARDLESS_HTTP_TIMEOUT
        self.sdk = gocardless_pro.Client(
            access_token=access_token,
            base_url=base_url,
            timeout=self.timeout,
            raise_on_idempotency_conflict=True,
        )
        sdk_api = self.sdk._api_client
        self.sdk._api_client = _SessionApiClient(sdk_api.base_url, access_token, self.timeout)
        self._sleep = sleep
        self._now = now
        self.max_rate_limit_retries = (
            max_rate_limit_retries
            if max_rate_limit_retries is not None
            else settings.GOCARDLESS_RATE_LIMIT_RETRIES
        )
        self.max_rate_limit_wait = (
            max_rate_limit_wait
            if max_rate_limit_wait is not None
            else settings.GOCARDLESS_RATE_LIMIT_MAX_WAIT
        )
        self._on_auth_error = on_auth_error
        # Set when the token must not be sent where this client points (for_connection): every
        # call is then refused before anything leaves the process, as an AuthError, which
        # every caller already handles as "the connection needs a person".
        self._refusal = refusal
        self.last_headers: dict = {}
        self._capture_headers()

    @classmethod
    def for_connection(cls, connection, **kwargs) -> GoCardlessClient:
        """A client for a tenant's connection; a 401/403 marks it ``needs_reauth``."""

        def mark(exc: errors.AuthError) -> None:
            connection_mark_needs_reauth(connection=connection, reason=str(exc))

        if connection.environment == "custom" and not custom_base_url_allowed():
            # Saved while the installation allowed custom hosts (the simulators), or before it
            # was restricted: the token stays here until a superuser picks live or sandbox.
            kwargs["refusal"] = CUSTOM_URL_REFUSED

            def mark(exc: errors.AuthError) -> None:  # not GoCardless refusing: our own rule
                connection_refuse_custom_url(connection=connection, reason=CUSTOM_URL_REFUSED)

        kwargs.setdefault("on_auth_error", mark)
        return cls(access_token=connection.access_token, base_url=connection.base_url, **kwargs)

    # --- plumbing ----------------------------------------------------------------------------
    def _capture_headers(self) -> None:
        # The SDK drops response headers when it raises (notably RateLimit-Reset on a 429).
        api = self.sdk._api_client
        original = api._handle_errors

        def handle(response):
            self.last_headers = dict(response.headers)
            return original(response)

        api._handle_errors = handle

    def _seconds_until_reset(self) -> float:
        reset = {k.lower(): v for k, v in self.last_headers.items()}.get("ratelimit-reset")
        if not reset:
            return 1.0
        try:
            at = parsedate_to_datetime(reset)
        except (TypeError, ValueError):
            return 1.0
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        # A little past the reset, so we do not arrive a hair early and get limited again.
        return max((at - self._now()).total_seconds(), 0.0) + 0.05

    def _pace(self) -> None:
        """Wait for the window to reset when the last answer said none are left.

        Bulk work (a collection run creates thousands of payments) then runs at the
        ceiling without ever provoking a 429: waiting here costs the same time as waiting
        after a refusal, minus the refused request.
        """
        headers = {k.lower(): v for k, v in self.last_headers.items()}
        remaining = headers.get("ratelimit-remaining")
        if remaining is None or not str(remaining).strip().isdigit() or int(remaining) > 0:
            return
        wait = self._seconds_until_reset()
        self.last_headers = {}  # the next answer brings fresh numbers
        if 0 < wait <= self.max_rate_limit_wait:
            self._sleep(wait)

    def _call(self, fn, *args, **kwargs):
        if self._refusal:
            refused = errors.AuthError(self._refusal, type="custom_base_url_not_allowed")
            if self._on_auth_error is not None:
                self._on_auth_error(refused)
            raise refused
        waits = 0
        while True:
            self._pace()
            try:
                return fn(*args, **kwargs)
            except sdk_errors.RateLimitError as exc:
                wait = self._seconds_until_reset()
                if waits >= self.max_rate_limit_retries or wait > self.max_rate_limit_wait:
                    raise self._map(exc) from exc
                waits += 1
                # The 429's own headers (none left, reset at ...) are spent by this wait;
                # kept, _pace would wait for the same reset a second time.
                self.last_headers = {}
                self._sleep(wait)
            except sdk_errors.IdempotentCreationConflictError:
                raise  # handled by _create, which knows what we meant
            except (sdk_errors.GoCardlessProError, requests.RequestException) as exc:
                mapped = self._map(exc)
                if isinstance(mapped, errors.AuthError) and self._on_auth_error is not None:
                    self._on_auth_error(mapped)
                raise mapped from exc

    @staticmethod
    def _map(exc: Exception) -> errors.GoCardlessError:
        if isinstance(exc, requests.RequestException):
            return errors.RetryableError(f"network: {type(exc).__name__}")
        if isinstance(exc, sdk_errors.MalformedResponseError):
            return errors.RetryableError(
                "malformed (non-JSON) response", status=exc.status_code, type="malformed"
            )
        if not isinstance(exc, sdk_errors.ApiError):
            return errors.ApiUsageError(str(exc))
        entries = [e for e in (exc.errors or []) if isinstance(e, dict)]
        fields = {
            "status": exc.code,
            "type": exc.type or "",
            "request_id": exc.request_id or "",
            "reasons": [e["reason"] for e in entries if e.get("reason")],
            "errors": entries,
        }
        message = exc.message or type(exc).__name__
        code = exc.code or 0
        if isinstance(exc, sdk_errors.AuthenticationError | sdk_errors.PermissionsError):
            return errors.AuthError(message, **fields)
        if isinstance(exc, sdk_errors.RateLimitError):
            return errors.RetryableError(message, **fields)
        if isinstance(exc, sdk_errors.GoCardlessInternalError) or code >= 500:
            return errors.RetryableError(message, **fields)
        if isinstance(exc, sdk_errors.ValidationFailedError):
            return errors.ValidationError(message, **fields)
        if isinstance(exc, sdk_errors.InvalidStateError):
            return errors.InvalidStateError(message, **fields)
        if code == 404:
            return errors.NotFoundError(message, **fields)
        if code == 410:
            return errors.GoneError(message, **fields)
        return errors.ApiUsageError(message, **fields)

    def _iter(self, service_name: str, params: dict | None = None) -> Iterator[dict]:
        service = _RateLimitedService(self, getattr(self.sdk, service_name))
        for record in Paginator(service, dict(params or {})):
            yield record.attributes

    def _get(self, service_name: str, resource_id: str) -> dict:
        return self._call(getattr(self.sdk, service_name).get, resource_id).attributes

    def _create(
        self,
        service_name: str,
        params: dict,
        *,
        idempotency_key: str,
        match: tuple[str, ...] = ("metadata",),
    ) -> dict:
        if not idempotency_key:
            raise ValueError("every create needs our own deterministic idempotency_key")
        service = getattr(self.sdk, service_name)
        try:
            return self._call(
                service.create, params=params, headers={"Idempotency-Key": idempotency_key}
            ).attributes
        except sdk_errors.IdempotentCreationConflictError as exc:
            if not hasattr(service, "get"):
                # Billing request flows cannot be fetched (no GET in the API). A flow moves
                # no money; the caller makes a new one with a new key.
                raise errors.InvalidStateError(
                    f"{service_name} {exc.conflicting_resource_id} already exists for key "
                    f"{idempotency_key!r} and cannot be fetched; create a new one",
                    status=409,
                    type="invalid_state",
                    request_id=exc.request_id or "",
                    reasons=["idempotent_creation_conflict"],
                ) from exc
            existing = self._get(service_name, exc.conflicting_resource_id)
            differing = [n for n in match if n in params and _differs(existing, params, n)]
            if differing:
                raise errors.IdempotencyMismatchError(
                    f"idempotency key {idempotency_key!r} belongs to {existing.get('id')}, "
                    f"which differs in {', '.join(differing)}",
                    status=409,
                    type=exc.type or "invalid_state",
                    request_id=exc.request_id or "",
                    reasons=["idempotent_creation_conflict"],
                ) from exc
            return existing

    # --- creditors ---------------------------------------------------------------------------
    def creditors_list(self) -> list[dict]:
        return list(self._iter("creditors"))

    # --- customers ---------------------------------------------------------------------------
    def customer_get(self, customer_id: str) -> dict:
        return self._get("customers", customer_id)

    def customers_iter(self, params: dict | None = None) -> Iterator[dict]:
        return self._iter("customers", params)

    def customer_update_metadata(self, customer_id: str, metadata: dict) -> dict:
        return self.customer_update(customer_id, {"metadata": metadata})

    def customer_update(self, customer_id: str, params: dict) -> dict:
        """PUT /customers/{id}: customer details (name, e-mail, address, ...) and metadata."""
        return self._call(self.sdk.customers.update, customer_id, params=params).attributes

    def customer_bank_account_get(self, account_id: str) -> dict:
        return self._get("customer_bank_accounts", account_id)

    # --- mandates ----------------------------------------------------------------------------
    def mandate_get(self, mandate_id: str) -> dict:
        return self._get("mandates", mandate_id)

    def mandates_iter(self, params: dict | None = None) -> Iterator[dict]:
        return self._iter("mandates", params)

    def mandate_cancel(self, mandate_id: str, metadata: dict | None = None) -> dict:
        params = {"metadata": metadata} if metadata else None
        return self._call(self.sdk.mandates.cancel, mandate_id, params=params).attributes

    # --- billing requests --------------------------------------------------------------------
    def billing_request_create(self, *, params: dict, idempotency_key: str) -> dict:
        return self._create("billing_requests", params, idempotency_key=idempotency_key)

    def billing_request_get(self, billing_request_id: str) -> dict:
        return self._get("billing_requests", billing_request_id)

    def billing_request_cancel(self, billing_request_id: str) -> dict:
        """An action, not a create: the SDK does not retry it, and neither do we."""
        return self._call(self.sdk.billing_requests.cancel, billing_request_id).attributes

    def billing_request_flow_create(self, *, params: dict, idempotency_key: str) -> dict:
        # A repeated key raises InvalidStateError: flows have no GET to check the old one.
        return self._create(
            "billing_request_flows", params, idempotency_key=idempotency_key, match=("links",)
        )

    # --- payments ----------------------------------------------------------------------------
    def payment_create(self, *, params: dict, idempotency_key: str) -> dict:
        return self._create(
            "payments",
            params,
            idempotency_key=idempotency_key,
            match=("metadata", "amount", "currency"),
        )

    def payment_get(self, payment_id: str) -> dict:
        return self._get("payments", payment_id)

    def payments_iter(self, params: dict | None = None) -> Iterator[dict]:
        return self._iter("payments", params)

    def payment_cancel(self, payment_id: str, metadata: dict | None = None) -> dict:
        params = {"metadata": metadata} if metadata else None
        return self._call(self.sdk.payments.cancel, payment_id, params=params).attributes

    def payment_retry(self, payment_id: str, metadata: dict | None = None) -> dict:
        params = {"metadata": metadata} if metadata else None
        return self._call(self.sdk.payments.retry, payment_id, params=params).attributes

    # --- refunds -----------------------------------------------------------------------------
    def refund_create(self, *, params: dict, idempotency_key: str) -> dict:
        return self._create(
            "refunds", params, idempotency_key=idempotency_key, match=("metadata", "amount")
        )

    def refund_get(self, refund_id: str) -> dict:
        return self._get("refunds", refund_id)

    # --- payouts -----------------------------------------------------------------------------
    def payout_get(self, payout_id: str) -> dict:
        return self._get("payouts", payout_id)

    def payouts_iter(self, params: dict | None = None) -> Iterator[dict]:
        return self._iter("payouts", params)

    def payout_items_iter(self, payout_id: str) -> Iterator[dict]:
        return self._iter("payout_items", {"payout": payout_id})

    # --- plans: subscriptions and instalment schedules (GoCardless creates their payments) --
    def subscription_get(self, subscription_id: str) -> dict:
        return self._get("subscriptions", subscription_id)

    def subscriptions_iter(self, params: dict | None = None) -> Iterator[dict]:
        return self._iter("subscriptions", params)

    def instalment_schedule_get(self, schedule_id: str) -> dict:
        return self._get("instalment_schedules", schedule_id)

    def instalment_schedules_iter(self, params: dict | None = None) -> Iterator[dict]:
        return self._iter("instalment_schedules", params)

    # --- events ------------------------------------------------------------------------------
    def events_page(self, params: dict | None = None) -> tuple[list[dict], str | None]:
        """One page (newest first) and the ``after`` cursor of the next older page."""
        page = self._call(self.sdk.events.list, params=dict(params or {}))
        return [r.attributes for r in page.records], page.after

    def events_iter(self, params: dict | None = None) -> Iterator[dict]:
        return self._iter("events", params)

    def event_get(self, event_id: str) -> dict:
        return self._get("events", event_id)

    # --- generic (event processing) ----------------------------------------------------------
    def resource_get(self, resource_type: str, resource_id: str) -> dict:
        service = SERVICES.get(resource_type)
        if service is None:
            raise errors.ApiUsageError(f"no fetch for resource type {resource_type!r}")
        return self._get(service, resource_id)


# --- partner OAuth (connect.gocardless.com): the token exchange is HTTP to GoCardless too ----
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def oauth_exchange_code(
    *,
    token_url: str,
    code: str,
    redirect_uri: str,
    client_id: str,
    client_secret: str,
    timeout: float | None = None,
) -> dict:
    """Exchange an authorisation code (form-encoded POST, notes §1.5); returns the token JSON.

    GoCardless adds ``organisation_id`` (the routing key of partner webhooks) to the standard
    fields. Errors: AuthError when GoCardless refuses the code or our app credentials (RFC
    6749 §5.2), RetryableError for the network, 5xx and non-JSON answers. Plain HTTP only to
    loopback (the local simulator); redirects are not followed (the client secret is in the
    body).
    """
    parts = urlsplit(token_url)
    if parts.scheme != "https" and parts.hostname not in LOOPBACK:
        raise errors.ApiUsageError("the GoCardless Connect URL must use https")
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
            "client_id": client_id, "client_secret": client_secret}
    try:
        response = requests.post(
            token_url, data=form, headers={"Accept": "application/json"}, allow_redirects=False,
            timeout=timeout if timeout is not None else settings.GOCARDLESS_HTTP_TIMEOUT,
        )
    except requests.RequestException as exc:
        raise errors.RetryableError(f"token exchange failed: {type(exc).__name__}") from exc
    try:
        body = response.json()
    except ValueError:
        body = None
    status = response.status_code
    if status == 200 and isinstance(body, dict):
        return body
    if 400 <= status < 500 and isinstance(body, dict) and isinstance(body.get("error"), str):
        error = re.sub(r"[^a-z_]", "", body["error"])[:60] or "error"
        raise errors.AuthError(f"token exchange refused: {error}", status=status, type="oauth")
    if 400 <= status < 500 and status != 429:
        raise errors.AuthError(f"token exchange refused: HTTP {status}", status=status,
                               type="oauth")
    raise errors.RetryableError(f"token exchange failed: HTTP {status}", status=status)
