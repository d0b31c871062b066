"""The emulator over a real socket: determinism, filters, auth, faults, and its moving clock."""

from __future__ import annotations

from datetime import datetime

import httpx
import pytest

from powens_emulator import EmulatorConfig, FaultConfig, start_emulator

NOW = datetime(2026, 11, 24, 8, 0, 0)


def get(emulator, path: str, user: int = 1, **params) -> httpx.Response:
    headers = {"Authorization": f"Bearer {emulator.token_for(user)}"}
    return httpx.get(f"{emulator.base_url}{path}", params=params, headers=headers)


def all_transactions(emulator, user: int = 1, **params) -> list[dict]:
    rows, url, query = [], f"{emulator.base_url}/users/me/transactions", {"limit": 1000, **params}
    headers = {"Authorization": f"Bearer {emulator.token_for(user)}"}
    while url:
        body = httpx.get(url, params=query, headers=headers).json()
        rows += body["transactions"]
        url, query = (body["_links"]["next"] or {}).get("href"), None
    return rows


@pytest.fixture
def emulator():
    with start_emulator(EmulatorConfig(seed=9, transactions=2000, now=NOW)) as handle:
        yield handle


def test_same_seed_same_payloads() -> None:
    config = EmulatorConfig(seed=4, transactions=800, now=NOW)
    with start_emulator(config) as a, start_emulator(config) as b:
        assert all_transactions(a, all="") == all_transactions(b, all="")
        assert (
            get(a, "/users/me/accounts", all="").json()
            == get(b, "/users/me/accounts", all="").json()
        )


def test_the_family_has_the_accounts_the_spec_asks_for(emulator) -> None:
    accounts = get(emulator, "/users/me/accounts", all="").json()["accounts"]
    kinds = [(a["type"], a["currency"]["id"], a["ownership"]) for a in accounts]
    assert (
        kinds.count(("checking", "EUR", "owner")) == 1 and ("checking", "EUR", "co-owner") in kinds
    )
    assert ("savings", "EUR", "owner") in kinds and ("checking", "USD", "owner") in kinds
    card = next(a for a in accounts if a["type"] == "card")
    assert card["id_parent"] == next(a["id"] for a in accounts if a["name"] == "Compte Chèque")
    loan = next(a for a in accounts if a["type"] == "loan")
    assert loan["balance"] < -100000 and loan["loan"]["type"] == "mortgage"
    assert any(a["type"] in ("pea", "market") for a in accounts)


def test_balances_reconcile_with_transactions(emulator) -> None:
    emulator.advance(2)
    rows = all_transactions(emulator, all="")
    for account in get(emulator, "/users/me/accounts").json()["accounts"]:
        mine = [t for t in rows if t["id_account"] == account["id"] and t["deleted"] is None]
        booked = round(sum(t["value"] for t in mine if not t["coming"]), 2)
        coming = round(sum(t["value"] for t in mine if t["coming"]), 2)
        opening = emulator.state.accounts[account["id"]].opening / 100
        if emulator.state.renumbered and account["id"] == emulator.state.renumbered[1]:
            old = emulator.state.renumbered[0]
            opening += emulator.state.accounts[old].opening / 100
            booked += round(
                sum(
                    t["value"]
                    for t in rows
                    if t["id_account"] == old and t["deleted"] is None and not t["coming"]
                ),
                2,
            )
        assert account["balance"] == pytest.approx(opening + booked)
        assert account["coming"] == pytest.approx(coming)


