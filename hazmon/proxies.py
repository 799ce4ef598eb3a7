"""Trusted reverse proxies: which address a request really comes from.

Shared by the console (login throttling) and alerting's inbound HTTP (per-address limits on
callbacks and the acknowledgement link): both sit behind the same TLS proxy in compose.
"""

from __future__ import annotations

import ipaddress

__all__ = ["Networks", "parse_networks", "validate_networks", "client_address"]

Networks = tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]


def validate_networks(text: str) -> str:
    """A settings validator: every comma-separated entry is an IP address or CIDR network."""
    for part in filter(None, (p.strip() for p in text.split(","))):
        try:
            ipaddress.ip_network(part, strict=False)
        except ValueError:
            raise ValueError(f"not an IP address or CIDR network: {part!r}") from None
    return text


def parse_networks(text: str) -> Networks:
    """``"10.0.0.0/8, 192.0.2.1"`` → networks (validated at load by :func:`validate_networks`)."""
    return tuple(ipaddress.ip_network(p.strip(), strict=False) for p in text.split(",") if p.strip())


def client_address(peer: str, forwarded_for: str, trusted: Networks) -> str:
    """The client's address: the peer, unless the peer is a trusted proxy — then the right-most
    X-Forwarded-For entry that is not itself a trusted proxy (entries left of it are whatever
    the client chose to send). Untrusted peers cannot pick their source by sending the header."""

    def is_trusted(addr: str) -> bool:
        try:
            ip = ipaddress.ip_address(addr)
        except ValueError:
            return False
        return any(ip in net for net in trusted)

    if not trusted or not is_trusted(peer):
        return peer
    for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return peer  # a garbled chain: count it against the proxy's own address
        if not is_trusted(hop):
            return hop
    return peer
