"""SshRunner pieces that need no server: key and known_hosts loading, addresses, all-down."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from jobyard.backends.errors import BackendUnavailable, SubmitRejected
from jobyard.backends.slurm.ssh import Endpoint, SshRunner, load_known_hosts, load_private_key
from tests.slurm.cluster import free_ports


def _openssh(
    key: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()


def _public_line(host: str, key: ed25519.Ed25519PrivateKey) -> str:
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return f"{host} {public.decode()}"


@pytest.mark.parametrize(
    ("key", "name"),
    [
        (ed25519.Ed25519PrivateKey.generate(), "ssh-ed25519"),
        (ec.generate_private_key(ec.SECP256R1()), "ecdsa-sha2-nistp256"),
        (rsa.generate_private_key(public_exponent=65537, key_size=2048), "ssh-rsa"),
    ],
)
def test_any_supported_key_type_loads(
    key: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, name: str
) -> None:
    assert load_private_key(_openssh(key)).get_name() == name


def test_garbage_key_is_rejected() -> None:
    with pytest.raises(SubmitRejected, match="private key not readable"):
        load_private_key("not a key")


def test_known_hosts_plain_and_hashed() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    hashed = "|1|" + "Zm9vYmFyYmF6cXV4cXV1eHh4eHg=" + "|" + "c2lnbmF0dXJlLW5vdC1yZWFsLXh4eHg="
    text = "\n".join(
        [
            "# comment",
            "",
            _public_line("[10.0.0.1]:2222", key),
            _public_line("login1,login2", key),
            _public_line(hashed, key),
        ]
    )
    keys = load_known_hosts(text)
    assert keys.lookup("[10.0.0.1]:2222") is not None
    assert keys.lookup("login2") is not None
    assert keys.lookup("elsewhere") is None


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [
        ("login1", "login1", 22),
        ("login1:2222", "login1", 2222),
        ("127.0.0.1:22", "127.0.0.1", 22),
        ("[::1]:2200", "::1", 2200),
        ("[::1]", "::1", 22),
    ],
)
def test_endpoint_parse(text: str, host: str, port: int) -> None:
    assert Endpoint.parse(text) == Endpoint(host, port)


def test_all_hosts_down_is_unavailable() -> None:
    first, second = free_ports(2)  # nothing listens on either
    runner = SshRunner(
        [f"127.0.0.1:{first}", f"127.0.0.1:{second}"],
        username="nobody",
        private_key=_openssh(ed25519.Ed25519PrivateKey.generate()),
        known_hosts="",
        connect_timeout=2.0,
    )
    with runner, pytest.raises(BackendUnavailable, match="no SSH host reachable") as caught:
        runner.run("true")
    assert f"127.0.0.1:{first}" in str(caught.value)
    assert f"127.0.0.1:{second}" in str(caught.value)
    assert runner.round_trips == 0
    assert runner.active_host is None


def test_no_hosts_is_rejected() -> None:
    with pytest.raises(SubmitRejected):
        SshRunner([], username="u", private_key="", known_hosts="")
