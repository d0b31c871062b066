"""The demo's emulator in a process of its own (`pfo_pipeline/emulator_process.py`): it answers
with the credentials it was handed, and is stopped however the block ends (done, an error,
Ctrl-C); a taken port or an emulator that dies at start is a clear error, at once; one that
ignores SIGTERM is killed after the grace period."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import httpx
import pytest

from pfo_pipeline.emulator_process import (
    EmulatorStartError,
    emulator_process,
    free_port,
    stop,
)

CREDENTIALS = {"client_id": "family-office-client", "client_secret": "not-the-default-secret"}


def start(**overrides):
    return emulator_process(
        **{"port": 0, "seed": 3, "transactions": 50, **CREDENTIALS, **overrides}
    )


def renew(base_url: str, client_id: str, client_secret: str) -> int:
    body = {"client_id": client_id, "client_secret": client_secret, "id_user": 1}
    return httpx.post(f"{base_url}/auth/renew", json=body, timeout=10).status_code


def port_of(base_url: str) -> int:
    return int(base_url.split(":")[2].split("/")[0])


def assert_stopped(running) -> None:
    assert running.process.returncode is not None  # exited and reaped
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{running.base_url}/connectors", timeout=2)


def test_it_answers_with_the_credentials_it_was_handed_and_stops_after() -> None:
    with start() as running:
        assert httpx.get(f"{running.base_url}/connectors", timeout=5).status_code == 200
        assert renew(running.base_url, **CREDENTIALS) == 200
        assert renew(running.base_url, "pfo-demo-client", "pfo-demo-secret") != 200
        assert "--client-id" in running.process.args
        assert CREDENTIALS["client_secret"] not in " ".join(running.process.args)
    assert_stopped(running)
    with socket.socket() as sock:  # the port is free again
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port_of(running.base_url)))


@pytest.mark.parametrize("interruption", [RuntimeError("a run failed"), KeyboardInterrupt()])
def test_it_is_stopped_when_the_block_fails_or_is_interrupted(interruption) -> None:
    seen = []
    with pytest.raises(type(interruption)), start() as running:
        seen.append(running)
        raise interruption
    assert_stopped(seen[0])


def test_a_taken_port_is_refused_before_starting() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(EmulatorStartError, match=f"port {port} on 127.0.0.1 is in use"):
            with start(port=port):
                pytest.fail("started on a taken port")


def test_an_emulator_that_exits_at_start_is_reported_at_once_with_its_output() -> None:
    began = time.monotonic()
    with pytest.raises(EmulatorStartError) as caught, start(transactions=-1):
        pytest.fail("started with a bad option")
    assert "exited with code 2 before answering" in str(caught.value)
    assert "Invalid value for '--transactions'" in str(caught.value)
    assert time.monotonic() - began < 60  # not the start timeout


def test_stop_kills_a_process_that_ignores_sigterm() -> None:
    stubborn = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import signal, time\n"
            "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "print('ready', flush=True)\n"
            "time.sleep(120)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert stubborn.stdout.readline().strip() == "ready"
    began = time.monotonic()
    stop(stubborn, grace_s=0.5)
    assert stubborn.returncode == -9 and time.monotonic() - began < 10
    stubborn.stdout.close()


def test_free_port_gives_a_bindable_port() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", free_port()))
