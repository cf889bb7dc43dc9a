"""How a user names a scanner and a listening address: one parser for each, used everywhere.

Scanner ports (``-p/--port``) are pyserial URLs::

    /dev/ttyACM0, COM3                 a USB or UART serial device
    socket://HOST:PORT                 a TCP bridge or the virtual scanner
    HOST:PORT                          the same as socket://HOST:PORT
    rfc2217://HOST:PORT, loop://, spy://URL, hwgrep://REGEX, alt://URL?class=...
    auto                               the one USB scanner found by VID/PID (the default)
    list                               print the USB scanners found, then exit

Servers (``--listen``) take ``HOST:PORT`` (``[::1]:PORT`` for IPv6; port 0 picks a free one).
"""

from __future__ import annotations

import re

from glint.errors import LinkError, UsageError

AUTO = "auto"
LIST = "list"
PORT_FORMAT = "a device path (/dev/ttyACM0, COM3), socket://HOST:PORT, HOST:PORT, loop://, auto or list"
LISTEN_FORMAT = "HOST:PORT, e.g. 127.0.0.1:8750 (port 0 picks a free one)"
# URL schemes pyserial's serial_for_url knows (serial/urlhandler/protocol_*.py)
PYSERIAL_SCHEMES = ("socket", "rfc2217", "loop", "spy", "hwgrep", "alt", "cp2110")
NETWORK_SCHEMES = ("socket", "rfc2217")
_HOST_PORT = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$")


def _host_port(text: str, what: str, fmt: str) -> tuple[str, int]:
    m = _HOST_PORT.match(text)
    if not m or int(m.group(2)) > 65535:
        raise UsageError(f"bad {what} {text!r}", hint=f"use {fmt}")
    return m.group(1).strip("[]"), int(m.group(2))


def parse_listen(text: str, what: str = "--listen address") -> tuple[str, int]:
    """``HOST:PORT`` -> (host, port); a one-line UsageError naming the format otherwise."""
    if not isinstance(text, str):
        raise UsageError(f"bad {what} {text!r}", hint=f"use {LISTEN_FORMAT}")
    return _host_port(text.strip(), what, LISTEN_FORMAT)


def port_url(text: str) -> str:
    """A scanner port as pyserial opens it: ``HOST:PORT`` becomes ``socket://HOST:PORT``; URLs
    of network schemes must name a host and a port. LinkError with the accepted forms otherwise."""
    if not isinstance(text, str) or not text.strip():
        raise LinkError("no scanner port given", hint=f"give -p/--port: {PORT_FORMAT}")
    text = text.strip()
    scheme, sep, rest = text.partition("://")
    if sep:
        if scheme.lower() not in PYSERIAL_SCHEMES:
            raise LinkError(f"unknown port URL scheme {scheme!r} in {text!r}", hint=f"give {PORT_FORMAT}")
        if scheme.lower() in NETWORK_SCHEMES:
            hostport = rest.split("?", 1)[0].rstrip("/")
            try:
                _host_port(hostport, "port URL", f"{scheme}://HOST:PORT")
            except UsageError:
                raise LinkError(f"bad scanner port {text!r}: needs a host and a port",
                                hint=f"use {scheme}://HOST:PORT, e.g. {scheme}://127.0.0.1:7777") from None
        return text
    if _HOST_PORT.match(text) and not text.upper().startswith("COM"):
        host, port = _host_port(text, "port", PORT_FORMAT)
        return f"socket://{'[' + host + ']' if ':' in host else host}:{port}"
    return text


def resolve_port(text: str | None) -> str:
    """``-p/--port`` as given -> the URL to open: ``auto`` (or None) is the single USB scanner found."""
    if text is None or text == AUTO:
        from glint.link.discover import discover

        found = discover()
        if len(found) == 1:
            return found[0].port
        if not found:
            raise LinkError("no scanner found on USB", hint="plug it in, or give -p/--port (e.g. socket://127.0.0.1:7777)")
        raise LinkError(f"{len(found)} scanners found ({', '.join(f.port for f in found)})",
                        hint="choose one with -p/--port (glint -p list shows them)")
    if text == LIST:
        raise UsageError("-p list only lists the scanners", hint="give -p/--port URL or auto to use one")
    return port_url(text)


__all__ = ["parse_listen", "port_url", "resolve_port", "AUTO", "LIST", "PORT_FORMAT", "LISTEN_FORMAT"]
