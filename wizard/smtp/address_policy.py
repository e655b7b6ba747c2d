"""Which addresses and ports the web app may connect to (SSRF defence).

A merchant types the SMTP host, so without a policy the app could be made
to knock on internal services: the database next door, a cloud metadata
endpoint (169.254.169.254), anything on loopback. The probe resolves the
host once, checks every address against this policy and connects to the
checked address — no second look-up that DNS rebinding could change.

The rule is "globally reachable", read from the IANA special-purpose address
registries (``SPECIAL_PURPOSE`` below, written as data): the most specific
entry containing an address decides. IPv6 outside the global unicast space
2000::/3 is refused (the deprecated site-local fec0::/10 included). An IPv6
address that carries an IPv4 address (mapped, compatible, translated, NAT64,
6to4, Teredo) is refused when the IPv4 address inside is refused — even where
the IPv6 prefix itself is globally reachable. Python's ``is_private`` /
``is_global`` are not used: before 3.11.10 they miss several of these ranges.

Explicit allowances: networks (``WIZARD_SMTP_ALLOWED_NETWORKS``, the tests)
and single endpoints — one address *and* one port, such as the local test
mailbox, which opens nothing else on that address. The operator CLI does not
use a policy.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

DEFAULT_PORTS = frozenset({25, 465, 587, 2525})

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

LOOPBACK = "a loopback address (this server itself)"
PRIVATE = "a private network address"
LINK_LOCAL = "a link-local address (such as a cloud metadata service)"
DOCUMENTATION = "an address reserved for documentation"
RESERVED = "a reserved address, not used on the public internet"
MULTICAST = "a multicast address"
EMBEDDED = None  # decided by the IPv4 address the IPv6 address carries

# (network, globally reachable, why not) — the IANA IPv4 and IPv6
# Special-Purpose Address Registries (plus multicast, the old site-local
# range and the global unicast space). ``True``: reachable; ``False``: refused;
# ``None``: the answer is the embedded IPv4 address's.
SPECIAL_PURPOSE: tuple[tuple[str, bool | None, str], ...] = (
    # IPv4
    ("0.0.0.0/0", True, ""),
    ("0.0.0.0/8", False, "the unspecified address (\"this network\")"),
    ("10.0.0.0/8", False, PRIVATE),
    ("100.64.0.0/10", False, "a carrier-grade NAT address"),
    ("127.0.0.0/8", False, LOOPBACK),
    ("169.254.0.0/16", False, LINK_LOCAL),
    ("172.16.0.0/12", False, PRIVATE),
    ("192.0.0.0/24", False, "an IETF protocol assignment, not a public host"),
    ("192.0.0.9/32", True, ""),  # Port Control Protocol anycast
    ("192.0.0.10/32", True, ""),  # TURN anycast
    ("192.0.2.0/24", False, DOCUMENTATION),
    ("192.31.196.0/24", True, ""),  # AS112-v4
    ("192.52.193.0/24", True, ""),  # AMT
    ("192.88.99.0/24", False, "the deprecated 6to4 relay anycast range"),
    ("192.168.0.0/16", False, PRIVATE),
    ("192.175.48.0/24", True, ""),  # AS112 direct delegation
    ("198.18.0.0/15", False, "a benchmarking address"),
    ("198.51.100.0/24", False, DOCUMENTATION),
    ("203.0.113.0/24", False, DOCUMENTATION),
    ("224.0.0.0/4", False, MULTICAST),
    ("240.0.0.0/4", False, RESERVED),
    ("255.255.255.255/32", False, "the broadcast address"),
    # IPv6: only the global unicast space is reachable, then the exceptions.
    ("::/0", False, RESERVED),
    ("::/128", False, "the unspecified address"),
    ("::1/128", False, LOOPBACK),
    ("::/96", EMBEDDED, ""),  # IPv4-compatible (deprecated): ::a.b.c.d
    ("::ffff:0:0/96", EMBEDDED, ""),  # IPv4-mapped: ::ffff:a.b.c.d
    ("::ffff:0:0:0/96", EMBEDDED, ""),  # IPv4-translated (SIIT): ::ffff:0:a.b.c.d
    ("64:ff9b::/96", EMBEDDED, ""),  # NAT64 well-known prefix
    ("64:ff9b:1::/48", False, "a local-use NAT64 address (a private translator)"),
    ("100::/64", False, "a discard-only address"),
    ("100:0:0:1::/64", False, RESERVED),
    ("2000::/3", True, ""),
    ("2001::/23", False, "an IETF protocol assignment, not a public host"),
    ("2001::/32", EMBEDDED, ""),  # Teredo
    ("2001:1::1/128", True, ""),  # Port Control Protocol anycast
    ("2001:1::2/128", True, ""),  # TURN anycast
    ("2001:1::3/128", True, ""),  # DNS-SD SRP anycast
    ("2001:2::/48", False, "a benchmarking address"),
    ("2001:3::/32", True, ""),  # AMT
    ("2001:4:112::/48", True, ""),  # AS112-v6
    ("2001:10::/28", False, RESERVED),  # ORCHID (deprecated)
    ("2001:20::/28", True, ""),  # ORCHIDv2
    ("2001:30::/28", True, ""),  # Drone remote ID
    ("2001:db8::/32", False, DOCUMENTATION),
    ("2002::/16", EMBEDDED, ""),  # 6to4
    ("2620:4f:8000::/48", True, ""),  # AS112 direct delegation
    ("3fff::/20", False, DOCUMENTATION),
    ("5f00::/16", False, "a segment-routing identifier, not a host"),
    ("fc00::/7", False, "a unique-local (private) address"),
    ("fe80::/10", False, LINK_LOCAL),
    ("fec0::/10", False, "a site-local (private) address"),
    ("ff00::/8", False, MULTICAST),
)

_TABLE = tuple(sorted(((ipaddress.ip_network(net), reachable, why) for net, reachable, why in SPECIAL_PURPOSE),
                      key=lambda entry: entry[0].prefixlen, reverse=True))


def _ipv4(value: int) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address(value & 0xFFFFFFFF)


def embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (empty when it is none of the wrapping forms).

    Mapped, compatible, translated and NAT64 (both prefixes, RFC 6052 /96
    form) carry it in the last 32 bits; 6to4 in bits 16–47; Teredo carries its
    server in bits 32–63 and the client in the last 32 bits, inverted.
    """
    value = int(address)
    high96 = value >> 32
    if high96 in (0, 0xFFFF, 0xFFFF_0000) or address in _NAT64 or address in _NAT64_LOCAL:
        return [_ipv4(value)]
    if address in _SIX_TO_FOUR:
        return [_ipv4(value >> 80)]
    if address in _TEREDO:
        return [_ipv4(value >> 64), _ipv4(~value)]
    return []


