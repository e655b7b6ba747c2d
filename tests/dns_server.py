"""A real, tiny authoritative-and-recursive-looking DNS server for tests.

It serves a zone dict on 127.0.0.1, over UDP and TCP on the same free port
(dnspython retries over TCP when a UDP answer is truncated)::

    zone = {
        "yourstore.test": {"TXT": ["v=spf1 include:_spf.google.com ~all"],
                           "MX": [(10, "aspmx.l.google.com.")]},
        "s1._domainkey.yourstore.test": {"CNAME": "s1.key.example.net."},
    }
    with DnsTestServer(zone, silent={"slow.test"}) as server:
        DnsResolver(server.nameserver, timeout=1)

Unknown names get NXDOMAIN; a name that exists (or has names below it)
without the asked type gets NOERROR with no answer. CNAMEs are followed
inside the zone, as a recursive resolver would, so a client sees the chain
and the final records. Names in ``silent`` (and every name below them) are
never answered, to test timeouts; names in ``servfail`` get SERVFAIL.
"""
from __future__ import annotations

import selectors
import socket
import struct
import threading

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
from dns.rdtypes.ANY.TXT import TXT

TTL = 60
UDP_LIMIT = 512  # dnspython's resolver sends no EDNS by default


def _key(name) -> str:
    return str(name).lower().rstrip(".")


def _under(name: str, names: set[str]) -> bool:
    return any(name == other or name.endswith("." + other) for other in names)


def _txt_strings(value) -> list[bytes]:
    """A TXT value as character-strings: a str is split every 255 bytes, a tuple kept as given."""
    if isinstance(value, (tuple, list)):
        return [part.encode() for part in value]
    data = value.encode()
    return [data[i:i + 255] for i in range(0, len(data), 255)] or [b""]


class DnsTestServer:
    """Serves ``zone`` on 127.0.0.1 (UDP + TCP) in a thread; use as a context manager."""

    def __init__(self, zone: dict, silent=(), servfail=()):
        self.zone = {_key(name): records for name, records in zone.items()}
        self.silent = {_key(n) for n in silent}
        self.servfail = {_key(n) for n in servfail}
        self.queries: list[tuple[str, str]] = []
        self.host = "127.0.0.1"
        self.port = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def nameserver(self) -> str:
        return f"{self.host}:{self.port}"

    def __enter__(self) -> DnsTestServer:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        self._udp, self._tcp = self._bind_pair()
        self._thread = threading.Thread(target=self._serve, name="dns-test-server", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._udp.close()
        self._tcp.close()

    def _bind_pair(self) -> tuple[socket.socket, socket.socket]:
        # The kernel picks a free UDP port; the same TCP port is usually free
        # too, and when it is not we simply try another.
        for _ in range(50):
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp.bind((self.host, 0))
            port = udp.getsockname()[1]
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                tcp.bind((self.host, port))
            except OSError:
                udp.close()
                tcp.close()
                continue
            tcp.listen(16)
            self.port = port
            return udp, tcp
        raise RuntimeError("no free UDP+TCP port pair on 127.0.0.1")

    def _serve(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._udp, selectors.EVENT_READ, "udp")
            selector.register(self._tcp, selectors.EVENT_READ, "tcp")
            while not self._stop.is_set():
                for key, _ in selector.select(timeout=0.05):
                    if key.data == "udp":
                        self._serve_udp()
                    else:
                        self._serve_tcp()

    def _serve_udp(self) -> None:
        data, peer = self._udp.recvfrom(65535)
        response = self._answer(data)
        if response is None:
            return
        try:
            wire = response.to_wire(max_size=UDP_LIMIT)
        except dns.exception.TooBig:
            # Too big for UDP: send the header only with TC set, so the client asks over TCP.
            response.answer.clear()
            response.flags |= dns.flags.TC
            wire = response.to_wire()
        self._udp.sendto(wire, peer)

    def _serve_tcp(self) -> None:
        conn, _ = self._tcp.accept()
        with conn:
            conn.settimeout(2)
            try:
                length = struct.unpack("!H", self._read(conn, 2))[0]
                response = self._answer(self._read(conn, length))
                if response is not None:
                    wire = response.to_wire()
                    conn.sendall(struct.pack("!H", len(wire)) + wire)
            except (OSError, struct.error):
                pass

    @staticmethod
    def _read(conn: socket.socket, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = conn.recv(size - len(data))
            if not chunk:
                raise OSError("connection closed")
            data += chunk
        return data

    def _answer(self, data: bytes) -> dns.message.Message | None:
        query = dns.message.from_wire(data)
        question = query.question[0]
        qname, qtype = _key(question.name), question.rdtype
        self.queries.append((qname, dns.rdatatype.to_text(qtype)))
        if _under(qname, self.silent):
            return None
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA | dns.flags.RA
        if qname in self.servfail:
            response.set_rcode(dns.rcode.SERVFAIL)
            return response
        name = qname
        for _ in range(8):  # follow CNAMEs, but not forever
            records = self.zone.get(name)
            if records is None:
                if name == qname and not any(other.endswith("." + name) for other in self.zone):
                    response.set_rcode(dns.rcode.NXDOMAIN)
                break
            if "CNAME" in records and qtype != dns.rdatatype.CNAME:
                target = dns.name.from_text(records["CNAME"])
                response.answer.append(self._rrset(name, "CNAME", [records["CNAME"]]))
                name = _key(target)
                continue
            type_text = dns.rdatatype.to_text(qtype)
            if type_text in records:
                response.answer.append(self._rrset(name, type_text, records[type_text]))
            break
        return response

    @staticmethod
    def _rrset(name: str, type_text: str, values) -> dns.rrset.RRset:
        rdclass, rdtype = dns.rdataclass.IN, dns.rdatatype.from_text(type_text)
        if isinstance(values, str):
            values = [values]
        if type_text == "TXT":
            rdatas = [TXT(rdclass, rdtype, _txt_strings(v)) for v in values]
        elif type_text == "MX":
            rdatas = [dns.rdata.from_text(rdclass, rdtype, f"{pref} {host}") for pref, host in values]
        else:
            rdatas = [dns.rdata.from_text(rdclass, rdtype, v) for v in values]
        return dns.rrset.from_rdata_list(dns.name.from_text(name), TTL, rdatas)
