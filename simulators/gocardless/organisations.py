"""Simulated GoCardless accounts ("organisations", ``OR…``), each with its own creditor and
its own data.

Every organisation has a ``State`` of its own: customers, mandates, payments, payouts,
events and idempotency keys of one organisation are invisible to another's access tokens.
The States share one lock and one id counter, so ids are unique across organisations and
``sim.state.lock`` (the first organisation's) guards them all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .state import State

ORGANISATION_ID = re.compile(r"OR[0-9A-Z]{1,30}")
CREDITOR_ID = re.compile(r"CR[0-9A-Z]{1,30}")


@dataclass
class Organisation:
    id: str
    name: str
    email: str  # the account user who signs in on the consent page
    state: State

    @property
    def creditor_id(self) -> str:
        return self.state.creditor_id

    def describe(self) -> dict:
        return {"id": self.id, "name": self.name, "email": self.email,
                "creditor_id": self.creditor_id, "schemes": list(self.state.schemes)}


class Organisations:
    """The organisations in creation order; the first is the one the simulator's built-in
    access tokens belong to. Callers hold the shared state lock for changes."""

    def __init__(self, primary: Organisation) -> None:
        self.primary = primary
        self._by_id: dict[str, Organisation] = {primary.id: primary}

    def __iter__(self):
        return iter(list(self._by_id.values()))

    def __len__(self) -> int:
        return len(self._by_id)

    def get(self, organisation_id: str | None) -> Organisation | None:
        if organisation_id is None:
            return self.primary
        return self._by_id.get(organisation_id)

    def require(self, organisation_id: str | None) -> Organisation:
        organisation = self.get(organisation_id)
        if organisation is None:
            raise KeyError(f"unknown organisation {organisation_id!r}")
        return organisation

    def by_email(self, email: str) -> Organisation | None:
        email = email.strip().lower()
        return next((o for o in self if email and o.email.lower() == email), None)

    def holding(self, resource_id: str) -> Organisation:
        """The organisation one of whose resources has this id (ids are unique across
        organisations); the primary one when none has it, which then answers 404."""
        for organisation in self:
            resources = organisation.state.resources
            if any(resource_id in resources[kind] for kind in resources):
                return organisation
        return self.primary

    def add(self, *, clock, schemes, organisation_id: str | None = None,
            name: str | None = None, email: str | None = None,
            creditor_id: str | None = None) -> Organisation:
        number = len(self._by_id) + 1
        organisation_id = organisation_id or self._free(f"OR000SIM{number}", "id")
        creditor_id = creditor_id or self._free(f"CR000SIM{number}", "creditor_id")
        if not ORGANISATION_ID.fullmatch(organisation_id):
            raise ValueError("organisation id must look like OR… (capital letters, digits)")
        if not CREDITOR_ID.fullmatch(creditor_id):
            raise ValueError("creditor id must look like CR… (capital letters, digits)")
        if organisation_id in self._by_id:
            raise ValueError(f"organisation {organisation_id} exists")
        if any(o.creditor_id == creditor_id for o in self):
            raise ValueError(f"creditor {creditor_id} exists")
        name = name or f"Simulated Organisation {number} Ltd"
        primary = self.primary.state
        state = State(clock, organisation_id=organisation_id, creditor_id=creditor_id,
                      schemes=schemes or primary.schemes, creditor_name=name, number=number,
                      lock=primary.lock, ids=primary.ids)
        organisation = Organisation(
            id=organisation_id, name=name, email=email or f"owner{number}@simulated-org.test",
            state=state)
        self._by_id[organisation_id] = organisation
        return organisation

    def drop_all_but_primary(self) -> None:
        self._by_id = {self.primary.id: self.primary}

    def _free(self, candidate: str, attribute: str) -> str:
        taken = {getattr(o, attribute) for o in self}
        base, n = candidate, 0
        while candidate in taken:
            n += 1
            candidate = f"{base}X{n}"
        return candidate
