"""OAuth rules of the Exact simulator (API-NOTES §1): codes, lifetimes, the 570 s floor,
rotation, expiry, consent page and the lost-response fault."""

from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.plugins.exact_sim import DIVISION, REDIRECT_URI, ExactApi

TOKEN_CALLS = "POST /api/oauth2/token grant_type=refresh_token"


def _location_params(resp):
    return parse_qs(urlsplit(resp.headers["Location"]).query)


def test_code_exchange_returns_exact_token_shape(exact_simulator, exact_division):
    api = ExactApi(exact_simulator)
    resp = api.token(grant_type="authorization_code", code=api.authorize_code(),
                     redirect_uri=REDIRECT_URI)
    assert resp.status_code == 200
    body = resp.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert body["expires_in"] == "600"  # a string, as Exact sends it
    assert body["token_type"] == "bearer"


def test_auth_redirect_keeps_state(exact_simulator):
    resp = requests.get(f"{exact_simulator.url}/api/oauth2/auth", allow_redirects=False, params={
        "client_id": "sim-client-id", "redirect_uri": REDIRECT_URI, "response_type": "code",
        "state": "xyz"})
    assert resp.status_code == 302
    assert resp.headers["Location"].startswith(REDIRECT_URI)
    params = _location_params(resp)
    assert params["state"] == ["xyz"] and params["code"]


def test_code_is_single_use(exact_simulator, exact_division):
    api = ExactApi(exact_simulator)
    code = api.authorize_code()
    first = api.token(grant_type="authorization_code", code=code, redirect_uri=REDIRECT_URI)
    again = api.token(grant_type="authorization_code", code=code, redirect_uri=REDIRECT_URI)
    assert first.status_code == 200
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


def test_code_expires_after_three_minutes(exact_simulator, exact_division):
    api = ExactApi(exact_simulator)
    code = api.authorize_code()
    exact_simulator.advance(181)
    resp = api.token(grant_type="authorization_code", code=code, redirect_uri=REDIRECT_URI)
    assert resp.status_code == 400
    assert resp.json()["error"] == "invalid_grant"


def test_code_exchange_checks_redirect_uri_and_credentials(exact_simulator, exact_division):
    api = ExactApi(exact_simulator)
    wrong_uri = api.token(grant_type="authorization_code", code=api.authorize_code(),
                          redirect_uri="https://evil.example/cb")
    assert wrong_uri.status_code == 400
    bad_secret = ExactApi(exact_simulator, client_secret="nope")
    resp = bad_secret.token(grant_type="authorization_code", code=api.authorize_code(),
                            redirect_uri=REDIRECT_URI)
    assert resp.status_code == 400
    assert resp.json() == {"error": "invalid_request"}


def test_unknown_grant_type(exact_simulator):
    resp = ExactApi(exact_simulator).token(grant_type="client_credentials")
    assert resp.status_code == 400
    assert resp.json()["error"] == "unsupported_grant_type"


def test_access_token_works_then_expires_after_600s(exact_api, exact_simulator):
    assert exact_api.get("current/Me").status_code == 200
    exact_simulator.advance(599)
    assert exact_api.get("current/Me").status_code == 200
    exact_simulator.advance(1)
    resp = exact_api.get("current/Me")
    assert resp.status_code == 401
    assert resp.json()["error"]["message"]["value"] == "Unauthorized"
    assert resp.headers["WWW-Authenticate"] == "Bearer"


def test_missing_or_unknown_token_is_401(exact_simulator, exact_division):
    resp = requests.get(f"{exact_simulator.url}/api/v1/current/Me")
    assert resp.status_code == 401
    resp = requests.get(f"{exact_simulator.url}/api/v1/current/Me",
                        headers={"Authorization": "Bearer made-up"})
    assert resp.status_code == 401


@pytest.mark.parametrize("elapsed", [0, 300, 569])
def test_refresh_before_570s_is_rejected_with_reason(exact_api, exact_simulator, elapsed):
    exact_simulator.advance(elapsed)
    before = dict(exact_api.tokens)
    resp = exact_api.refresh()
    assert resp.status_code == 400
    assert resp.json() == {"error": "access_denied",
                           "error_description": "Rate limit exceeded: access_token not expired"}
    assert resp.headers["Reason"] == (
        "TooEarlyToRefreshTokens: Rate limit exceeded: access_token not expired")
    # The refused refresh did not rotate the chain: the same refresh token works later.
    exact_simulator.advance(570 - elapsed)
    exact_api.tokens = before
    assert exact_api.refresh().status_code == 200


def test_refresh_at_570s_rotates_both_tokens(exact_api, exact_simulator):
    old = dict(exact_api.tokens)
    exact_simulator.advance(570)
    resp = exact_api.refresh()
    assert resp.status_code == 200
    new = resp.json()
    assert new["refresh_token"] != old["refresh_token"]
    assert new["access_token"] != old["access_token"]
    assert new["expires_in"] == "600"
    assert exact_api.get("current/Me").status_code == 200


