"""Keys, permissions and settings."""

from __future__ import annotations

import os
import socket
import tomllib
from pathlib import Path

import pytest

import computenet


def _curve_public(keys: str) -> str:
    with open(Path(keys) / "identity.pub", "rb") as f:
        return str(tomllib.load(f)["curve_public"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unenrolled_key_is_refused_not_unreachable(
        net, alice: computenet.Client) -> None:
    # The broker's ZAP handler refuses the CURVE handshake of a key it has
    # not enrolled; the SDK reads that from the socket monitor and raises
    # Unauthenticated at once, without its retries (retries=2 here: each
    # would be one more refused handshake in the broker's log).
    key = _curve_public(net.keys("mallory"))
    log = net.dir / "broker.log"
    refusals = lambda: log.read_text(errors="replace").count(  # noqa: E731
        f"refused unenrolled key {key}")
    before = refusals()
    mallory = computenet.Client(net.endpoint, net.broker_identity,
                                net.keys("mallory"), request_timeout=5.0,
                                retries=2)
    with pytest.raises(computenet.Unauthenticated) as refused:
        mallory.submit(command=["true"], max_duration_s=60)
    assert refused.value.code is computenet.StatusCode.UNAUTHENTICATED
    assert refused.value.message.startswith(
        f"key refused by the broker at {net.endpoint} (ZAP status 400)")
    assert not isinstance(refused.value, computenet.Unavailable)
    # The broker answers ZAP requests in order on one thread: once alice's
    # call is answered, any retry of mallory's would have been logged.
    alice.jobs(limit=1)
    assert refusals() == before + 1
    with pytest.raises(computenet.Unauthenticated):
        mallory.jobs()
    mallory.close()


def test_an_unreachable_broker_is_unavailable(net) -> None:
    nobody = f"tcp://127.0.0.1:{_free_port()}"
    client = computenet.Client(nobody, net.broker_identity, net.keys("alice"),
                               request_timeout=0.3, retries=1)
    with pytest.raises(computenet.Unavailable) as unreachable:
        client.jobs()
    assert unreachable.value.code is computenet.StatusCode.UNAVAILABLE
    assert unreachable.value.message.startswith(
        f"broker unreachable at {nobody}")
    assert isinstance(unreachable.value, ConnectionError)
    assert not isinstance(unreachable.value, computenet.Unauthenticated)
    client.close()


def test_a_wrong_pinned_broker_key_fails_the_handshake(net) -> None:
    # alice's identity.pub pinned as the broker's: the broker cannot open
    # the handshake sealed to that key and closes it.
    client = computenet.Client(net.endpoint, net.keys("alice") + "/identity.pub",
                               net.keys("alice"), request_timeout=5.0,
                               retries=2)
    with pytest.raises(computenet.FailedPrecondition) as failed:
        client.jobs()
    assert failed.value.message.startswith(
        f"handshake with {net.endpoint} failed: the broker's public key does "
        "not match the pinned key")
    client.close()


def test_admin_views_need_an_admin_key(
        alice: computenet.Client, ops: computenet.Client) -> None:
    with pytest.raises(computenet.PermissionDenied):
        alice.capacity()
    # A broker without peers: nothing advertised to it.
    assert ops.capacity() == []
    with pytest.raises(computenet.PermissionDenied) as denied:
        alice.statement(account="consumer:bob")
    assert "consumer:alice" in denied.value.message


def test_high_priority_needs_the_operators_grant(
        alice: computenet.Client, bob: computenet.Client) -> None:
    with pytest.raises(computenet.PermissionDenied) as denied:
        bob.submit(command=["true"], max_duration_s=60, priority="high")
    assert "computenet-broker priority" in denied.value.message
    job = alice.submit(command=["true"], max_duration_s=60, priority="high")
    assert job.wait(timeout=20).succeeded


def test_bad_settings_fail_at_construction(net) -> None:
    with pytest.raises(computenet.InvalidArgument, match="endpoint"):
        computenet.Client("", net.broker_identity, net.keys("alice"))
    with pytest.raises(computenet.NotFound):
        computenet.Client(net.endpoint, net.broker_identity,
                          str(net.dir / "no-such-keys"))
    with pytest.raises(computenet.Error):
        computenet.Client(net.endpoint, net.keys("alice") + "/curve.key",
                          net.keys("alice"))


def test_a_closed_client_refuses_calls(net) -> None:
    client = net.client("bob")
    other = computenet.Client(net.endpoint, net.broker_identity,
                              net.keys("bob"))
    with other:
        assert other.jobs() is not None
    with pytest.raises(computenet.FailedPrecondition):
        other.jobs()
    assert client.jobs() is not None  # another Client is not affected


def test_from_config_reads_the_file_then_the_environment(
        net, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("COMPUTENET_BROKER", "COMPUTENET_BROKER_IDENTITY",
                 "COMPUTENET_IDENTITY", "COMPUTENET_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    with pytest.raises(computenet.InvalidArgument, match="COMPUTENET_BROKER"):
        computenet.Client.from_config()  # no file, no environment

    config = tmp_path / "computenet" / "config.toml"
    config.parent.mkdir()
    os.symlink(net.broker_identity, config.parent / "broker.pub")
    os.symlink(net.keys("alice"), config.parent / "alice")
    config.write_text(f'broker = "{net.endpoint}"\n'
                      'broker_identity = "broker.pub"\n'
                      'identity = "alice"\n'
                      'request_timeout = 3.0\n')
    assert computenet.default_config_path() == config
    with computenet.Client.from_config() as client:
        assert client.name == "alice"
        assert client.request_timeout == 3.0
        assert isinstance(client.jobs(), list)

    # The environment beats the file, and keyword arguments beat both.
    monkeypatch.setenv("COMPUTENET_IDENTITY", net.keys("bob"))
    with computenet.Client.from_config() as client:
        assert client.name == "bob"
    with computenet.Client.from_config(identity=net.keys("ops")) as client:
        assert client.name == "ops"

    config.write_text('brokr = "x"\n')
    with pytest.raises(computenet.InvalidArgument, match="unknown keys brokr"):
        computenet.Client.from_config()
    with pytest.raises(computenet.InvalidArgument, match="no config file"):
        computenet.Client.from_config(tmp_path / "missing.toml")
