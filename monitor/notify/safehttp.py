"""Outbound HTTP that cannot be pointed at the inside of our network (SSRF).

The check happens where the socket is opened, after DNS resolution, and the socket is opened to
the very address that passed: a name that resolves to a public address when a form is saved and to
127.0.0.1 when the webhook is sent (DNS rebinding) is refused at send time, and there is no second
lookup for an attacker to win. urllib3 keeps the URL's host name for the Host header, TLS SNI and
certificate verification; only the TCP connect goes to the vetted IP.

Addresses that wrap an IPv4 address (IPv4-mapped ::ffff:a.b.c.d, NAT64 64:ff9b::/96, 6to4
2002::/16) are judged by the IPv4 address inside, which is where the packets end up.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
SHARED_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")
MAX_BODY_BYTES = 64 * 1024  # we only log the start of a receiver's answer


class BlockedAddress(Exception):
    """The target resolves only to addresses outbound requests may not reach. Not an OSError on
    purpose: urllib3 passes it through unchanged instead of wrapping it as a connection failure."""


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour


def refusal(ip: IPAddress) -> str | None:
    """Why outbound requests may not reach `ip`, or None when it is a public unicast address."""
    if isinstance(ip, ipaddress.IPv6Address) and (inner := _embedded_ipv4(ip)) is not None:
        reason = refusal(inner)
        return f"{reason} (wrapped in {ip})" if reason else None
    for flag in ("loopback", "private", "link_local", "multicast", "unspecified", "reserved"):
        if getattr(ip, f"is_{flag}"):
            return f"{ip} is a {flag.replace('_', '-')} address"
    if ip in SHARED_CGNAT:
        return f"{ip} is a carrier-grade NAT address"
    if not ip.is_global:
        return f"{ip} is not a global address"
    return None


def resolve(host: str, port: int) -> list[IPAddress]:
    """The DNS seam (tests replace it): every address `host` resolves to, in the resolver's order."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


def vetted_addresses(host: str, port: int, *, allow_private: bool) -> list[IPAddress]:
    addresses = resolve(host, port)
    if allow_private:
        return addresses
    allowed = [ip for ip in addresses if refusal(ip) is None]
    if not allowed:
        reasons = "; ".join(filter(None, (refusal(ip) for ip in addresses))) or "no address"
        raise BlockedAddress(f"{host} is not a public address: {reasons}")
    return allowed


class _VettedConnectionMixin:
    """Replaces urllib3's resolve-and-connect with: resolve, vet, connect to a vetted IP."""

    allow_private = False
    host: str
    port: int
    timeout: Any
    source_address: tuple[str, int] | None
    socket_options: Any

    def _new_conn(self) -> socket.socket:
        host = self.host.strip("[]")
        last_error: OSError | None = None
        for ip in vetted_addresses(host, self.port, allow_private=self.allow_private):
            try:
                return urllib3.util.connection.create_connection(
                    (str(ip), self.port), self.timeout, self.source_address, self.socket_options
                )
            except TimeoutError as exc:
                raise urllib3.exceptions.ConnectTimeoutError(self, f"connecting to {host} ({ip}) timed out") from exc
            except OSError as exc:
                last_error = exc
        raise urllib3.exceptions.NewConnectionError(
            cast(HTTPConnection, self), f"cannot connect to {host}: {last_error}"
        )


class VettedHTTPConnection(_VettedConnectionMixin, HTTPConnection):
    pass


class VettedHTTPSConnection(_VettedConnectionMixin, HTTPSConnection):
    pass


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]
    body: bytes  # at most MAX_BODY_BYTES


def post(
    url: str, body: bytes, headers: dict[str, str], *, connect_s: float, read_s: float, allow_private: bool
) -> Response:
    """One POST, no retries, no redirects followed, no proxy from the environment."""
    pool = _pool(url, connect_s=connect_s, read_s=read_s, allow_private=allow_private)
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        answer = pool.urlopen(
            "POST", path, body=body, headers=headers, retries=False, redirect=False, preload_content=False
        )
        try:
            content = answer.read(MAX_BODY_BYTES)
        finally:
            answer.release_conn()
        return Response(answer.status, {k.lower(): v for k, v in answer.headers.items()}, content)
    finally:
        pool.close()


def _pool(url: str, *, connect_s: float, read_s: float, allow_private: bool) -> HTTPConnectionPool:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url}")
    timeout = urllib3.Timeout(connect=connect_s, read=read_s)
    if parts.scheme == "https":
        pool: HTTPConnectionPool = HTTPSConnectionPool(
            parts.hostname, parts.port or 443, timeout=timeout, maxsize=1, cert_reqs="CERT_REQUIRED"
        )
        connection_cls: type[HTTPConnection] = VettedHTTPSConnection
    else:
        pool = HTTPConnectionPool(parts.hostname, parts.port or 80, timeout=timeout, maxsize=1)
        connection_cls = VettedHTTPConnection
    # A subclass per call carries the policy, so the module never holds shared mutable state.
    pool.ConnectionCls = type(connection_cls.__name__, (connection_cls,), {"allow_private": allow_private})
    return pool
