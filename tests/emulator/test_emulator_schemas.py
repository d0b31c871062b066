"""Every route of the emulator answers what Powens' own OpenAPI description (S3) says it answers:
lists, errors, auth and connectors, by default and under each documented behaviour that stays
within the spec; the behaviours that leave it (offset timestamps, drifted type names, the legacy
connection shape) are caught by the same check, which shows it looks."""

from __future__ import annotations

from datetime import datetime

import httpx
import pytest

from powens_emulator import EmulatorConfig, FaultConfig, start_emulator
from tests.powens_spec import require_spec, violations

NOW = datetime(2026, 3, 30, 8, 0, 0)  # the day after the switch to summer time in Paris


@pytest.fixture(scope="module")
def emulator():
    require_spec()
    with start_emulator(
        EmulatorConfig(seed=31, transactions=300, history_days=120, now=NOW)
    ) as handle:
        handle.advance(2)  # a renumbered account, booked and re-issued rows, edits
        yield handle


class Answers:
    """Responses of one emulator, each kept with the spec route and method it answers to."""

    def __init__(self, emulator) -> None:
        self.emulator = emulator
        self.seen: list[tuple[str, str, httpx.Response]] = []

    def call(
        self, method: str, path: str, spec_path: str | None = None, *, user: int | None = 1, **kw
    ) -> httpx.Response:
        headers = kw.pop("headers", {})
        if user is not None:
            headers["Authorization"] = f"Bearer {self.emulator.token_for(user)}"
        response = httpx.request(method, f"{self.emulator.base_url}{path}", headers=headers, **kw)
        self.seen.append((spec_path or path, method, response))
        return response

    def transactions(self, path: str = "/users/me/transactions", **params) -> list[httpx.Response]:
        """Every page of one listing (by `_links.next`, or by `offset` without links)."""
        pages, offset = [], 0
        query = {"limit": 100, **params}
        while True:
            response = self.call(
                "GET", path, "/users/me/transactions", params={**query, "offset": offset}
            )
            pages.append(response)
            body = response.json()
            if response.status_code != 200 or len(body["transactions"]) < query["limit"]:
                return pages
            offset += query["limit"]

    def broken(self) -> list[str]:
        """Each answer that breaks its schema, with where and why."""
        return [
            f"{method} {path} -> {response.status_code}: {problem}"
            for path, method, response in self.seen
            for problem in violations(response.json(), path, method, response.status_code)
        ]


def every_route(answers: Answers, emulator, *, every_listing: bool = True) -> None:
    """The routes the pipeline and its connect flow call, their errors included (with
    `every_listing`, the transactions lists under each filter the client sends)."""
    credentials = {"client_id": "pfo-demo-client", "client_secret": "pfo-demo-secret"}
    call = answers.call
    call("POST", "/auth/renew", user=None, json={**credentials, "id_user": 1})
    call(
        "POST", "/auth/renew", user=None, json={**credentials, "client_secret": "no", "id_user": 1}
    )
    call("POST", "/auth/renew", user=None, json=credentials)  # no id_user: 400
    call("POST", "/auth/renew", user=None, json={**credentials, "id_user": 99})  # 404
    call("GET", "/auth/token/code", params={"type": "singleAccess"})
    call("GET", "/connectors", user=None)
    call("GET", "/users/me")
    for user in (1, 2):
        call("GET", "/users/me/connections", user=user, params={"expand": "connector"})
        call("GET", "/users/me/connections", user=user)
        call("GET", "/users/me/accounts", user=user, params={"all": ""})
        call("GET", "/users/me/accounts", user=user)
    answers.transactions(all="", filter="date", min_date="1900-01-01")
    if every_listing:
        answers.transactions(all="")
        answers.transactions(all="", last_update="2026-03-25 00:00:00")
        for low, high in (("2026-02", "2026-02"), ("2026", "2026"), ("2026-01-01", "2026-01-31")):
            answers.transactions(filter="date", min_date=low, max_date=high)
        answers.transactions("/users/me/accounts/101/transactions", all="")
    answers.transactions(min_date="2031-01-01")  # an empty page
    call("GET", "/users/me/transactions", user=None, params={"limit": 10})  # 401
    call("GET", "/users/1/transactions", "/users/me/transactions", user=2, params={"limit": 10})
    call(
        "GET", "/users/me/accounts/201/transactions", "/users/me/transactions", params={"limit": 5}
    )
    call("GET", "/users/me/transactions", params={"limit": 5000})  # 400
    call("GET", "/users/me/transactions", params={"min_date": "2025-13", "limit": 10})  # 400


def test_every_route_follows_the_official_schemas_by_default(emulator) -> None:
    emulator.set_faults(FaultConfig())
    answers = Answers(emulator)
    every_route(answers, emulator)
    statuses = {response.status_code for *_, response in answers.seen}
    assert statuses == {200, 400, 401, 403, 404} and len(answers.seen) > 30
    assert answers.broken() == []


SPEC_VALID = {
    "lists without _links": FaultConfig(lists_without_links=True),
    "lists without _links nor total": FaultConfig(
        lists_without_links=True, lists_without_total=True
    ),
    "nullable fields as null": FaultConfig(rate_null_fields=0.5, rate_null_value=0.2, seed=3),
    "a month's window without min_date": FaultConfig(month_window_without_min_date=True),
    "connection states": FaultConfig(connection_states={1: "SCARequired", 2: "bug"}),
    "rate limited": FaultConfig(rate_429=1.0, retry_after_s=0.01),
}


@pytest.mark.parametrize("faults", SPEC_VALID.values(), ids=SPEC_VALID.keys())
def test_documented_behaviours_within_the_spec_keep_to_it(emulator, faults) -> None:
    emulator.set_faults(faults)
    try:
        answers = Answers(emulator)
        every_route(answers, emulator, every_listing=False)
        assert answers.broken() == []
    finally:
        emulator.set_faults(FaultConfig())


def test_no_account_is_the_specs_no_account_error(emulator) -> None:
    emulator.set_faults(FaultConfig(no_accounts={1: 400}))
    try:
        answers = Answers(emulator)
        accounts = answers.call("GET", "/users/me/accounts", params={"all": ""})
        listing = answers.transactions(all="")[0]
        assert (accounts.status_code, listing.status_code) == (400, 400)
        assert accounts.json()["code"] == listing.json()["code"] == "noAccount"
        assert answers.broken() == []
    finally:
        emulator.set_faults(FaultConfig())


DEVIATIONS = {
    "offset timestamps": (FaultConfig(offset_timestamps=True), "does not match"),
    "drifted type names": (FaultConfig(transaction_types="drifted"), "is not one of"),
    "legacy connection shape": (FaultConfig(legacy_connection_error=True), "'id_connector'"),
}


@pytest.mark.parametrize("faults, why", DEVIATIONS.values(), ids=DEVIATIONS.keys())
def test_behaviours_outside_the_spec_are_caught_by_the_same_check(emulator, faults, why) -> None:
    """What S6 and S1 saw live leaves S3's schemas: the check names it (so it does look)."""
    emulator.set_faults(faults)
    try:
        answers = Answers(emulator)
        every_route(answers, emulator, every_listing=False)
        broken = answers.broken()
        assert broken and all(why in problem for problem in broken), broken[:5]
    finally:
        emulator.set_faults(FaultConfig())
