"""`pfo webhooks serve` and `pfo connect`."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

import click
import httpx
import uvicorn

from pfo_pipeline.webhooks.inbox import DEFAULT_STATE_TTL, Inbox
from pfo_pipeline.webhooks.receiver import DEFAULT_MAX_BODY_BYTES, create_receiver


@click.group(name="webhooks")
def webhooks_cli() -> None:
    """The Powens webhook receiver."""


@webhooks_cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8787, show_default=True)
@click.option(
    "--inbox",
    "inbox_file",
    type=click.Path(path_type=Path),
    default=None,
    help="SQLite inbox (PFO_WEBHOOK_INBOX).",
)
@click.option(
    "--max-body-bytes",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_BODY_BYTES,
    show_default=True,
    help="Larger webhook bodies are refused with 413.",
)
@click.option(
    "--state-ttl-minutes",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_STATE_TTL.total_seconds() / 60,
    show_default=True,
    help="How long a `pfo connect` state stays valid.",
)
def serve(
    host: str, port: int, inbox_file: Path | None, max_body_bytes: int, state_ttl_minutes: float
) -> None:
    """Verify and record Powens webhooks; the Dagster sensor turns them into syncs."""
    from pfo_pipeline.tenancy.config import TenantConfigError, load_tenants

    try:
        tenants = load_tenants()
    except TenantConfigError as exc:
        raise click.ClickException(str(exc)) from None
    inbox = Inbox(inbox_file)
    app = create_receiver(
        inbox,
        tenants=tenants,
        max_body_bytes=max_body_bytes,
        state_ttl=timedelta(minutes=state_ttl_minutes),
    )
    click.echo(
        f"Webhook receiver on http://{host}:{port}/webhooks/powens/<connection_id>/<EVENT> (inbox {inbox.path})"
    )
    for line in connections_without_secret(tenants):
        click.echo(f"warning: {line}", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


def connections_without_secret(tenants: dict) -> list[str]:
    """One line per connection whose webhooks would all be refused: no `webhook_secret` named,
    or its variable not set here (variable names only, never values)."""
    from pfo_pipeline.tenancy.config import resolve_secret

    lines = []
    for tenant in tenants.values():
        binding = tenant.primary_open_banking
        if binding is None:
            continue
        name = binding.secrets.webhook_secret
        if name is None:
            why = "the tenants file names no secrets.webhook_secret"
        elif resolve_secret(name) is None:
            why = f"environment variable {name} is not set (nor in ./.env)"
        else:
            continue
        lines.append(
            f"connection {binding.connection_id} (tenant {tenant.tenant_id}) has no webhook "
            f"secret: {why}; its webhooks will be refused as an invalid signature"
        )
    return lines


def is_emulator(base_url: str) -> bool:
    """Whether `base_url` is served by the Powens emulator: it answers its control route
    (`GET …/__emulator/state`), which Powens does not have."""
    try:
        answer = httpx.get(f"{base_url}/__emulator/state", timeout=2.0)
        body = answer.json() if answer.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return False
    return isinstance(body, dict) and "faults" in body and "now" in body


@click.command(name="connect")
@click.option("--tenant", "tenant_id", required=True, help="Tenant whose bank to connect.")
@click.option("--redirect-uri", default="http://127.0.0.1:8787/connect/callback", show_default=True)
@click.option("--inbox", "inbox_file", type=click.Path(path_type=Path), default=None)
@click.option("--lang", default="en", show_default=True)
def connect(tenant_id: str, redirect_uri: str, inbox_file: Path | None, lang: str) -> None:
    """Print the Powens webview URL that links a bank to TENANT."""
    from pfo_pipeline.operations.powens_clients import powens_client_for
    from pfo_pipeline.powens.errors import PowensError
    from pfo_pipeline.tenancy.config import TenantConfigError, load_tenants, resolve_secret

    try:
        tenant = load_tenants().get(tenant_id)
        if tenant is None:
            raise click.ClickException(f"tenant {tenant_id!r} is not in the tenants file")
        binding = tenant.primary_open_banking
        with powens_client_for(tenant) as client:
            code = client.create_temporary_code()["code"]
    except (TenantConfigError, PowensError) as exc:
        raise click.ClickException(str(exc)) from None
    base_url = binding.config.resolved_base_url()
    if is_emulator(base_url):
        click.echo(
            f"note: {tenant_id} targets the Powens emulator at {base_url}, not Powens: the code "
            "below is the emulator's, and the webview link is what Powens would open",
            err=True,
        )
    state = Inbox(inbox_file).new_connect_state(tenant_id)
    domain = binding.config.domain or "sandbox"
    query = {
        "domain": f"{domain}.biapi.pro",
        "client_id": resolve_secret(binding.secrets.client_id) or "",
        "redirect_uri": redirect_uri,
        "code": code,
        "state": state,
    }
    click.echo(f"https://webview.powens.com/{lang}/connect?{urlencode(query)}")