def test_filters_and_links(emulator) -> None:
    every = all_transactions(emulator, all="")
    visible = all_transactions(emulator)
    assert len(visible) < len(every) and all(t["deleted"] is None for t in visible)
    assert any(t["coming"] for t in every) and any(t["counterparty"] for t in every)
    # Powens' date bounds apply to `application_date` unless `filter=date` asks for `date`; a card
    # payment applies the day before its debit, so the two windows differ at the edges.
    applied = all_transactions(emulator, min_date="2026-10-01", max_date="2026-10-31")
    assert applied and all("2026-10-01" <= t["application_date"] <= "2026-10-31" for t in applied)
    dated = all_transactions(emulator, min_date="2026-10-01", max_date="2026-10-31", filter="date")
    assert dated and all("2026-10-01" <= t["date"] <= "2026-10-31" for t in dated)
    assert {t["id"] for t in applied} != {t["id"] for t in dated}
    assert any(t["application_date"] != t["date"] for t in dated)
    refused = get(emulator, "/users/me/transactions", limit=10, filter="rdate")
    assert refused.status_code == 400 and "filter must be one of" in refused.text
    body = get(emulator, "/users/me/transactions", limit=10, offset=10).json()
    assert body["total"] == len(visible) and body["_links"]["prev"] is not None
    assert (
        body["_links"]["next"]["href"].startswith(emulator.base_url)
        and "offset=20" in body["_links"]["next"]["href"]
    )
    dates = [t["date"] for t in every]
    assert dates == sorted(dates, reverse=True)


@pytest.mark.parametrize(
    "params, words", [({}, "limit is required"), ({"limit": 1001}, "between 1 and 1000")]
)
def test_limit_is_required_and_capped(emulator, params: dict, words: str) -> None:
    """Error codes are S3's `ServiceErrorCode` values (issue 25); the description says why."""
    response = get(emulator, "/users/me/transactions", **params)
    body = response.json()
    assert response.status_code == 400 and body["code"] == "notSupported"
    assert words in body["description"] and isinstance(body["request_id"], str)


def test_bearer_auth_and_user_isolation(emulator) -> None:
    assert httpx.get(f"{emulator.base_url}/users/me/accounts").status_code == 401
    assert get(emulator, "/users/1/accounts", user=2).status_code == 403
    family = {a["id"] for a in get(emulator, "/users/me/accounts", all="").json()["accounts"]}
    second = {
        a["id"] for a in get(emulator, "/users/me/accounts", user=2, all="").json()["accounts"]
    }
    assert family and second and not family & second
    assert {t["id_account"] for t in all_transactions(emulator, user=2, all="")} <= second


