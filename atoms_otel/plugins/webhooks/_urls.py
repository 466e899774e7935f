"""Webhook URLs: validation, a display name that never leaks credentials, and the SSRF guard.

Webhook URLs are secrets in practice (a Slack URL's path is its credential), so logs and results
name a webhook by host and a short hash only. The optional SSRF guard refuses addresses that are
not globally routable (loopback, private, link-local, shared, reserved, multicast) unless they are
in an allow-list; with it on, each delivery resolves the host itself, checks every address, and
connects to the checked address (so a DNS answer that changes between check and connect cannot
redirect the request inside the network).
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from atoms_otel.base.settings import ConfigurationError

__all__ = ["AddressPolicy", "BlockedAddress", "display_name", "validate_url"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def validate_url(url: str, setting: str) -> str:
    """``url`` stripped, if it is an absolute http(s) URL with a host; else :class:`ConfigurationError`
    naming ``setting`` (showing only the scheme and host)."""
    if not isinstance(url, str):
        raise ConfigurationError(f"{setting}: expected a URL string, got {type(url).__name__}")
    text = url.strip()
    if any(c.isspace() or ord(c) < 32 for c in text):
        raise ConfigurationError(f"{setting}: the URL must not contain spaces or control characters")
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ConfigurationError(f"{setting}: not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        shown = f"{parts.scheme}://{parts.hostname or ''}" if parts.scheme else "a relative URL"
        raise ConfigurationError(f"{setting}: expected an absolute http or https URL, got {shown}")
    return text


def display_name(url: str) -> str:
    """``host[:port]#abc123``: identifies a webhook in logs without its path, query or credentials."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{host}{port}#{hashlib.sha256(url.encode()).hexdigest()[:6]}"


class BlockedAddress(Exception):
    """The SSRF guard refused a destination."""


def _addresses(infos: Iterable[tuple[object, ...]]) -> list[IPAddress]:
    # getaddrinfo's sockaddr[0]; an IPv6 link-local address may carry a "%scope" suffix.
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]  # type: ignore[index]


def _blocked(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not address.is_global or address.is_multicast


@dataclass(frozen=True)
class AddressPolicy:
    """Which destinations deliveries may reach. The default allows everything (local receivers work)."""

    block_private: bool = False
    allowed_networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def build(cls, block_private: bool, allowed_networks: Iterable[str]) -> AddressPolicy:
        try:
            networks = tuple(ipaddress.ip_network(n, strict=False) for n in allowed_networks)
        except ValueError as exc:
            raise ConfigurationError(f"ssrf_allowed_networks: {exc}") from None
        return cls(bool(block_private), networks)

    def refuses(self, address: IPAddress) -> bool:
        if not self.block_private or not _blocked(address):
            return False
        return not any(address in network for network in self.allowed_networks)

    def check_at_configuration(self, url: str, setting: str) -> None:
        """Refuse a URL whose host is, or resolves now to, a refused address. A host that does not
        resolve yet is accepted: every delivery checks again."""
        if not self.block_private:
            return
        parts = urlsplit(url)
        host = parts.hostname or ""
        try:
            addresses = [ipaddress.ip_address(host)]
        except ValueError:
            try:
                infos = socket.getaddrinfo(host, parts.port or 443, type=socket.SOCK_STREAM)
            except OSError:
                return
            addresses = _addresses(infos)
        for address in addresses:
            if self.refuses(address):
                raise ConfigurationError(
                    f"{setting}: {display_name(url)} is a non-public address ({address}), refused "
                    "by the SSRF guard; add it to ssrf_allowed_networks if it is intended"
                )

    async def pin(self, host: str, port: int) -> str | None:
        """The checked address to connect to for ``host``, or ``None`` when the guard is off.
        Raises :class:`BlockedAddress` if any address of ``host`` is refused."""
        if not self.block_private:
            return None
        try:
            addresses = [ipaddress.ip_address(host)]
        except ValueError:
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except OSError as exc:
                raise OSError(f"cannot resolve the webhook host: {exc.strerror or exc}") from None
            addresses = _addresses(infos)
        refused = [a for a in addresses if self.refuses(a)]
        if refused or not addresses:
            raise BlockedAddress(
                f"non-public address {refused[0] if refused else '?'} refused by the SSRF guard"
            )
        # No happy-eyeballs once pinned: prefer IPv4, which dual-stack receivers nearly always serve.
        return str(min(addresses, key=lambda a: a.version))
