"""Partner OAuth of the GoCardless simulator (API-NOTES-GOCARDLESS §1.3, §1.5): the consent
page, codes, the token endpoint, tokens that act for one organisation, the control API."""

import json
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import gocardless_pro
import pytest
import requests
from oauthlib.oauth2 import InvalidClientError, InvalidGrantError
from requests_oauthlib import OAuth2Session

from tests.plugins.gocardless_sim import SIM_ACCESS_TOKEN

CLIENT_ID = "sim-gc-client-id"
CLIENT_SECRET = "sim-gc-client-secret"
REDIRECT_URI = "http://127.0.0.1:8000/connect/gocardless/callback/"


@pytest.fixture(autouse=True)
def _loopback_http(monkeypatch):
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the simulator speaks plain http


def control(sim, method, path, body=None):
    response = requests.request(method, f"{sim.url}/_control/{path}", json=body, timeout=5)
    return response.status_code, response.json()


def session(scope="read_write"):
    return OAuth2Session(CLIENT_ID, redirect_uri=REDIRECT_URI, scope=[scope])


def authorize(sim, oauth=None, **extra):
    """GET the authorisation URL as a browser would (no redirects followed)."""
    oauth = oauth or session()
    url, state = oauth.authorization_url(f"{sim.url}/oauth/authorize", **extra)
    return requests.get(url, allow_redirects=False, timeout=5), state


def location(response):
    assert response.status_code == 302, response.text
    parts = urlsplit(response.headers["Location"])
    return f"{parts.scheme}://{parts.netloc}{parts.path}", {
        k: v[0] for k, v in parse_qs(parts.query).items()}


def code_for(sim, organisation=None, scope="read_write"):
    extra = {"sim_consent": "allow"}
    if organisation:
        extra["sim_organisation"] = organisation
    response, _ = authorize(sim, session(scope), **extra)
    return location(response)[1]["code"]


def exchange(sim, code, **overrides):
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
            "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, **overrides}
    return requests.post(f"{sim.url}/oauth/access_token", data=form, timeout=5)


def connect(sim, organisation=None, scope="read_write"):
    """The product's way: OAuth2Session.fetch_token with the client id in the form."""
    oauth = session(scope)
    response, _ = authorize(sim, oauth, sim_consent="allow",
                            **({"sim_organisation": organisation} if organisation else {}))
    return oauth.fetch_token(f"{sim.url}/oauth/access_token",
                             authorization_response=response.headers["Location"],
                             client_secret=CLIENT_SECRET, include_client_id=True, timeout=5)


def sdk(sim, token):
    return gocardless_pro.Client(access_token=token, base_url=sim.url, timeout=5)


class FormParser(HTMLParser):
    """The consent form's inputs: hidden fields, radio choices, buttons."""

    def __init__(self):
        super().__init__()
        self.action = None
        self.hidden, self.radios, self.buttons, self.checked = {}, [], [], None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.action = attrs["action"]
        elif tag == "input" and attrs.get("type") == "hidden":
            self.hidden[attrs["name"]] = attrs["value"]
        elif tag == "input" and attrs.get("type") == "radio":
            self.radios.append(attrs["value"])
            if "checked" in attrs:
                self.checked = attrs["value"]
        elif tag == "button":
            self.buttons.append(attrs["value"])


def consent_form(response):
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    parser = FormParser()
    parser.feed(response.text)
    return parser


# -- the consent page --------------------------------------------------------------------

def test_consent_page_offers_every_organisation_and_keeps_the_request(gocardless_simulator):
    sim = gocardless_simulator
    second = sim.add_organisation(name="Second Ltd", email="owner@second.test")
    response, state = authorize(sim, initial_view="login",
                                **{"prefill[email]": "owner@second.test"})
    form = consent_form(response)
    assert form.action == "/oauth/authorize"
    assert form.radios == ["OR000SIM", second["id"]]
    assert form.checked == second["id"]  # prefill[email] picks the account it belongs to
    assert form.buttons == ["allow", "deny"]
    assert form.hidden["state"] == state and form.hidden["scope"] == "read_write"
    assert form.hidden["redirect_uri"] == REDIRECT_URI
    assert "Second Ltd" in response.text and "read and write access" in response.text
    assert "owner@second.test" in response.text and "login" in response.text


def test_allow_on_the_page_redirects_with_code_and_state(gocardless_simulator):
    sim = gocardless_simulator
    second = sim.add_organisation(name="Second Ltd")
    oauth = session()
    response, state = authorize(sim, oauth)
    form = consent_form(response)
    posted = requests.post(f"{sim.url}{form.action}", allow_redirects=False, timeout=5,
                           data={**form.hidden, "organisation": second["id"],
                                 "decision": "allow"})
    target, params = location(posted)
    assert target == REDIRECT_URI and params["state"] == state and params["code"]
    token = oauth.fetch_token(f"{sim.url}/oauth/access_token",
                              authorization_response=posted.headers["Location"],
                              client_secret=CLIENT_SECRET, include_client_id=True, timeout=5)
    assert token["organisation_id"] == second["id"]
    assert token["email"] == second["email"]


