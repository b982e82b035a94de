"""Where a webhook may be sent: HTTPS to public addresses only (on AWS).

The adapter resolves the host at every attempt (DNS may change under a registered URL) and asks
`refusal` about every address it got; one private address is enough to refuse the attempt.
Locally (the stack's inbox) loopback and plain HTTP are allowed by a setting.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}


def url_refusal(url: str, allow_loopback: bool) -> str:
    """Why this URL can never be an endpoint ("" if it may be): scheme, host, credentials."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "the URL must be https://host/..."
    if parts.scheme == "http" and not allow_loopback:
        return "only https URLs are allowed"
    if parts.username or parts.password:
        return "the URL must not carry credentials"
    if len(url) > 2000:
        return "the URL is longer than 2000 characters"
    return ""


def address_refusal(address: str, allow_loopback: bool) -> str:
    """Why a resolved address may not be called ("" if it may)."""
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return f"{address} is not an IP address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return "" if allow_loopback else f"{ip} is a loopback address"
    if ip in METADATA:
        return f"{ip} is the instance metadata address"
    if ip.is_link_local:
        return f"{ip} is a link-local address"
    if ip.is_private or ip.is_reserved or ip.is_multicast or ip.is_unspecified:
        return f"{ip} is not a public address"
    if not ip.is_global:
        return f"{ip} is not a public address"
    return ""