def test_renew_issues_a_working_token(emulator) -> None:
    body = {"client_id": "pfo-demo-client", "client_secret": "pfo-demo-secret", "id_user": 2}
    token = httpx.post(f"{emulator.base_url}/auth/renew", json=body).json()["access_token"]
    me = httpx.get(f"{emulator.base_url}/users/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["id"] == 2
    wrong = httpx.post(f"{emulator.base_url}/auth/renew", json={**body, "client_secret": "nope"})
    assert wrong.status_code == 401
    # Powens also takes the form-encoded body its docs show with curl.
    form = httpx.post(f"{emulator.base_url}/auth/renew", data=body)
    assert form.status_code == 200 and form.json()["access_token"]
    not_an_object = httpx.post(f"{emulator.base_url}/auth/renew", content=b"[1, 2]")
    assert not_an_object.status_code == 400


def test_each_fault_kind(emulator) -> None:
    emulator.set_faults(FaultConfig(rate_429=1.0, retry_after_s=2))
    limited = get(emulator, "/users/me")
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "2"
    emulator.set_faults(FaultConfig(rate_503=1.0))
    down = get(emulator, "/users/me")
    assert down.status_code == 503 and down.headers["content-type"].startswith("text/html")
    emulator.set_faults(FaultConfig(rate_slow=1.0, slow_s=0.5))
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(f"{emulator.base_url}/connectors", timeout=0.2)
    emulator.set_faults(FaultConfig(connection_states={1: "SCARequired"}))
    assert get(emulator, "/users/me/connections").json()["connections"][0]["state"] == "SCARequired"
    emulator.set_faults(FaultConfig(rate_token_expiry=1.0))
    token = emulator.token_for(1)
    headers = {"Authorization": f"Bearer {token}"}
    httpx.get(f"{emulator.base_url}/users/me", headers=headers)  # first use never expires
    assert httpx.get(f"{emulator.base_url}/users/me", headers=headers).status_code == 401
    assert httpx.get(f"{emulator.base_url}/users/me", headers=headers).status_code == 401
    emulator.set_faults(FaultConfig(rate_malformed=0.2))
    rows = all_transactions(emulator, all="")
    assert any("id" not in t for t in rows)
    assert any(isinstance(t.get("value"), str) for t in rows)
    assert any(t.get("date", "").endswith("-02-30") for t in rows)
    assert any((t.get("original_currency") or {}).get("id") == "ZZZ" for t in rows)
    assert all_transactions(emulator, all="") == rows  # the same records are malformed every time


def test_advance_moves_the_clock_and_bumps_last_update(emulator) -> None:
    before = {t["id"]: t for t in all_transactions(emulator, all="")}
    summary = emulator.advance(6)
    after = {t["id"]: t for t in all_transactions(emulator, all="")}
    assert summary["new"] > 0 and summary["booked_in_place"] > 0 and summary["reissued"] > 0
    assert summary["edited"] > 0 and summary["renumbered"] == [103, 108]
    changed = [i for i in before if after[i] != before[i]]
    assert changed and all(after[i]["last_update"] > before[i]["last_update"] for i in changed)
    booked = [
        i
        for i in changed
        if before[i]["coming"] and not after[i]["coming"] and after[i]["deleted"] is None
    ]
    deleted = [i for i in changed if before[i]["coming"] and after[i]["deleted"] is not None]
    assert (
        (booked or deleted)
        and len(booked) <= summary["booked_in_place"]
        and len(deleted) <= summary["deleted"]
    )
    reissued = [
        after[i]
        for i in set(after) - set(before)
        if not after[i]["coming"] and after[i]["type"] in ("card", "deferred_card")
    ]
    for (
        i
    ) in deleted:  # every deleted pending row has a booked twin with the same amount and account
        assert any(
            r["value"] == after[i]["value"] and r["id_account"] == after[i]["id_account"]
            for r in reissued
        )
    new_ids = set(after) - set(before)
    since = max(t["last_update"] for t in before.values())
    delta = all_transactions(emulator, all="", last_update=since)
    assert {t["id"] for t in delta} == set(changed) | new_ids
    accounts = {a["id"]: a for a in get(emulator, "/users/me/accounts", all="").json()["accounts"]}
    assert accounts[103]["deleted"] is not None and accounts[108]["iban"] == accounts[103]["iban"]
    assert 103 not in {a["id"] for a in get(emulator, "/users/me/accounts").json()["accounts"]}


@pytest.mark.parametrize("seed, transactions", [(11, 2500), (42, 6000), (31, 1500)])
def test_every_kind_of_change_happens_whatever_the_start_date(seed, transactions) -> None:
    """Tests rely on an advance booking pending rows both ways and editing rows: that must not
    depend on which day of the year the emulator's clock starts (one start date a day, a year)."""
    from datetime import timedelta

    from powens_emulator.data import FamilyWorld

    missing: dict[str, list[str]] = {}
    for offset in range(0, 366, 3):
        start = datetime(2027, 1, 1, 8, 0, 0) + timedelta(days=offset)
        world = FamilyWorld(seed=seed, transactions=transactions, history_days=3 * 365, now=start)
        summary = world.advance(3)
        for kind in ("booked_in_place", "reissued", "deleted", "edited", "new"):
            if not summary[kind]:
                missing.setdefault(kind, []).append(start.date().isoformat())
    assert not missing, missing


@pytest.mark.parametrize(
    "body, key",
    [
        ({"rate_429": "abc"}, "rate_429"),
        ({"rate_503": 2.5}, "rate_503"),
        ({"rate_slow": -1}, "rate_slow"),
        ({"rate_token_expiry": True}, "rate_token_expiry"),
        ({"slow_s": -5}, "slow_s"),
        ({"retry_after_s": "soon"}, "retry_after_s"),
        ({"seed": 1.5}, "seed"),
        ({"churn_per_page": -1}, "churn_per_page"),
        ({"connection_states": ["SCARequired"]}, "connection_states"),
        ({"connection_states": {"one": "SCARequired"}}, "connection_states"),
        ({"connection_states": {"1": 5}}, "connection_states"),
        ({"rate_4299": 0.1}, "rate_4299"),
        ({"latency_ms": -1}, "latency_ms"),
        ({"jitter_ms": "x"}, "jitter_ms"),
        ([0.1], "body"),
    ],
)
def test_the_faults_route_refuses_nonsense_naming_the_key(emulator, body, key: str) -> None:
    """Refused with a 400 that names the setting, and the emulator keeps serving as before."""
    response = httpx.post(f"{emulator.base_url}/__emulator/faults", json=body)
    assert response.status_code == 400
    assert response.json()["key"] == key and key in response.json()["description"]
    assert emulator.emulator.faults == FaultConfig()
    assert get(emulator, "/users/me").status_code == 200


def test_the_faults_route_accepts_valid_settings(emulator) -> None:
    body = {"rate_429": 1, "retry_after_s": 3, "connection_states": {"2": "wrongpass"}, "seed": 4}
    response = httpx.post(f"{emulator.base_url}/__emulator/faults", json=body)
    assert response.status_code == 200
    assert response.json()["connection_states"] == {"2": "wrongpass"}
    assert emulator.emulator.faults == FaultConfig(
        rate_429=1.0, retry_after_s=3.0, connection_states={2: "wrongpass"}, seed=4
    )


@pytest.mark.parametrize(
    "settings, key",
    [
        ({"rate_429": float("nan")}, "rate_429"),
        ({"rate_503": float("inf")}, "rate_503"),
        ({"rate_malformed": 1.0000001}, "rate_malformed"),
        ({"slow_s": float("inf")}, "slow_s"),
        ({"retry_after_s": float("nan")}, "retry_after_s"),
        ({"seed": -1}, "seed"),
        ({"connection_states": {0: "SCARequired"}}, "connection_states"),
    ],
)
def test_fault_config_refuses_non_finite_and_out_of_range_values(settings, key: str) -> None:
    with pytest.raises(ValueError, match=key):
        FaultConfig(**settings)


@pytest.fixture
def serve_cli(monkeypatch: pytest.MonkeyPatch):
    """`pfo emulator serve` with the server stubbed out: returns (result, configs it would serve)."""
    from click.testing import CliRunner

    from pfo_pipeline.cli import main
    from powens_emulator import runner

    served: list[EmulatorConfig] = []
    monkeypatch.setattr(runner, "serve_forever", lambda config, port: served.append(config))

    def run(*args: str):
        return CliRunner().invoke(main, ["emulator", "serve", *args]), served

    return run


@pytest.mark.parametrize(
    "args, option",
    [
        (["--now", "2026-11-24"], "--now"),
        (["--now", "yesterday"], "--now"),
        (["--faults", "rate_429=abc"], "--faults"),
        (["--faults", "rate_429=2.5"], "--faults"),
        (["--faults", "rate_503=-1"], "--faults"),
        (["--faults", "rate_slow=nan"], "--faults"),
        (["--faults", "slow_s=-5"], "--faults"),
        (["--faults", "seed=1.5"], "--faults"),
        (["--faults", "connection_states=one:SCARequired"], "--faults"),
        (["--faults", "bogus=1"], "--faults"),
        (["--seed", "-1"], "--seed"),
        (["--latency-ms", "-5"], "--latency-ms"),
        (["--latency-ms", "soon"], "--latency-ms"),
        (["--jitter-ms", "nan"], "--jitter-ms"),
    ],
)
def test_serve_refuses_bad_values_with_a_usage_error(serve_cli, args: list[str], option) -> None:
    result, served = serve_cli(*args)
    assert result.exit_code == 2 and not served, result.output
    assert f"Invalid value for '{option}'" in result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)