def test_deny_redirects_with_access_denied_and_state(gocardless_simulator):
    sim = gocardless_simulator
    response, state = authorize(sim)
    form = consent_form(response)
    posted = requests.post(f"{sim.url}{form.action}", allow_redirects=False, timeout=5,
                           data={**form.hidden, "organisation": "OR000SIM", "decision": "deny"})
    assert location(posted) == (REDIRECT_URI, {"error": "access_denied", "state": state})

    _, params = location(authorize(sim, sim_consent="deny")[0])
    assert params["error"] == "access_denied" and "code" not in params


def test_consent_mode_is_set_through_the_control_api(gocardless_simulator):
    sim = gocardless_simulator
    status, settings = control(sim, "POST", "oauth", {"consent": "deny"})
    assert status == 200 and settings["consent"] == "deny"
    assert location(authorize(sim)[0])[1]["error"] == "access_denied"
    control(sim, "POST", "oauth", {"consent": "allow"})
    assert "code" in location(authorize(sim)[0])[1]
    # The per-request parameter wins over the setting.
    assert authorize(sim, sim_consent="interactive")[0].status_code == 200
    assert control(sim, "POST", "oauth", {"consent": "maybe"})[0] == 400


def test_unknown_client_or_unregistered_redirect_is_an_error_page(gocardless_simulator):
    sim = gocardless_simulator
    unknown = OAuth2Session("someone-else", redirect_uri=REDIRECT_URI, scope=["read_write"])
    response, _ = authorize(sim, unknown, sim_consent="allow")
    assert response.status_code == 400 and "Location" not in response.headers
    assert "Unknown application" in response.text
    evil = OAuth2Session(CLIENT_ID, redirect_uri="https://evil.example/cb", scope=["read_write"])
    response, _ = authorize(sim, evil, sim_consent="allow")
    assert response.status_code == 400 and "Location" not in response.headers
    assert "Invalid redirect URI" in response.text


def test_bad_scope_or_response_type_redirects_with_an_error(gocardless_simulator):
    sim = gocardless_simulator
    response, state = authorize(sim, session("admin"), sim_consent="allow")
    assert location(response) == (REDIRECT_URI, {"error": "invalid_scope", "state": state})
    response = requests.get(f"{sim.url}/oauth/authorize", allow_redirects=False, timeout=5,
                            params={"response_type": "token", "client_id": CLIENT_ID,
                                    "redirect_uri": REDIRECT_URI, "scope": "read_write"})
    assert location(response)[1] == {"error": "unsupported_response_type"}


# -- the token endpoint ------------------------------------------------------------------

def test_token_response_shape(gocardless_simulator):
    response = exchange(gocardless_simulator, code_for(gocardless_simulator))
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json()
    assert set(body) == {"access_token", "token_type", "scope", "organisation_id", "email"}
    assert body["token_type"] == "bearer" and body["scope"] == "read_write"
    assert body["organisation_id"] == "OR000SIM"
    assert body["email"] == "owner@simulated-creditor.test"


def test_code_is_single_use(gocardless_simulator):
    sim = gocardless_simulator
    code = code_for(sim)
    assert exchange(sim, code).status_code == 200
    again = exchange(sim, code)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_code_expires_after_ten_minutes_of_simulated_time(gocardless_simulator):
    sim = gocardless_simulator
    fresh, stale = code_for(sim), code_for(sim)
    sim.advance(seconds=599)
    assert exchange(sim, fresh).status_code == 200
    sim.advance(seconds=2)
    expired = exchange(sim, stale)
    assert expired.status_code == 400 and expired.json()["error"] == "invalid_grant"


def test_wrong_secret_is_invalid_client(gocardless_simulator):
    sim = gocardless_simulator
    response = exchange(sim, code_for(sim), client_secret="guess")
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"
    assert exchange(sim, code_for(sim), client_id="other").status_code == 401
    oauth = session()
    redirect, _ = authorize(sim, oauth, sim_consent="allow")
    with pytest.raises(InvalidClientError):
        oauth.fetch_token(f"{sim.url}/oauth/access_token",
                          authorization_response=redirect.headers["Location"],
                          client_secret="guess", include_client_id=True, timeout=5)


