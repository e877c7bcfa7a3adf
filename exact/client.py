"""The only module that speaks HTTP to Exact Online.

- ``ExactClient``: REST calls for one connection — a timeout on every call, the shared rate
  limiter (exact/ratelimit.py), ``$select`` always, ``__next`` followed verbatim, the three
  envelope shapes, errors with endpoint / status / Exact's message / ``Reason``, and retries
  only where they are safe: GETs on timeouts and 5xx (with backoff); any method after a 429
  or a 401 (Exact did not process those); never a POST after a timeout or a 5xx.
- ``oauth_*``: the OAuth2 calls, through requests-oauthlib. A compliance hook turns every
  non-200 token answer into ``ExactTokenError`` (status, ``error``, ``Reason``) before
  oauthlib parses it, and requests' transport errors into ``ExactTokenLost``; there is no
  auto-refresh and no retry on the token endpoint (see exact/tokens.py for why).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.utils import timezone
from oauthlib.oauth2 import OAuth2Error
from requests_oauthlib import OAuth2Session

from core.http import session_environment_pin
from exact.connections import connection_pause
from exact.errors import (
    ExactApiError,
    ExactBadRequest,
    ExactDailyBudgetExhausted,
    ExactNotFound,
    ExactTokenLost,
    ExactTransportError,
    ExactUnauthorized,
    api_error_from_response,
    token_refusal_from_response,
)
from exact.odata import unwrap
from exact.ratelimit import ExactRateBudgetBusy, RateLimiter
from exact.tokens import connection_access_token

logger = logging.getLogger(__name__)

GET_RETRIES = 3
MAX_429_RETRIES = 3
BACKOFF_SECONDS = (0.5, 2.0, 5.0)
USER_AGENT = "ml-connector (Exact Online integration)"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


# --- OAuth --------------------------------------------------------------------------------
_insecure_lock = threading.Lock()


@contextlib.contextmanager
def _transport_allowed(url: str):
    """oauthlib refuses plain http; allow it for loopback only (the local simulator)."""
    parts = urlsplit(url)
    if parts.scheme == "https" or parts.hostname not in LOOPBACK:
        yield
        return
    with _insecure_lock:
        previous = os.environ.get("OAUTHLIB_INSECURE_TRANSPORT")
        os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"
        try:
            yield
        finally:
            if previous is None:
                os.environ.pop("OAUTHLIB_INSECURE_TRANSPORT", None)
            else:
                os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = previous


def _oauth_session(*, state: str | None = None) -> OAuth2Session:
    session = OAuth2Session(
        client_id=settings.EXACT_CLIENT_ID,
        redirect_uri=settings.EXACT_REDIRECT_URI,
        state=state,
    )
    session.headers["User-Agent"] = USER_AGENT

    def refuse_non_200(response: requests.Response) -> requests.Response:
        # Before oauthlib parses it: a refusal keeps Exact's own words, and a 200 without a
        # new refresh token is refused (oauthlib would silently keep the old one).
        refusal = token_refusal_from_response(response)
        if refusal is not None:
            raise refusal
        return response

    session.register_compliance_hook("access_token_response", refuse_non_200)
    session.register_compliance_hook("refresh_token_response", refuse_non_200)
    return session


def oauth_authorization_url(*, base_url: str, state: str) -> str:
    url = f"{base_url}/api/oauth2/auth"
    try:
        with _transport_allowed(url):
            auth_url, _ = _oauth_session(state=state).authorization_url(url, force_login="0")
    except OAuth2Error as exc:  # e.g. a plain-http host that is not loopback
        raise ValueError(f"{url}: {exc.description or exc.error}") from exc
    return auth_url


def _token_payload(token: dict) -> dict:
    return {
        "access_token": token["access_token"],
        "refresh_token": token["refresh_token"],
        "expires_in": int(token.get("expires_in") or 600),
    }


def oauth_code_exchange(*, base_url: str, code: str) -> dict:
    """Exchange an authorization code (single use, ~3 minutes) for the first token pair."""
    url = f"{base_url}/api/oauth2/token"
    session = _oauth_session()
    try:
        with _transport_allowed(url):
            token = session.fetch_token(
                url,
                code=code,
                client_secret=settings.EXACT_CLIENT_SECRET,
                include_client_id=True,
                timeout=settings.EXACT_TOKEN_TIMEOUT,
            )
    except requests.RequestException as exc:
        raise ExactTokenLost(
            f"No answer from Exact's token endpoint ({type(exc).__name__})"
        ) from exc
    return _token_payload(token)


def oauth_refresh(*, base_url: str, refresh_token: str) -> dict:
    """One refresh-token grant. Exact rotates the refresh token on every use."""
    url = f"{base_url}/api/oauth2/token"
    session = _oauth_session()
    try:
        with _transport_allowed(url):
            token = session.refresh_token(
                url,
                refresh_token=refresh_token,
                client_id=settings.EXACT_CLIENT_ID,
                client_secret=settings.EXACT_CLIENT_SECRET,
                timeout=settings.EXACT_TOKEN_TIMEOUT,
            )
    except requests.RequestException as exc:
        raise ExactTokenLost(
            f"No answer from Exact's token endpoint ({type(exc).__name__})"
        ) from exc
    return _token_payload(token)


# --- REST ---------------------------------------------------------------------------------
class ExactClient:
    """REST calls for one ``ExactConnection``. Not thread-safe: one per thread/job."""

    def __init__(
        self,
        connection,
        *,
        session: requests.Session | None = None,
        clock: Callable[[], datetime] = timezone.now,
        sleep: Callable[[float], None] = time.sleep,
        timeout: float | None = None,
        base_url: str | None = None,
        wait_for_budget: bool = True,
    ):
        """``base_url``: only while a consent is being completed, when the new tokens are not
        stored yet and belong to the connection's region (``connection.base_url``). Otherwise
        calls go to the host of the connection's grant, which issued its tokens.

        ``wait_for_budget=False``: when the division's minute is spent (or Exact answers 429)
        raise ``ExactRateBudgetBusy`` instead of sleeping until the reset (exact/ratelimit.py);
        for background work that can be put off, so a worker moves on to other companies."""
        self.connection = connection
        self._base_url = base_url
        self.session = session or requests.Session()
        # Our own session: the environment's proxy and CA bundle are read at its first call
        # (core.http.session_environment_pin), not on every call. A session handed in is
        # the caller's to set up.
        self._pin_environment = session is None
        self.session.headers.update({"Accept": "application/json", "User-Agent": USER_AGENT})
        self.clock = clock
        self.sleep = sleep
        self.timeout = timeout or settings.EXACT_HTTP_TIMEOUT
        self.wait_for_budget = wait_for_budget
        self.calls = 0  # HTTP requests sent by this client (for SyncRun and the benchmark)
        self.status_counts: dict[int, int] = {}
        self._limiters: dict[int, RateLimiter] = {}

    # --- plumbing --------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        # ExactHostNotAllowed for a custom host the installation does not allow: raised before
        # anything (a bearer token, a budget reservation) is sent or stored.
        return (self._base_url or self.connection.api_base_url).rstrip("/")

    def limiter(self, division: int) -> RateLimiter:
        if division not in self._limiters:
            self._limiters[division] = RateLimiter(
                client_id=settings.EXACT_CLIENT_ID,
                host=self.base_url,  # only this host's answers count for its budget
                division=division,
                clock=self.clock,
                sleep=self.sleep,
            )
        return self._limiters[division]

    def _division_url(self, path: str, division: int | None = None) -> str:
        return f"{self.base_url}/api/v1/{division or self.connection.division}/{path}"

    def _access_token(self, *, after_401: bool = False) -> str:
        # tokens.py decides when to refresh and holds the lock; the grant itself is an HTTP
        # call to Exact, so it is this module's and is handed in (tokens.py imports no client).
        return connection_access_token(
            connection=self.connection, token_endpoint=oauth_refresh, after_401=after_401
        )

    def request(
        self,
        method: str,
        url: str,
        *,
        params: dict | None = None,
        json: Any = None,
        division: int | None = None,
        token: str | None = None,
    ) -> requests.Response:
        """One logical call: rate-limited, authenticated, retried only where safe."""
        try:
            return self._request(
                method, url, params=params, json=json, division=division, token=token
            )
        except ExactDailyBudgetExhausted as exc:
            # The whole tenant waits for Exact's daily reset; the admin shows until when.
            if self.connection.pk and division == self.connection.division:
                connection_pause(connection=self.connection, until=exc.reset_at)
            raise

    def _request(self, method, url, *, params, json, division, token) -> requests.Response:
        endpoint = urlsplit(url).path
        self._check_same_host(url)  # the bearer token goes to the grant's host only
        if self._pin_environment:
            session_environment_pin(session=self.session, url=url)  # one host: see above
            self._pin_environment = False
        limiter = self.limiter(division) if division else None
        attempts = 0
        rate_limited = 0
        auth_retried = False
        while True:
            if limiter is not None:
                limiter.acquire(wait=self.wait_for_budget)
            bearer = token or self._access_token()
            self.calls += 1
            try:
                response = self.session.request(
                    method,
                    url,
                    params=params,
                    json=json,
                    headers=self._headers(method, bearer),
                    timeout=self.timeout,
                    allow_redirects=False,
                )
            except requests.RequestException as exc:
                if method == "GET" and attempts < GET_RETRIES:
                    self._backoff(attempts)
                    attempts += 1
                    continue
                raise ExactTransportError(
                    f"no answer from Exact ({type(exc).__name__})",
                    method=method,
                    endpoint=endpoint,
                ) from exc
            self.status_counts[response.status_code] = (
                self.status_counts.get(response.status_code, 0) + 1
            )
            if limiter is not None:
                limiter.record(response.headers)
            status = response.status_code
            if status == 429 and limiter is not None and rate_limited < MAX_429_RETRIES:
                rate_limited += 1
                try:
                    wait = limiter.after_429(response.headers)
                except ExactDailyBudgetExhausted as exc:
                    exc.method, exc.endpoint = method, endpoint
                    raise
                if not self.wait_for_budget:
                    # Exact did not process it; the caller puts the work off to the reset.
                    raise ExactRateBudgetBusy(
                        "Exact answered 429: the division's minute is spent",
                        reset_at=self.clock() + timedelta(seconds=wait),
                    )
                limiter._wait(wait)
                continue
            if status == 401 and token is None and not auth_retried:
                # Another process may have refreshed; or the token died early. Once.
                auth_retried = True
                token = None
                self._access_token(after_401=True)
                continue
            if status >= 500 and method == "GET" and attempts < GET_RETRIES:
                self._backoff(attempts)
                attempts += 1
                continue
            if status >= 400:
                raise api_error_from_response(method=method, endpoint=endpoint, response=response)
            return response

    @staticmethod
    def _headers(method: str, bearer: str) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {bearer}"}
        if method == "POST":
            # Without it Exact answers a POST with the new entity's properties left NULL
            # (Exact's REST tips; picqer sends it on every write): EntryNumber and friends
            # would be missing from what posting.py records.
            headers["Prefer"] = "return=representation"
        return headers

    def _backoff(self, attempt: int) -> None:
        self.sleep(BACKOFF_SECONDS[min(attempt, len(BACKOFF_SECONDS) - 1)])

    def _json(self, response: requests.Response, method: str, endpoint: str) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            raise ExactApiError(
                "Exact answered with something that is not JSON",
                method=method,
                endpoint=endpoint,
                status=response.status_code,
            ) from exc

    def _check_same_host(self, url: str) -> None:
        # The bearer token must never travel to a host other than the connection's.
        ours, theirs = urlsplit(self.base_url), urlsplit(url)
        if (theirs.scheme, theirs.netloc) != (ours.scheme, ours.netloc):
            raise ExactApiError(f"refused to call another host: {theirs.netloc}")

    # --- reading ---------------------------------------------------------------------------
    def iter_pages(
        self,
        path: str,
        *,
        select: list[str] | tuple[str, ...],
        filter: str | None = None,
        top: int | None = None,
        orderby: str | None = None,
        division: int | None = None,
        token: str | None = None,
    ) -> Iterator[list[dict]]:
        """Yield one page of rows at a time, following ``d.__next`` exactly as given."""
        if not select:
            raise ValueError("Exact needs $select: name the fields")
        division = division or self.connection.division
        url: str | None = self._division_url(path, division)
        params: dict | None = {"$select": ",".join(select)}
        if filter:
            params["$filter"] = filter
        if top is not None:
            params["$top"] = str(top)
        if orderby:
            params["$orderby"] = orderby
        while url:
            response = self.request("GET", url, params=params, division=division, token=token)
            try:
                rows, next_url = unwrap(self._json(response, "GET", urlsplit(url).path))
            except ValueError as exc:
                raise ExactApiError(str(exc), method="GET", endpoint=urlsplit(url).path) from exc
            yield rows
            if next_url:
                self._check_same_host(next_url)
            url, params = next_url, None  # __next already carries every query option

    def iter_rows(self, path: str, **kwargs) -> Iterator[dict]:
        for page in self.iter_pages(path, **kwargs):
            yield from page

    def get_entity(
        self, path: str, key_literal: str, *, select: list[str] | tuple[str, ...]
    ) -> dict | None:
        """``path(key)`` with ``$select``; None when Exact says 404."""
        url = self._division_url(f"{path}({key_literal})")
        try:
            response = self.request(
                "GET", url, params={"$select": ",".join(select)}, division=self.connection.division
            )
        except ExactNotFound:
            return None
        rows, _ = unwrap(self._json(response, "GET", urlsplit(url).path))
        return rows[0] if rows else None

    def post(self, path: str, body: dict) -> dict:
        url = self._division_url(path)
        response = self.request("POST", url, json=body, division=self.connection.division)
        if not response.content:
            return {}
        rows, _ = unwrap(self._json(response, "POST", urlsplit(url).path))
        return rows[0] if rows else {}

    def put(self, path: str, key_literal: str, body: dict) -> None:
        """Update one entity; Exact answers 204 with an empty body. Never retried blindly."""
        url = self._division_url(f"{path}({key_literal})")
        self.request("PUT", url, json=body, division=self.connection.division)

    def delete(
        self, path: str, key_literal: str, *, division: int | None = None, token: str | None = None
    ) -> None:
        division = division or self.connection.division
        url = self._division_url(f"{path}({key_literal})", division)
        self.request("DELETE", url, division=division, token=token)

    # --- the few calls that are not collections of the chosen division -----------------------
    def me(self, *, token: str | None = None) -> dict:
        url = f"{self.base_url}/api/v1/current/Me"
        # Exact counts current/Me against a division's budget (the simulator: the user's
        # current one); charging it to ours when we have one keeps the limiter conservative.
        response = self.request(
            "GET",
            url,
            params={"$select": "UserID,UserName,FullName,Email,CurrentDivision"},
            token=token,
            division=self.connection.division or None,
        )
        rows, _ = unwrap(self._json(response, "GET", "/api/v1/current/Me"))
        if not rows:
            raise ExactBadRequest("current/Me returned no user", endpoint="/api/v1/current/Me")
        return rows[0]

    def divisions(self, *, any_division: int, token: str | None = None) -> list[dict]:
        """Divisions this consent reaches. Exact ignores the division in this URL."""
        return list(
            self.iter_rows(
                "system/Divisions",
                select=("Code", "Description", "Currency", "Country", "Status"),
                division=any_division,
                token=token,
            )
        )


__all__ = [
    "ExactClient",
    "ExactUnauthorized",
    "oauth_authorization_url",
    "oauth_code_exchange",
    "oauth_refresh",
]
