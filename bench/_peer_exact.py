"""A third-party Exact client doing the same full read as our sync, for a side-by-side.

The peer is ``exactonline`` from PyPI (ossobv/exactonline), used as its README shows: an
``ExactApi`` over a storage object, ``api.relations.filter()`` for the accounts and
``api.receivables.filter()`` for the open receivables. Like most clients it reads the
standard endpoint ``crm/Accounts`` (60 rows a page), honours Exact's rate-limit headers with
its own limiter (which sleeps, on the wall clock, as it would live) and follows ``__next``.
Only the transport is widened: the simulator listens on plain loopback HTTP.

Not a bench itself (``make bench`` skips files starting with ``_``): bench/exact_sync.py calls
``peer_full_read`` on the same simulator data, after our own sync.
"""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

REDIRECT_URI = "https://peer.example.test/exact/callback"


def peer_full_read(*, sim, division: int, stamps: list[float]) -> dict:
    """Consent, then every account and every open receivable of ``division``, through the
    peer. ``stamps`` receives the wall time of each HTTP call the peer makes."""
    import requests
    from exactonline import http as peer_http
    from exactonline import rawapi as peer_rawapi
    from exactonline.api import ExactApi

    from simulators.exact_online.peer import PeerStorage

    peer_http.opt_secure.protocols = ("http", "https")
    sim.settings(redirect_uris=[*sim.oauth_settings["redirect_uris"], REDIRECT_URI])

    original = peer_rawapi.http_req

    def counted(*args, **kwargs):
        stamps.append(time.time())
        return original(*args, **kwargs)

    # The division has ~340 pages at 60 rows: no page limit.
    api = ExactApi(
        storage=PeerStorage(sim.url, redirect_uri=REDIRECT_URI, iteration_limit=100_000)
    )
    resp = requests.get(api.create_auth_request_url(), allow_redirects=False, timeout=10)
    api.request_token(parse_qs(urlsplit(resp.headers["Location"]).query)["code"][0])
    api.set_division(division)
    peer_rawapi.http_req = counted  # count from here: the read, not the consent
    try:
        started = time.monotonic()
        # crm/Accounts has mandatory filtering: any filter on a listed field will do.
        accounts = api.relations.filter(filter="Name ne ''")
        receivables = api.receivables.filter()
        seconds = time.monotonic() - started
    finally:
        peer_rawapi.http_req = original
    return {
        "calls": len(stamps),
        "seconds": seconds,
        "accounts": len(accounts),
        "receivables": len(receivables),
    }