def test_redirect_uri_must_match_the_authorisation(gocardless_simulator):
    sim = gocardless_simulator
    code = code_for(sim)
    other = "http://localhost:8000/connect/gocardless/callback/"  # registered, but not used
    response = exchange(sim, code, redirect_uri=other)
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"
    assert exchange(sim, code).status_code == 200  # a mismatch does not spend the code
    oauth = OAuth2Session(CLIENT_ID, redirect_uri=other)
    with pytest.raises(InvalidGrantError):
        oauth.fetch_token(f"{sim.url}/oauth/access_token", code=code_for(sim),
                          client_secret=CLIENT_SECRET, include_client_id=True, timeout=5)


def test_basic_auth_client_credentials_work_too(gocardless_simulator):
    sim = gocardless_simulator
    oauth = session()
    redirect, _ = authorize(sim, oauth, sim_consent="allow")
    token = oauth.fetch_token(f"{sim.url}/oauth/access_token",  # requests-oauthlib's default
                              authorization_response=redirect.headers["Location"],
                              client_secret=CLIENT_SECRET, timeout=5)
    assert token["organisation_id"] == "OR000SIM"


def test_token_endpoint_wants_a_form_post(gocardless_simulator):
    sim = gocardless_simulator
    as_json = requests.post(f"{sim.url}/oauth/access_token", timeout=5, json={
        "grant_type": "authorization_code", "code": code_for(sim),
        "redirect_uri": REDIRECT_URI, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
    assert as_json.status_code == 400 and as_json.json()["error"] == "invalid_request"
    assert requests.get(f"{sim.url}/oauth/access_token", timeout=5).status_code == 405
    refresh = exchange(sim, "", grant_type="refresh_token")
    assert refresh.status_code == 400 and refresh.json()["error"] == "unsupported_grant_type"


def test_token_endpoint_faults_only_when_aimed_at_it(gocardless_simulator, gocardless_sdk):
    sim = gocardless_simulator
    sim.inject("error_500", path="/oauth/access_token")
    sim.inject("error_500")  # a plain fault is for the API
    failed = exchange(sim, code_for(sim))
    assert failed.status_code == 500 and failed.json() == {"error": "server_error"}
    assert exchange(sim, code_for(sim)).status_code == 200
    with pytest.raises(gocardless_pro.errors.GoCardlessInternalError):
        gocardless_sdk.creditors.list()
    assert sim.call_counts()["POST /oauth/access_token"] == {"200": 1, "500": 1}


# -- the tokens at the API ---------------------------------------------------------------

def test_issued_token_works_with_the_official_sdk(gocardless_simulator):
    sim = gocardless_simulator
    token = connect(sim)
    creditors = sdk(sim, token["access_token"]).creditors.list().records
    assert [c.id for c in creditors] == ["CR000SIM"]


def test_read_only_token_reads_but_cannot_write(gocardless_simulator):
    sim = gocardless_simulator
    client = sdk(sim, connect(sim, scope="read_only")["access_token"])
    assert client.creditors.list().records
    with pytest.raises(gocardless_pro.errors.PermissionsError) as refused:
        client.customers.create(params={"company_name": "Nope Ltd"})
    assert refused.value.errors[0]["reason"] == "insufficient_permissions"


def test_two_organisations_get_two_tokens_each_with_its_own_data(
        gocardless_simulator, gocardless_webhook_receiver):
    sim = gocardless_simulator
    status, second = control(sim, "POST", "organisations",
                             {"name": "Bravo Ltd", "email": "owner@bravo.test"})
    assert status == 201 and second["organisations"]["id"] == "OR000SIM2"
    assert second["organisations"]["creditor_id"] == "CR000SIM2"
    first_token = connect(sim)
    second_token = connect(sim, organisation="OR000SIM2")
    assert first_token["access_token"] != second_token["access_token"]
    assert (first_token["organisation_id"], second_token["organisation_id"]) == (
        "OR000SIM", "OR000SIM2")
    alpha, bravo = sdk(sim, first_token["access_token"]), sdk(sim, second_token["access_token"])
    assert [c.id for c in alpha.creditors.list().records] == ["CR000SIM"]
    [creditor] = bravo.creditors.list().records
    assert (creditor.id, creditor.name) == ("CR000SIM2", "Bravo Ltd")

    # Data is per organisation: Bravo's customer is not Alpha's, nor the built-in token's.
    customer = bravo.customers.create(params={"company_name": "Payer BV"})
    assert [c.id for c in bravo.customers.list().records] == [customer.id]
    assert alpha.customers.list().records == []
    with pytest.raises(gocardless_pro.errors.InvalidApiUsageError):
        sdk(sim, SIM_ACCESS_TOKEN).customers.get(customer.id)

    # Bravo's billing request flow is completed on the hosted page like any other.
    request = bravo.billing_requests.create(params={
        "mandate_request": {"scheme": "bacs", "currency": "GBP"},
        "links": {"customer": customer.id}})
    assert request.links.organisation == "OR000SIM2" and request.links.creditor == "CR000SIM2"
    flow = bravo.billing_request_flows.create(params={
        "links": {"billing_request": request.id}})
    assert "Bravo Ltd" in requests.get(flow.authorisation_url, timeout=5).text
    page = requests.post(flow.authorisation_url, timeout=5, allow_redirects=False,
                         data={"email": "ap@payer.test", "company_name": "Payer BV"})
    assert page.status_code == 200
    assert [m.id for m in bravo.mandates.list().records] == [
        m["id"] for m in sim.resource("mandates", organisation="OR000SIM2")]
    assert alpha.mandates.list().records == []

    # Webhooks name the organisation each event belongs to, one organisation per webhook.
    sim.deliver_webhooks()
    bodies = [r["body"] for r in gocardless_webhook_receiver.requests]
    events = [e for body in bodies for e in json.loads(body)["events"]]
    assert {e["links"]["organisation"] for e in events} == {"OR000SIM2"}
    assert {e["resource_type"] for e in events} >= {"billing_requests", "mandates"}
    assert [e.id for e in bravo.events.list().records] == [
        e["id"] for e in reversed(sim.events("OR000SIM2"))]
    assert alpha.events.list().records == []


def test_unconnected_organisation_sends_no_webhooks(gocardless_simulator,
                                                    gocardless_webhook_receiver):
    sim = gocardless_simulator
    second = sim.add_organisation()
    sim.seed(organisation=second["id"], payments=[], mandates=[{"scheme": "bacs"}])
    mandate = sim.resource("mandates", organisation=second["id"])[0]
    sim.run_scenario("mandate_cancelled", mandate["id"])
    sim.deliver_webhooks()
    assert gocardless_webhook_receiver.requests == []
    assert sim.events(second["id"])  # the events exist, only nobody is told


def test_control_api_lists_and_revokes_tokens(gocardless_simulator):
    sim = gocardless_simulator
    token = connect(sim)["access_token"]
    status, listed = control(sim, "GET", "oauth/tokens")
    assert status == 200
    [entry] = listed["tokens"]
    assert entry["access_token"] == token and entry["organisation_id"] == "OR000SIM"
    assert entry["scope"] == "read_write" and entry["revoked_at"] is None
    assert entry["issued_at"] == "2026-03-02T10:00:00.000Z"  # the simulator's clock
    status, revoked = control(sim, "DELETE", f"oauth/tokens/{token}")
    assert status == 200 and revoked["tokens"]["revoked_at"]
    with pytest.raises(gocardless_pro.errors.AuthenticationError):
        sdk(sim, token).creditors.list()
    assert control(sim, "GET", "organisations")[1]["organisations"][0]["id"] == "OR000SIM"


def test_app_credentials_and_redirect_uris_are_configurable(gocardless_simulator):
    sim = gocardless_simulator
    status, settings = control(sim, "GET", "oauth")
    assert status == 200 and settings["client_id"] == CLIENT_ID
    assert REDIRECT_URI in settings["redirect_uris"]
    control(sim, "POST", "oauth", {"client_id": "app-2", "client_secret": "s3cret",
                                   "redirect_uris": ["https://app.test/cb"]})
    assert authorize(sim, sim_consent="allow")[0].status_code == 400  # old id, old URI
    response = requests.get(f"{sim.url}/oauth/authorize", allow_redirects=False, timeout=5,
                            params={"response_type": "code", "client_id": "app-2",
                                    "redirect_uri": "https://app.test/cb",
                                    "scope": "read_only", "sim_consent": "allow"})
    target, params = location(response)
    assert target == "https://app.test/cb"
    token = requests.post(f"{sim.url}/oauth/access_token", timeout=5, data={
        "grant_type": "authorization_code", "code": params["code"],
        "redirect_uri": "https://app.test/cb", "client_id": "app-2", "client_secret": "s3cret"})
    assert token.status_code == 200 and token.json()["scope"] == "read_only"
    assert control(sim, "POST", "oauth", {"client_secret": ""})[0] == 400


def test_reset_forgets_tokens_and_added_organisations(gocardless_simulator):
    sim = gocardless_simulator
    sim.add_organisation()
    token = connect(sim, organisation="OR000SIM2")["access_token"]
    sim.configure_oauth(consent="allow")
    assert control(sim, "POST", "reset")[0] == 200
    assert [o["id"] for o in sim.organisations_list()] == ["OR000SIM"]
    assert sim.oauth_tokens() == []
    with pytest.raises(gocardless_pro.errors.AuthenticationError):
        sdk(sim, token).creditors.list()
    assert sim.configure_oauth()["consent"] == "allow"  # configuration stays
