"""The private-network guard's judgement (engine.netguard), as tables. Pure: no address
here is ever resolved or connected to."""

from __future__ import annotations

import ipaddress

import pytest

from engine.netguard import embedded_ipv4, is_address_allowed, parse_host_literal, parse_networks

LOOPBACK = parse_networks("127.0.0.0/8")


@pytest.mark.parametrize(
    ("host", "embedded"),
    [
        ("::127.0.0.1", ["127.0.0.1"]),  # IPv4-compatible
        ("[::127.0.0.1]", ["127.0.0.1"]),
        ("::ffff:10.0.0.1", ["10.0.0.1"]),  # IPv4-mapped
        ("64:ff9b::7f00:1", ["127.0.0.1"]),  # NAT64 well-known prefix
        ("64:ff9b::169.254.169.254", ["169.254.169.254"]),
        ("2002:a00:1::1", ["10.0.0.1"]),  # 6to4
        # Teredo: server 65.54.227.120, client 127.0.0.1 obfuscated (xor ffff:ffff)
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", ["65.54.227.120", "127.0.0.1"]),
        ("::", []),
        ("::1", []),
        ("2001:4860:4860::8888", []),
        ("8.8.8.8", []),
    ],
)
def test_embedded_ipv4(host, embedded):
    address = parse_host_literal(host)
    assert [str(a) for a in embedded_ipv4(address)] == embedded


@pytest.mark.parametrize(
    "host",
    [
        "::127.0.0.1",
        "::10.0.0.1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "64:ff9b::7f00:1",
        "64:ff9b::a00:1",
        "64:ff9b::c0a8:101",
        "64:ff9b:1::a00:1",  # local-use NAT64: refused as a whole
        "2002:7f00:1::",
        "2002:a9fe:a9fe::1",
        "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo, client 127.0.0.1
        "2001:0:a00:1:8000:63bf:f7f7:f7f7",  # Teredo, server 10.0.0.1
        "::",
        "::1",
        "fd00::1",
        "fe80::1",
        "ff02::1",
    ],
)
def test_private_addresses_in_any_ipv6_wrapping_are_refused(host):
    assert not is_address_allowed(ipaddress.ip_address(host))


@pytest.mark.parametrize(
    "host",
    [
        "::8.8.8.8",
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",
        "2002:808:808::1",
        "2001:0:808:808:8000:63bf:f7f7:f7f7",  # Teredo with public server and client
        "2001:4860:4860::8888",
        "8.8.8.8",
    ],
)
def test_public_addresses_in_an_ipv6_wrapping_are_judged_by_the_ipv4(host):
    assert is_address_allowed(ipaddress.ip_address(host))


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("::ffff:127.0.0.1", True),
        ("::127.0.0.1", True),
        ("64:ff9b::7f00:1", True),
        ("2002:7f00:1::", True),
        ("64:ff9b::a00:1", False),
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", True),  # public server, loopback client
        ("2001:0:a00:1:8000:63bf:80ff:fffe", False),  # private server not in the list
    ],
)
def test_allowed_networks_apply_to_the_embedded_ipv4(host, allowed):
    assert is_address_allowed(ipaddress.ip_address(host), LOOPBACK) is allowed
