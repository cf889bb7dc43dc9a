"""Public certificate URLs and the certificates a home publishes for its resolver pages.

A certificate's public URL is on the home's resolver host (``[public] host`` in
``<home>/config.toml``, e.g. ``host = "id.example.com"``):

- a GS1 Digital Link item (``https://any/01/<GTIN>/21/<serial>``):
  ``https://HOST/01/<GTIN-14>/21/<serial>?c=<certificate id>`` (the resolver answers it:
  glint.server.pages);
- any other item id: ``https://HOST/c/<certificate id>``.

The QR code of a certificate encodes that URL (glint.ledger.render). ``glint serve`` on
that host serves the certificates published in ``<home>/certs/by-id/<id>.cose``
(``publish``: ``glint cert issue`` and the resolver pages write them).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import quote, urlsplit

from glint.errors import UsageError
from glint.home import Home
from glint.items import check_item_id

CONFIG_SECTION = "public"
_HOST_RE = re.compile(r"(?=.{1,253}(:|$))[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                      r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*(:[0-9]{1,5})?")
HOST_HINT = 'set it in {cfg}: [public] host = "id.example.com" (the host that runs glint serve for the public)'


def resolver_host(home: Home, required: bool = True) -> str | None:
    """The home's public resolver host (``[public] host``); UsageError when unset and ``required``."""
    host = home.section(CONFIG_SECTION).get("host")
    if host is None:
        if required:
            raise UsageError(f"no public resolver host for this home ({home.config_path} has no [public] host)",
                             HOST_HINT.format(cfg=home.config_path))
        return None
    return check_host(host, home.config_path)


def check_host(host, where: object = "the configuration") -> str:
    if not isinstance(host, str) or not _HOST_RE.fullmatch(host):
        raise UsageError(f"{where}: [public] host {str(host)[:80]!r} is not a host name (optionally :port)",
                         "a bare host such as id.example.com: no scheme, path or spaces")
    return host.lower()


def gs1_key(item: str) -> tuple[str, str] | None:
    """(GTIN-14, serial) of a GS1 Digital Link item id, or None for other ids."""
    if not item.startswith(("http://", "https://")):
        return None
    check_item_id(item)
    segs = urlsplit(item).path.strip("/").split("/")
    i = segs.index("01")
    return segs[i + 1].zfill(14), segs[i + 3]


def gs1_path(gtin: str, serial: str) -> str:
    """``/01/<GTIN-14>/21/<serial>``: the resolver path of one object (serial percent-encoded)."""
    return f"/01/{gtin.zfill(14)}/21/{quote(serial, safe='')}"


def item_url(host: str, item: str) -> str | None:
    """The item's page on the resolver, or None for a non-GS1 id."""
    key = gs1_key(item)
    return None if key is None else f"https://{host}{gs1_path(*key)}"


def certificate_url(host: str, item: str, cid: str) -> str:
    """The public URL a certificate's QR code encodes (see the module docstring)."""
    page = item_url(host, item)
    return f"{page}?c={cid}" if page else f"https://{host}/c/{cid}"


# --- published certificates ---------------------------------------------------------------

def published_dir(home: Home) -> Path:
    return home.certs_dir / "by-id"


_MADE_DIRS: set[str] = set()  # published folders this process made or found (no mkdir per certificate)


def publish(home: Home, blob: bytes, cid: str, same_as: str | os.PathLike | None = None) -> Path:
    """Store a certificate where the home's resolver serves it (atomic replace); return the path.

    ``same_as``: a file the caller has just written with these very bytes (``glint scan``'s
    ``certs/<item>-<index>.cose``): the published name becomes a hard link to it, one file
    written instead of two (every writer of either name replaces it, never edits it in place);
    a copy where links are not possible. A new id is linked under its name directly (one
    step, atomic: the name appears with the whole file); an id published before is replaced."""
    from glint.ledger.cert import is_cert_id

    if not is_cert_id(cid):
        raise UsageError(f"bad certificate id {cid[:40]!r}")
    d = os.path.join(home.certs_dir, "by-id")
    if d not in _MADE_DIRS:
        os.makedirs(d, exist_ok=True)
        _MADE_DIRS.add(d)
    try:
        return Path(_publish_in(d, blob, cid, same_as))
    except FileNotFoundError:
        if os.path.isdir(d):
            raise
        _MADE_DIRS.discard(d)  # the folder went away under this process: make it again
        os.makedirs(d, exist_ok=True)
        _MADE_DIRS.add(d)
        return Path(_publish_in(d, blob, cid, same_as))


def _publish_in(d: str, blob: bytes, cid: str, same_as: str | os.PathLike | None) -> str:
    path = os.path.join(d, f"{cid}.cose")
    if same_as is not None:
        try:
            os.link(same_as, path)
            return path
        except FileExistsError:
            pass  # published before: replaced below
        except OSError:
            if not os.path.isdir(d):
                raise FileNotFoundError(d) from None
    tmp = os.path.join(d, f".{cid}.{os.getpid()}.tmp")
    if same_as is not None:
        try:
            os.link(same_as, tmp)
        except OSError:
            same_as = None  # no hard links here (or a stale temporary): write a copy
    if same_as is None:
        with open(tmp, "wb") as f:
            f.write(blob)
    os.replace(tmp, path)
    return path


def published(home: Home, cid: str) -> bytes | None:
    """A published certificate by id, or None."""
    from glint.ledger.cert import is_cert_id

    if not is_cert_id(cid):
        return None
    try:
        return (published_dir(home) / f"{cid}.cose").read_bytes()
    except FileNotFoundError:
        return None


__all__ = ["resolver_host", "check_host", "gs1_key", "gs1_path", "item_url", "certificate_url",
           "publish", "published", "published_dir"]
