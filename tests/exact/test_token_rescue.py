"""Exact rotated the refresh token and answered, but the database went away before the new
pair was committed (a PostgreSQL restart during the token call): the pair is stored once the
database answers again, so the chain survives and nobody has to reconnect. Without it the row
kept the retired refresh token and the next refresh broke the chain ("Old refresh token
used"). Found by the chaos month (docs/chaos.md)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import OperationalError
from django.utils import timezone

from exact import tokens as tokens_module
from exact.models import ConnectionStatus, ExactGrant
from tests.exact.conftest import token_calls

# No test transaction around it: the rescue writes after the failed transaction, as in a
# worker (inside a caller's transaction it cannot, and does not try).
pytestmark = pytest.mark.django_db(transaction=True)


def _age(connection):
    ExactGrant.objects.filter(pk=connection.grant_id).update(
        token_issued_at=timezone.now() - timedelta(seconds=580))
    connection.refresh_from_db()


def _journals(api):
    return list(api.iter_rows("financial/Journals", select=("Code",)))


def test_a_pair_whose_commit_failed_is_stored_when_the_database_is_back(
    sim, connection, api, monkeypatch
):
    _age(connection)
    sim.advance(580)
    old_refresh = ExactGrant.objects.get(pk=connection.grant_id).refresh_token
    real_store = tokens_module._tokens_store
    failures = []

    def store_then_lose_the_database(grant, tokens):
        real_store(grant, tokens)
        failures.append(tokens["refresh_token"])
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(tokens_module, "_tokens_store", store_then_lose_the_database)
    monkeypatch.setattr(tokens_module, "RESCUE_PAUSE", 0)

    _journals(api)  # refreshes: Exact rotates, our commit "fails", the rescue stores it

    grant = ExactGrant.objects.get(pk=connection.grant_id)
    assert failures and grant.refresh_token == failures[0] != old_refresh
    assert token_calls(sim) == 1
    # The chain is intact: the next refresh, ten minutes on, works with the rescued token.
    monkeypatch.setattr(tokens_module, "_tokens_store", real_store)
    _age(connection)
    sim.advance(580)
    _journals(api)
    connection.refresh_from_db()
    assert token_calls(sim) == 2 and connection.status == ConnectionStatus.CONNECTED


def test_a_pair_another_process_replaced_meanwhile_is_not_overwritten(sim, connection):
    grant = ExactGrant.objects.get(pk=connection.grant_id)
    newer = timezone.now()
    ExactGrant.objects.filter(pk=grant.pk).update(token_issued_at=newer,
                                                  refresh_token="someone-elses")
    kept = tokens_module._tokens_rescue(
        grant_id=grant.pk, issued_before=newer - timedelta(minutes=10),
        tokens={"access_token": "a", "refresh_token": "late", "expires_in": 600})
    assert kept.refresh_token == "someone-elses"