def test_reused_refresh_token_is_401_old_refresh_token_used(exact_api, exact_simulator):
    old_refresh = exact_api.tokens["refresh_token"]
    exact_simulator.advance(570)
    assert exact_api.refresh().status_code == 200
    exact_simulator.advance(570)
    resp = exact_api.token(grant_type="refresh_token", refresh_token=old_refresh)
    assert resp.status_code == 401
    assert resp.json() == {"error": "unauthorized_client",
                           "error_description": "Old refresh token used."}
    # Deliberate choice (docs): the reuse does not revoke the chain's current token.
    assert exact_api.refresh().status_code == 200


def test_unknown_refresh_token_is_invalid_grant(exact_api):
    resp = exact_api.token(grant_type="refresh_token", refresh_token="sim-rt-garbage")
    assert resp.status_code == 400
    assert resp.json()["error"] == "invalid_grant"


def test_refresh_token_expires_30_days_after_last_use(exact_api, exact_simulator):
    exact_simulator.advance(30 * 86400 + 1)
    resp = exact_api.refresh()
    assert resp.status_code == 400
    body = resp.json()
    assert body["error"] == "invalid_request"
    assert body["error_description"].startswith("The refresh token expired at ")
    assert " and it is now " in body["error_description"]


def test_refresh_token_lives_30_days_from_each_use(exact_api, exact_simulator):
    for _ in range(3):
        exact_simulator.advance(29 * 86400)
        assert exact_api.refresh().status_code == 200


def test_lost_token_response_rotates_chain_and_counts_once(exact_api, exact_simulator):
    exact_simulator.advance(570)
    exact_simulator.inject("lose_token_response")
    held = exact_api.tokens["refresh_token"]
    with pytest.raises(requests.ConnectionError):
        exact_api.refresh()
    counts = exact_simulator.call_counts()
    assert counts[TOKEN_CALLS] == {"total": 1, "dropped": 1}
    # The server did issue new tokens: the token the client still holds is now old.
    exact_simulator.advance(570)
    resp = exact_api.token(grant_type="refresh_token", refresh_token=held)
    assert resp.status_code == 401
    assert resp.json()["error_description"] == "Old refresh token used."


def test_timeout_fault_on_token_endpoint_holds_then_drops(exact_api, exact_simulator):
    exact_simulator.advance(570)
    exact_simulator.inject("lose_token_response", seconds=0.3)
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.post(f"{exact_simulator.url}/api/oauth2/token", timeout=0.1, data={
            "grant_type": "refresh_token", "refresh_token": exact_api.tokens["refresh_token"],
            "client_id": "sim-client-id", "client_secret": "sim-client-secret"})


def test_token_calls_are_counted_per_grant(exact_api, exact_simulator):
    exact_simulator.advance(570)
    exact_api.refresh()
    exact_api.refresh()  # too early
    counts = exact_simulator.call_counts()
    assert counts["POST /api/oauth2/token grant_type=authorization_code"]["total"] == 1
    assert counts[TOKEN_CALLS] == {"total": 2, "200": 1, "400": 1}


def test_token_endpoint_does_not_use_api_rate_limit(exact_api, exact_simulator):
    exact_simulator.settings(minutely_limit=1)
    assert exact_api.get("current/Me").status_code == 200
    exact_simulator.advance(570)
    resp = exact_api.refresh()
    assert resp.status_code == 200
    assert "X-RateLimit-Limit" not in resp.headers


# --- consent page ---------------------------------------------------------------------


def _auth(sim, **extra):
    return requests.get(f"{sim.url}/api/oauth2/auth", allow_redirects=False, params={
        "client_id": "sim-client-id", "redirect_uri": REDIRECT_URI, "response_type": "code",
        "state": "s1", **extra})


def test_interactive_consent_page_allow_and_deny(exact_simulator, exact_division):
    exact_simulator.settings(consent="interactive")
    page = _auth(exact_simulator)
    assert page.status_code == 200
    assert "text/html" in page.headers["Content-Type"]
    assert f"value='{DIVISION}'" in page.text
    form = {"client_id": "sim-client-id", "redirect_uri": REDIRECT_URI,
            "response_type": "code", "state": "s1", "division": str(DIVISION)}
    allow = requests.post(f"{exact_simulator.url}/api/oauth2/auth", allow_redirects=False,
                          data={**form, "decision": "allow"})
    assert allow.status_code == 302 and _location_params(allow)["code"]
    deny = requests.post(f"{exact_simulator.url}/api/oauth2/auth", allow_redirects=False,
                         data={**form, "decision": "deny"})
    assert deny.status_code == 302
    assert _location_params(deny) == {"error": ["access_denied"], "state": ["s1"]}


