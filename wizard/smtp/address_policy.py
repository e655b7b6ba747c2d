"""Which addresses and ports the web app may connect to (SSRF defence).

A merchant types the SMTP host, so without a policy the app could be made
to knock on internal services: the database next door, a cloud metadata
endpoint (169.254.169.254), anything on loopback. The probe resolves the
host once, checks every address against this policy and connects to the
checked address — no second look-up that DNS rebinding could change.

Refused: loopback, private, link-local, carrier-grade NAT (100.64.0.0/10),
multicast, unspecified, reserved and every other non-global range, in IPv4
and IPv6, including IPv4 addresses wrapped in IPv6 (mapped, NAT64, 6to4,
Teredo). Networks and ports can be allowed explicitly (the local test
mailbox, the tests). The operator CLI does not use a policy.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

DEFAULT_PORTS = frozenset({25, 465, 587, 2525})
NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries, if it is one of the wrapping forms."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


def describe(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """Why an address is not public, in words."""
    if address.is_loopback:
        return "a loopback address (this server itself)"
    if address.is_link_local:
        return "a link-local address (such as a cloud metadata service)"
    if address.is_multicast:
        return "a multicast address"
    if address.is_unspecified:
        return "the unspecified address"
    if isinstance(address, ipaddress.IPv4Address) and address in ipaddress.ip_network("100.64.0.0/10"):
        return "a carrier-grade NAT address"
    if address.is_private:
        return "a private network address"
    return "not a public internet address"


@dataclass(frozen=True)
class AddressPolicy:
    """Allowed ports (None: any) and networks allowed although not public."""

    ports: frozenset[int] | None = DEFAULT_PORTS
    allowed_networks: tuple = field(default_factory=tuple)

    @classmethod
    def from_config(cls, ports, networks) -> "AddressPolicy":
        """``ports``: iterable or comma-separated text ("" = any); ``networks``: comma-separated CIDRs."""
        if isinstance(ports, str):
            ports = [int(p) for p in ports.replace(" ", "").split(",") if p]
        port_set = frozenset(int(p) for p in ports) if ports else None
        if isinstance(networks, str):
            networks = [n.strip() for n in networks.split(",") if n.strip()]
        return cls(port_set, tuple(ipaddress.ip_network(n, strict=False) for n in networks or ()))

    def with_allowed(self, host: str, port: int) -> "AddressPolicy":
        """The same policy, also allowing one address and port (the local test mailbox)."""
        network = ipaddress.ip_network(host)
        ports = None if self.ports is None else self.ports | {port}
        return AddressPolicy(ports, self.allowed_networks + (network,))

    def port_refusal(self, port: int) -> str | None:
        if self.ports is None or port in self.ports:
            return None
        allowed = ", ".join(str(p) for p in sorted(self.ports))
        return f"Port {port} is not allowed for outgoing mail here; use one of {allowed}."

    def address_refusal(self, text: str) -> str | None:
        """None when ``text`` may be connected to, else the reason."""
        address = ipaddress.ip_address(text.split("%", 1)[0])
        if any(address in network for network in self.allowed_networks if network.version == address.version):
            return None
        candidates = [address]
        if isinstance(address, ipaddress.IPv6Address):
            inner = _embedded_ipv4(address)
            if inner is not None:
                candidates.append(inner)
        for candidate in candidates:
            if not candidate.is_global or candidate.is_multicast:
                return (f"{text} is {describe(candidate)}. HeiChat only connects to mail servers on the public "
                        f"internet; check the SMTP host.")
        return None