def test_serve_banner_names_the_credentials_without_printing_them(serve_cli) -> None:
    from powens_emulator.runner import build_emulator

    result, served = serve_cli("--seed", "7", "--now", "2026-11-24 08:00:00", "--faults", "seed=3")
    assert result.exit_code == 0, result.output
    [config] = served
    assert config.seed == 7 and config.now == NOW and config.faults == FaultConfig(seed=3)
    world = build_emulator(EmulatorConfig(seed=7, transactions=10, now=NOW)).world
    for secret in (config.client_secret, world.initial_token(1), world.initial_token(2)):
        assert secret not in result.output
    assert "EmulatorConfig.client_secret" in result.output and "/auth/renew" in result.output


def test_serve_takes_latency_options(serve_cli) -> None:
    result, served = serve_cli("--latency-ms", "250", "--jitter-ms", "20", "--faults", "seed=3")
    assert result.exit_code == 0, result.output
    assert served[0].faults == FaultConfig(seed=3, latency_ms=250, jitter_ms=20)
    assert "250 ms" in result.output


def test_the_state_route_answers_with_connection_state_faults_set() -> None:
    """User ids are integer keys in the fault config; JSON keys are strings (this answered 500)."""
    faults = FaultConfig(connection_states={1: "SCARequired"})
    with start_emulator(EmulatorConfig(seed=3, transactions=50, now=NOW, faults=faults)) as e:
        response = httpx.get(f"{e.base_url}/__emulator/state")
    assert response.status_code == 200
    assert response.json()["faults"]["connection_states"] == {"1": "SCARequired"}


