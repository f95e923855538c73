"""`host:port` lists in settings, parsed in one place so that every setting names the
entry that is wrong and shows what a right one looks like."""

from __future__ import annotations

import re

Address = tuple[str, int]

_NAME = re.compile(r"[A-Za-z0-9._-]+")
_IPV6 = re.compile(r"[0-9A-Fa-f:.]+")


def parse_address(text: str, *, setting: str) -> Address:
    """`host:port`, `1.2.3.4:port` or `[v6]:port`; host names are case-insensitive, so
    they are kept in lower case and compare equal however they were written."""
    host, _, port = text.strip().rpartition(":")
    if host.startswith("[") and host.endswith("]") and _IPV6.fullmatch(host[1:-1]):
        host = host[1:-1]
    elif _IPV6.fullmatch(host) and ":" in host:
        raise ValueError(f"{setting}: write the IPv6 address in {text!r} in brackets")
    elif not _NAME.fullmatch(host):
        host = ""
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(
            f"{setting}: {text!r} is not host:port (e.g. redis-1:6379; entries are "
            "separated by commas)"
        )
    return host.lower(), int(port)


def parse_addresses(text: str, *, setting: str) -> list[Address]:
    """Comma-separated `host:port`s; blank entries (a trailing comma) are skipped."""
    return [parse_address(entry, setting=setting) for entry in _entries(text)]


def parse_address_map(text: str, *, setting: str) -> dict[Address, Address]:
    """Comma-separated `from-host:port=to-host:port` pairs."""
    mapping: dict[Address, Address] = {}
    for entry in _entries(text):
        source, equals, target = entry.partition("=")
        if not equals:
            raise ValueError(
                f"{setting}: {entry!r} is not host:port=host:port "
                "(e.g. redis-1:6379=127.0.0.1:27001)"
            )
        announced = parse_address(source, setting=setting)
        if announced in mapping:
            raise ValueError(f"{setting}: {source.strip()!r} is mapped twice")
        mapping[announced] = parse_address(target, setting=setting)
    return mapping


def _entries(text: str) -> list[str]:
    return [entry.strip() for entry in text.split(",") if entry.strip()]
