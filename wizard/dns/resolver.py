"""A small DNS client: TXT and MX look-ups with plain answers and clear errors.

``DnsResolver(nameserver="127.0.0.1:5353", timeout=2)`` asks exactly that
server (tests and the ``dns-check --nameserver`` option use it);
``DnsResolver()`` uses the system's resolver configuration. A name that does
not exist or has no record of the type gives an empty list; a server that
does not answer in time, fails (SERVFAIL) or cannot be reached raises
:class:`DnsLookupError`, so callers can tell "nothing published" from "could
not find out".
"""
from __future__ import annotations

import ipaddress
import math

import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver

DEFAULT_PORT = 53
DEFAULT_TIMEOUT = 3.0


class DnsLookupError(Exception):
    """A look-up that failed, as opposed to one that found nothing.

    ``reason`` is ``"timeout"``, ``"servfail"`` or ``"error"``; the message is
    a sentence fit to show a merchant.
    """

    def __init__(self, name: str, reason: str, message: str):
        super().__init__(message)
        self.name = name
        self.reason = reason


def parse_nameserver(value: str) -> tuple[str, int]:
    """Split ``"HOST:PORT"``, ``"HOST"``, ``"[::1]:5353"`` or ``"::1"`` into (ip, port).

    The host must be an IP address (a resolver needs one to send to); raises
    ValueError with a readable message otherwise.
    """
    text = (value or "").strip()
    if not text:
        raise ValueError("The nameserver is empty; give an IP address, optionally with :PORT.")
    host, port_text = text, ""
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"{value!r} is not a nameserver; write IPv6 with a port as [::1]:5353.")
        port_text = rest[1:] if rest else ""
        if rest and not port_text:
            raise ValueError(f"{value!r} has a ':' but no port after it.")
    elif text.count(":") == 1:
        host, port_text = text.split(":")
        if not port_text:
            raise ValueError(f"{value!r} has a ':' but no port after it.")
    # More than one ':' without brackets can only be a bare IPv6 address.
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"{host!r} is not an IP address; the nameserver must be given as an IP address.") from None
    port = DEFAULT_PORT
    if port_text:
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise ValueError(f"{port_text!r} is not a port number (1 to 65535).")
        port = int(port_text)
    return str(address), port


class DnsResolver:
    """TXT and MX look-ups against one nameserver, or the system's resolvers."""

    def __init__(self, nameserver: str | None = None, timeout: float = DEFAULT_TIMEOUT,
                 lifetime: float | None = None):
        """``timeout`` bounds each attempt, ``lifetime`` (default: ``timeout``) a whole look-up."""
        if not (isinstance(timeout, (int, float)) and math.isfinite(timeout) and timeout > 0):
            raise ValueError("The timeout must be a positive number of seconds.")
        self.timeout = float(timeout)
        self.lifetime = float(lifetime) if lifetime is not None else self.timeout
        self.nameserver = nameserver
        self._setup_error: str | None = None
        if nameserver:
            host, port = parse_nameserver(nameserver)
            self._resolver = dns.resolver.Resolver(configure=False)
            self._resolver.nameservers = [host]
            self._resolver.port = port
        else:
            try:
                self._resolver = dns.resolver.Resolver()
            except dns.exception.DNSException as exc:
                # Reported at look-up time, so a check can still say what it could not do.
                self._resolver = dns.resolver.Resolver(configure=False)
                self._setup_error = f"This computer has no usable DNS configuration ({exc})."
        self._resolver.timeout = self.timeout
        self._resolver.lifetime = self.lifetime

    def txt_records(self, name: str) -> list[str]:
        """The TXT records at ``name``, each one's character-strings joined and decoded."""
        answer = self._resolve(name, dns.rdatatype.TXT)
        # A record longer than 255 bytes is split into several strings; SPF and
        # DKIM read them joined with nothing in between (RFC 7208 3.3).
        return [b"".join(rdata.strings).decode("utf-8", errors="replace") for rdata in answer]

    def mx_hosts(self, domain: str) -> list[str]:
        """The MX hosts of ``domain``, most preferred first, lower-case, without the final dot."""
        answer = self._resolve(domain, dns.rdatatype.MX)
        ranked = sorted(
            (rdata.preference, rdata.exchange.to_text(omit_final_dot=True).lower())
            for rdata in answer
            # A "null MX" (RFC 7505) says the domain receives no mail at all.
            if rdata.exchange != dns.name.root
        )
        return [host for _, host in ranked]

    def _resolve(self, name: str, rdtype) -> list:
        if self._setup_error:
            raise DnsLookupError(name, "error", self._setup_error)
        try:
            qname = dns.name.from_text(name)
            return list(self._resolver.resolve(qname, rdtype, search=False))
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except dns.exception.Timeout:
            raise DnsLookupError(
                name, "timeout", f"The DNS server did not answer for {name} within {self.lifetime:g} s."
            ) from None
        except dns.resolver.NoNameservers:
            raise DnsLookupError(
                name, "servfail", f"The DNS server failed to answer for {name} (SERVFAIL or refused)."
            ) from None
        except (dns.exception.DNSException, OSError) as exc:
            raise DnsLookupError(name, "error", f"Looking up {name} failed: {exc}") from None
