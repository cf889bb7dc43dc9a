"""The glint home directory: where one host keeps its registry, ledger, matcher and certificates.

Chosen by ``--home DIR``, else ``$GLINT_HOME``, else ``~/.glint``. Layout::

    <home>/glint.db      SQLite (WAL): device registry, nonces, scan log, alerts (glint.registry),
                         and the field outbox / sync state (part B's tables)
    <home>/ledger.db     the custody ledger (glint.ledger; its own SQLite file)
    <home>/keys/         the ledger's issuer and log keys (glint.ledger.Keys)
    <home>/match/        the matcher database directory (glint.match.Database)
    <home>/certs/        issued scan certificates (<item>-<index>.cose; by-id/<id>.cose: published, glint.publish)
    <home>/config.toml   optional host configuration (firmware policy, timeouts, ...)

A shared deployment keeps the registry, the ledger and the enrolled references in one
PostgreSQL database instead: ``database = "postgresql://..."`` in config.toml (or
``$GLINT_DATABASE``). Then ``db``, ``ledger_target`` and ``references_target`` are that
URL and no SQLite file is created for them; ``keys/``, ``certs/`` and the matcher's local
1:N index cache (``match/``) stay in the home (docs/deployments.md).

The ledger keeps its own documented layout (``ledger.db`` and ``keys/`` in the home
itself), so ``glint ledger ... --home DIR`` and ``glint cert ... --home DIR`` work on
the same directory as every other command: ``Home.ledger_dir`` is the directory the
ledger API takes as its ``home`` argument.
"""

from __future__ import annotations

import logging
import os
import tomllib
from pathlib import Path

from glint.errors import UsageError

_log = logging.getLogger(__name__)

HOME_ENV = "GLINT_HOME"
DEFAULT_HOME = "~/.glint"
DB_FILE = "glint.db"
LEDGER_FILE = "ledger.db"
CONFIG_FILE = "config.toml"


class Home:
    """One glint home directory. Creating the object touches nothing; ``ensure()`` creates it."""

    def __init__(self, path: str | os.PathLike | None = None, embedded: bool = False):
        """``embedded``: always the SQLite files, whatever config.toml or $GLINT_DATABASE say (the
        demo: its data never goes into a deployment's database)."""
        self.root = Path(path or os.environ.get(HOME_ENV) or DEFAULT_HOME).expanduser()
        self.embedded = embedded
        self._config: dict | None = None

    def __repr__(self) -> str:
        return f"Home({str(self.root)!r})"

    def __fspath__(self) -> str:
        return str(self.root)

    # --- where the data lives ----------------------------------------------------------
    @property
    def database(self) -> str | None:
        """The PostgreSQL URL of this home's data (``$GLINT_DATABASE``, else config.toml's
        ``database``), or None for the embedded SQLite files."""
        from glint.db import database_url

        return None if self.embedded else database_url(self.config)

    @property
    def db(self) -> str | Path:
        """glint.db's target for ``glint.db.connect``: the database URL, else the file."""
        return self.database or self.db_path

    @property
    def ledger_target(self) -> str | Path:
        """The ledger's target for ``Ledger.open``: the database URL, else ``ledger.db``."""
        return self.database or self.ledger_path

    @property
    def references_target(self) -> str | Path:
        """The enrolled references for ``glint.match.open_database``: the database URL
        (with ``match/`` as the local index cache), else the ``match/`` directory."""
        return self.database or self.match_dir

    def has_db(self) -> bool:
        """Whether glint.db holds anything yet (a configured database always counts)."""
        return self.database is not None or self.db_path.exists()

    # --- paths -------------------------------------------------------------------------
    @property
    def db_path(self) -> Path:
        return self.root / DB_FILE

    @property
    def ledger_dir(self) -> Path:
        """The ``home`` argument of the ledger API (``Keys.load(home)``, ``default_path(home)``)."""
        return self.root

    @property
    def ledger_path(self) -> Path:
        return self.root / LEDGER_FILE

    @property
    def keys_dir(self) -> Path:
        return self.root / "keys"

    @property
    def match_dir(self) -> Path:
        return self.root / "match"

    @property
    def certs_dir(self) -> Path:
        return self.root / "certs"

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_FILE

    @classmethod
    def open(cls, path: str | os.PathLike | None = None, create: bool = False) -> "Home":
        """The home a command works in: it must exist (no silent new home from a mistyped
        --home), unless ``create`` (``glint init``, ``--create``), which makes it."""
        home = cls(path)
        if create:
            return home.ensure()
        if not home.root.is_dir():
            what = "exists but is not a directory" if home.root.exists() else "does not exist"
            raise UsageError(f"glint home {home.root} {what}",
                             hint=f"create it with 'glint init --home {home.root}' (or add --create), "
                                  "or pick another with --home / $GLINT_HOME")
        return home

    def ensure(self) -> "Home":
        """Create the home and its sub-directories (idempotent); return self."""
        try:
            for d in (self.root, self.certs_dir):
                d.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UsageError(f"cannot create the glint home {self.root}: {e.strerror}",
                             hint="choose another directory with --home or GLINT_HOME") from None
        return self

    # --- configuration -----------------------------------------------------------------
    @property
    def config(self) -> dict:
        """``config.toml`` as a dict ({} when absent); read once per Home object."""
        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config

    def section(self, name: str) -> dict:
        """One table of the configuration ({} when absent)."""
        value = self.config.get(name, {})
        if not isinstance(value, dict):
            raise UsageError(f"{self.config_path}: [{name}] must be a table")
        return value


def load_config(path: Path) -> dict:
    """Parse a TOML configuration file; a missing file is an empty configuration."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"{path}: not valid TOML ({e})") from None


def home_of(args) -> Home:
    """The home of a parsed command line (the global --home / --create; see glint.cli)."""
    return Home.open(getattr(args, "home", None), create=getattr(args, "create", False))