def test_consent_switch_in_query_and_settings(exact_simulator):
    exact_simulator.settings(consent="interactive")
    assert _location_params(_auth(exact_simulator, sim_consent="allow"))["code"]
    exact_simulator.settings(consent="deny")
    assert _location_params(_auth(exact_simulator))["error"] == ["access_denied"]


def test_auth_rejects_unknown_client_and_unregistered_redirect(exact_simulator):
    resp = requests.get(f"{exact_simulator.url}/api/oauth2/auth", allow_redirects=False,
                        params={"client_id": "other", "redirect_uri": REDIRECT_URI})
    assert resp.status_code == 400
    exact_simulator.settings(redirect_uris=["https://only.example/cb"])
    assert _auth(exact_simulator).status_code == 400


def test_consent_limited_to_some_divisions_gives_403_elsewhere(exact_simulator):
    exact_simulator.seed_division(division=111)
    exact_simulator.seed_division(division=222)
    exact_simulator.settings(consent_divisions=[111])
    api = ExactApi(exact_simulator).connect()
    assert api.get("111/financial/Journals").status_code == 200
    resp = api.get("222/financial/Journals")
    assert resp.status_code == 403
    assert resp.headers["Reason"] == "NoDivisionAccess"
    assert resp.json() == {"error": {"code": "", "message": {
        "lang": "", "value": "Forbidden - WrongDivision"}}}
    divisions = api.get("111/system/Divisions").json()["d"]["results"]
    assert [d["Code"] for d in divisions] == [111]


def test_user_with_several_divisions_and_another_user(exact_simulator):
    exact_simulator.seed_division(division=111)
    exact_simulator.seed_division(division=222)
    exact_simulator.seed_division(division=333, users=[])
    clerk = exact_simulator.seed_user("clerk", divisions=[333])
    api = ExactApi(exact_simulator).connect()
    me = api.get("current/Me").json()["d"]["results"][0]
    assert me["CurrentDivision"] == 111
    assert [d["Code"] for d in api.get("111/system/Divisions").json()["d"]["results"]] == [
        111, 222]
    assert api.get("333/financial/Journals").status_code == 403

    exact_simulator.settings(consent_user=clerk["UserID"])
    clerk_api = ExactApi(exact_simulator).connect()
    assert clerk_api.get("current/Me").json()["d"]["results"][0]["UserName"] == "clerk"
    assert clerk_api.get("333/financial/Journals").status_code == 200
    assert clerk_api.get("111/financial/Journals").status_code == 403


def test_client_credentials_may_come_as_basic_auth(exact_simulator, exact_division):
    api = ExactApi(exact_simulator)
    resp = requests.post(f"{exact_simulator.url}/api/oauth2/token",
                         auth=("sim-client-id", "sim-client-secret"), data={
                             "grant_type": "authorization_code", "code": api.authorize_code(),
                             "redirect_uri": REDIRECT_URI})
    assert resp.status_code == 200
    assert resp.json()["expires_in"] == "600"


# --- one chain per (app, Exact user): a new consent obsoletes the older chain -------------


def test_second_consent_of_the_same_user_obsoletes_the_first_chain_once_used(
    exact_simulator, exact_division
):
    """API-NOTES addendum (2026-12): the same Exact user associated twice with the same app;
    the older chain is obsolete once the newer one is used, its refresh is a 400."""
    first = ExactApi(exact_simulator).connect()
    second = ExactApi(exact_simulator).connect()
    exact_simulator.advance(580)
    # not used yet: the first chain still refreshes
    assert [c["obsolete"] for c in exact_simulator.token_chains()] == [False, False]
    assert first.refresh().status_code == 200
    exact_simulator.advance(580)
    assert second.refresh().status_code == 200  # the newer chain's first use
    assert [c["obsolete"] for c in exact_simulator.token_chains()] == [True, False]
    exact_simulator.advance(580)
    resp = first.refresh()
    assert resp.status_code == 400
    assert resp.json() == {"error": "invalid_grant", "error_description": "Old refresh token used."}
    assert second.refresh().status_code == 200


def test_an_api_call_is_a_first_use_too(exact_simulator, exact_division):
    first = ExactApi(exact_simulator).connect()
    second = ExactApi(exact_simulator).connect()
    assert second.get("current/Me").status_code == 200
    # the old chain's access token lives out its 600 s; its refresh token is dead
    assert first.get("current/Me").status_code == 200
    exact_simulator.advance(580)
    assert first.refresh().status_code == 400


def test_another_users_consent_obsoletes_nothing(exact_simulator, exact_division):
    clerk = exact_simulator.seed_user("clerk", divisions=[DIVISION])
    first = ExactApi(exact_simulator).connect()
    exact_simulator.settings(consent_user=clerk["UserID"])
    other = ExactApi(exact_simulator).connect()
    assert other.get("current/Me").status_code == 200
    exact_simulator.advance(580)
    assert first.refresh().status_code == 200
    assert exact_simulator.token_chains(user_id=clerk["UserID"])[0]["used"] is True
