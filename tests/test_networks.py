"""networks: CIDR lists, matching, and the client address behind (un)trusted proxies."""

from __future__ import annotations

import ipaddress

import pytest

from attendance_live.networks import client_address, in_networks, parse_address, parse_networks

PROXIES = parse_networks(["10.0.0.0/24", "fd00::/64"], "TRUSTED_PROXIES entry")


def test_parse_networks_accepts_ipv4_ipv6_and_single_addresses() -> None:
    nets = parse_networks(["192.168.1.0/24", "2001:db8::/48", "203.0.113.7"], "x")
    assert [str(n) for n in nets] == ["192.168.1.0/24", "2001:db8::/48", "203.0.113.7/32"]


@pytest.mark.parametrize("bad", ["10.0.0.1/8", "not-a-net", "300.1.1.1/32", "10.0.0.0/33", ""])
def test_parse_networks_names_the_bad_entry_and_the_fix(bad: str) -> None:
    with pytest.raises(ValueError, match="allowed_networks entry") as caught:
        parse_networks([bad], "allowed_networks entry")
    assert "CIDR notation" in str(caught.value)


def test_an_ipv4_mapped_ipv6_peer_counts_as_ipv4() -> None:
    mapped = parse_address("::ffff:192.168.1.9")
    assert mapped == ipaddress.IPv4Address("192.168.1.9")
    assert mapped is not None
    assert in_networks(mapped, parse_networks(["192.168.1.0/24"], "x"))
    assert parse_address("nonsense") is None


def test_without_trusted_proxies_the_peer_is_the_client_whatever_the_header_says() -> None:
    assert str(client_address("198.51.100.4", ["10.1.2.3"], ())) == "198.51.100.4"


def test_an_untrusted_peer_cannot_spoof_its_address() -> None:
    assert str(client_address("198.51.100.4", ["10.0.0.9"], PROXIES)) == "198.51.100.4"


def test_behind_a_trusted_proxy_the_right_most_untrusted_address_is_the_client() -> None:
    # The client forged "1.2.3.4"; the proxy appended the real one.
    forwarded = ["1.2.3.4, 203.0.113.50", "10.0.0.7"]
    assert str(client_address("10.0.0.5", forwarded, PROXIES)) == "203.0.113.50"
    assert str(client_address("fd00::1", ["2001:db8::9"], PROXIES)) == "2001:db8::9"


def test_a_garbled_hop_makes_the_client_unknown_and_a_chain_of_proxies_stops_at_its_end() -> None:
    assert client_address("10.0.0.5", ["garbage, 10.0.0.8"], PROXIES) is None
    assert str(client_address("10.0.0.5", [], PROXIES)) == "10.0.0.5"
    assert str(client_address("10.0.0.5", ["10.0.0.2, 10.0.0.3"], PROXIES)) == "10.0.0.2"
    assert client_address(None, ["1.2.3.4"], PROXIES) is None
