"""A running sync's row moves page by page (its page in the admin polls it), not only at the
end: a full sync of a big division takes minutes at Exact's 60 calls a minute."""

from __future__ import annotations

import pytest

from exact.models import SyncRun
from exact.sync_runs import RunRecord, pages_counted
from tests.factories import ExactConnectionFactory

pytestmark = pytest.mark.django_db


class _Api:
    calls = 10


def test_the_row_has_the_numbers_so_far_before_each_next_page(tenant_a):
    connection = ExactConnectionFactory(tenant=tenant_a)
    api = _Api()
    with RunRecord(connection=connection, api=api, entity="accounts", mode="full",
                   trigger="test") as record:
        seen = []
        for page in pages_counted(iter([[1], [2], [3]]), record):
            row = SyncRun.objects.get(pk=record.run.pk)
            seen.append((row.pages, row.calls, row.created, row.finished_at))
            record.counts.created += len(page)
            api.calls += 1
        # Page 1 is being read: nothing saved yet; before page 2, page 1's numbers; and so on.
        assert seen == [(0, 0, 0, None), (1, 1, 1, None), (2, 2, 2, None)]
    row = SyncRun.objects.get(pk=record.run.pk)
    assert (row.pages, row.calls, row.created) == (3, 3, 3) and row.finished_at is not None
