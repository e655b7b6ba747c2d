"""Resolving a mail host once, with a deadline, before any socket is opened.

Both resolvers return ``getaddrinfo``-shaped tuples, so a session (SMTP or
IMAP) checks every address against the address policy (``first_refusal``)
and then connects to a checked one (``connect_first``), never through a
second look-up.
"""
from __future__ import annotations

import ipaddress
import socket
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout

import dns.exception
import dns.resolver

from wizard.dns.resolver import parse_nameserver

__all__ = ["resolve", "resolve_with_nameserver", "resolve_target", "first_refusal", "connect_first"]

# Look-ups run on long-lived threads: ``getaddrinfo`` has no deadline of its
# own, and starting a thread per look-up costs more than the look-up itself.
# A look-up that hangs holds one thread until the system resolver gives up.
_LOOKUPS = ThreadPoolExecutor(max_workers=16, thread_name_prefix="smtp-dns")


def resolve(host: str, port: int, timeout: float) -> list[tuple]:
    """``getaddrinfo`` with a deadline (the C call itself has none)."""
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    pending = _LOOKUPS.submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    try:
        return pending.result(timeout)
    except FuturesTimeout:
        raise TimeoutError(f"looking up {host} took longer than {timeout:.0f} s") from None


def resolve_with_nameserver(nameserver: str, host: str, port: int, timeout: float) -> list[tuple]:
    """Addresses of ``host`` from one DNS server, shaped like ``getaddrinfo``'s."""
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        family = socket.AF_INET6 if literal.version == 6 else socket.AF_INET
        return [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (host, port))]
    server, server_port = parse_nameserver(nameserver)
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers, resolver.port = [server], server_port
    resolver.timeout = resolver.lifetime = timeout
    addresses = []
    for rdtype, family in (("A", socket.AF_INET), ("AAAA", socket.AF_INET6)):
        try:
            answer = resolver.resolve(host, rdtype, search=False)
        except dns.resolver.NXDOMAIN:
            raise socket.gaierror(socket.EAI_NONAME, f"{host} does not exist (NXDOMAIN)") from None
        except dns.resolver.NoAnswer:
            continue
        except dns.exception.Timeout:
            raise TimeoutError(f"the DNS server did not answer for {host} in time") from None
        except dns.exception.DNSException as exc:  # a malformed name, SERVFAIL …
            raise socket.gaierror(socket.EAI_FAIL, f"looking up {host} failed: {exc}") from None
        addresses += [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (r.address, port)) for r in answer]
    if not addresses:
        raise socket.gaierror(socket.EAI_NODATA, f"{host} has no address records")
    return addresses


def first_refusal(addresses: list[tuple], policy) -> str | None:
    """Why ``policy`` refuses one of the resolved ``addresses`` (None: all allowed, or no policy)."""
    if policy is None:
        return None
    for *_ignored, address in addresses:
        refusal = policy.address_refusal(address[0], address[1])
        if refusal:
            return refusal
    return None


def connect_first(addresses: list[tuple], timeout) -> tuple[socket.socket, tuple]:
    """A socket connected to the first of ``addresses`` that answers, and that
    address; ``timeout()`` gives each attempt's time. Raises the last ``OSError``."""
    last_error: OSError | None = None
    for family, kind, proto, _name, address in addresses:
        sock = socket.socket(family, kind, proto)
        sock.settimeout(timeout())
        try:
            sock.connect(address)
        except OSError as exc:
            sock.close()
            last_error = exc
            continue
        return sock, address
    raise last_error or OSError("no address to connect to")


def resolve_target(target, timeout: float) -> list[tuple]:
    """The addresses of ``target`` (an SMTP or IMAP target: ``host``, ``port``, ``nameserver``)."""
    if target.nameserver:
        return resolve_with_nameserver(target.nameserver, target.host, target.port, timeout)
    return resolve(target.host, target.port, timeout)
