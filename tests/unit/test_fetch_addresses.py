"""Which addresses a dataset URL may be fetched from (pure)."""

from __future__ import annotations

import pytest

from jobyard.backends.storage.url import address_allowed


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.1",
        "::1",
        "10.1.2.3",
        "172.16.0.9",
        "192.168.1.1",
        "169.254.169.254",  # the cloud metadata service
        "fd00:ec2::254",  # its IPv6 address on AWS
        "fe80::1",
        "100.64.0.1",  # carrier-grade NAT
        "0.0.0.0",
        "224.0.0.1",
        "::ffff:127.0.0.1",  # loopback dressed as IPv6
        "::ffff:10.0.0.1",
    ],
)
def test_internal_addresses_are_refused(address):
    assert not address_allowed(address, "data.example.com", ())


@pytest.mark.parametrize("address", ["8.8.8.8", "2606:4700:4700::1111", "93.184.215.14"])
def test_public_addresses_are_fetched(address):
    assert address_allowed(address, "data.example.com", ())


def test_an_operator_allows_hosts_by_name_or_address():
    assert address_allowed("10.0.0.5", "minio.internal", frozenset({"minio.internal"}))
    assert address_allowed("10.0.0.5", "minio.internal", frozenset({"10.0.0.5"}))
    assert not address_allowed("10.0.0.6", "other.internal", frozenset({"minio.internal"}))