@pytest.mark.parametrize("malformed", [0.0, 0.2])
def test_pages_are_encoded_exactly_as_the_transaction_objects(malformed: float) -> None:
    """Pages are written column by column (fast); their bytes must be those of the transaction
    dicts through orjson, in every state the world goes through (edits, bookings, churn)."""
    import numpy as np
    import orjson

    from powens_emulator.churn import churn
    from powens_emulator.data import FamilyWorld
    from powens_emulator.encoding import RowEncoder
    from powens_emulator.shaping import transaction_json

    world = FamilyWorld(seed=5, transactions=4000, history_days=3 * 365, now=NOW)
    encoder = RowEncoder(world)
    for _ in range(3):
        rows = np.random.default_rng(1).permutation(len(world.rows))
        for page in (rows[:1], rows[:1000], rows):
            expected = orjson.dumps([transaction_json(world, int(i), malformed) for i in page])
            assert encoder.encode(page, malformed) == expected
        world.advance(2)
        churn(world, 8)
    assert encoder.encode(np.zeros(0, np.int64)) == b"[]"


def test_serve_takes_its_credentials_from_the_option_and_the_environment(
    serve_cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--client-id` (or $POWENS_EMULATOR_CLIENT_ID) and $POWENS_EMULATOR_CLIENT_SECRET: how
    `pfo demo` hands its emulator process the demo credentials; the secret is never printed."""
    monkeypatch.setenv("POWENS_EMULATOR_CLIENT_SECRET", "s3cret-from-env")
    result, served = serve_cli("--client-id", "family-client")
    assert result.exit_code == 0, result.output
    [config] = served
    assert (config.client_id, config.client_secret) == ("family-client", "s3cret-from-env")
    assert "s3cret-from-env" not in result.output
    assert "its secret is $POWENS_EMULATOR_CLIENT_SECRET" in result.output

    monkeypatch.setenv("POWENS_EMULATOR_CLIENT_ID", "client-from-env")
    result, served = serve_cli()
    assert served[-1].client_id == "client-from-env", result.output

    monkeypatch.setenv("POWENS_EMULATOR_CLIENT_SECRET", "")
    result, served = serve_cli()
    assert result.exit_code == 2 and len(served) == 2, result.output
    assert "POWENS_EMULATOR_CLIENT_SECRET is set but empty" in result.output
