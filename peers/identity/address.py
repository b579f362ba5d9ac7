"""HOST:PORT addresses of listening peers."""

import ipaddress
import re

_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*\.?$")


class BadAddress(ValueError):
    pass


def parse_address(text: str) -> tuple[str, int]:
    """(host, port) from 'host:port', '1.2.3.4:port' or '[v6]:port'; BadAddress otherwise."""
    text = text.strip()
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
        if not sep:
            raise BadAddress(f"{text!r} is not HOST:PORT (an IPv6 host is written [addr]:port)")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise BadAddress(f"{host!r} is not an IPv6 address") from None
    else:
        host, sep, port = text.rpartition(":")
        if not sep or not host:
            raise BadAddress(f"{text!r} is not HOST:PORT")
        numeric = all(label.isdigit() for label in host.rstrip(".").split("."))
        if not _HOSTNAME.match(host) or (numeric and not _is_ipv4(host)):
            raise BadAddress(f"{host!r} is not a host name or IPv4 address")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise BadAddress(f"{port!r} is not a port number (1-65535)")
    return host, int(port)


def format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def normalize_address(text: str) -> str:
    return format_address(*parse_address(text))


def _is_ipv4(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True