_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_SIX_TO_FOUR = ipaddress.ip_network("2002::/16")
_TEREDO = ipaddress.ip_network("2001::/32")


def _entry(address: Address) -> tuple[bool | None, str]:
    for network, reachable, why in _TABLE:
        if network.version == address.version and address in network:
            return reachable, why
    return False, RESERVED  # unreachable: the /0 entries cover everything


def why_not_global(address: Address) -> str | None:
    """None when ``address`` is globally reachable, else why not, in words."""
    reachable, why = _entry(address)
    if reachable is False:
        return why
    if isinstance(address, ipaddress.IPv6Address):
        inner = embedded_ipv4(address)
        if reachable is None and not inner:  # cannot happen with the table above
            return RESERVED
        for carried in inner:
            reason = why_not_global(carried)
            if reason:
                return f"an IPv6 form of {carried}, which is {reason}"
    return None


@dataclass(frozen=True)
class AddressPolicy:
    """Allowed ports (None: any), networks allowed although not public, and
    single (address, port) endpoints allowed on their own port only."""

    ports: frozenset[int] | None = DEFAULT_PORTS
    allowed_networks: tuple = field(default_factory=tuple)
    allowed_endpoints: tuple = field(default_factory=tuple)

    @classmethod
    def from_config(cls, ports, networks) -> AddressPolicy:
        """``ports``: iterable or comma-separated text ("" = any); ``networks``: comma-separated CIDRs."""
        if isinstance(ports, str):
            ports = [int(p) for p in ports.replace(" ", "").split(",") if p]
        port_set = frozenset(int(p) for p in ports) if ports else None
        if isinstance(networks, str):
            networks = [n.strip() for n in networks.split(",") if n.strip()]
        return cls(port_set, tuple(ipaddress.ip_network(n, strict=False) for n in networks or ()))

    def with_allowed(self, host: str, port: int) -> AddressPolicy:
        """The same policy, also allowing exactly one address on one port (the
        local test mailbox) — not that address on other ports, nor that port elsewhere."""
        endpoint = (ipaddress.ip_address(host), int(port))
        return AddressPolicy(self.ports, self.allowed_networks, self.allowed_endpoints + (endpoint,))

    def _port_allowed(self, port: int) -> bool:
        return self.ports is None or port in self.ports

    def port_refusal(self, port: int) -> str | None:
        """None when ``port`` may be used for some address (the address check decides the rest)."""
        if self._port_allowed(port) or any(port == allowed for _address, allowed in self.allowed_endpoints):
            return None
        return self._port_message(port)

    def _port_message(self, port: int) -> str:
        allowed = ", ".join(str(p) for p in sorted(self.ports or ()))
        return f"Port {port} is not allowed for outgoing mail here; use one of {allowed}."

    def address_refusal(self, text: str, port: int | None = None) -> str | None:
        """None when ``text`` (on ``port``, when given) may be connected to, else the reason."""
        address = ipaddress.ip_address(text.split("%", 1)[0])
        if port is not None and (address, port) in self.allowed_endpoints:
            return None
        allowed = any(address in network for network in self.allowed_networks if network.version == address.version)
        reason = None if allowed else why_not_global(address)
        if reason:
            return (f"{text} is {reason}. HeiChat only connects to mail servers on the public "
                    f"internet; check the SMTP host.")
        if port is not None and not self._port_allowed(port):
            # The port is open only for an allowed endpoint, and this is not it.
            return self._port_message(port)
        return None
