"""The local S3 starts even when a port it picked is taken before SeaweedFS binds it (CI saw its
S3 gRPC port taken by one of its own outgoing connections), and it picks its ports where the
system does not hand out ephemeral ones."""

from __future__ import annotations

import socket

import pytest

from pfo_pipeline import local_s3


def test_ports_are_free_distinct_and_below_the_ephemeral_range() -> None:
    ports = local_s3.listening_ports(8)
    assert len(set(ports)) == 8
    assert all(local_s3.PORT_FLOOR <= p < local_s3._ephemeral_floor() for p in ports)
    for port in ports:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


@pytest.mark.scale_out  # two SeaweedFS starts and a stop: ~8 s, in the scale-out CI step
def test_a_start_that_loses_a_port_is_tried_again_on_new_ports(monkeypatch) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    real = local_s3.listening_ports
    calls: list[list[int]] = []

    def first_with_a_taken_port(count: int) -> list[int]:
        ports = real(count)
        if not calls:
            ports[-1] = taken.getsockname()[1]  # the S3 gRPC port, bound last
        calls.append(ports)
        return ports

    monkeypatch.setattr(local_s3, "listening_ports", first_with_a_taken_port)
    try:
        with local_s3.seaweedfs(bucket="retried") as store:
            store.filesystem().create_dir("retried/ok")
            assert len(calls) == 2 and str(calls[1][3]) in store.endpoint_url
    finally:
        taken.close()
