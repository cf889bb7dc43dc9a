"""Shared fixtures: a real MicroPython (the Unix port and WebAssembly under Node), vector paths, hardware options."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from glinttest import MICROPYTHON_RUNTIMES, REAL, REPO, VECTORS, load_vector, require_micropython, shared_dir  # noqa: F401


def pytest_addoption(parser):
    parser.addoption("--port", default=None, help="serial port of a real scanner for hardware-in-the-loop tests")
    parser.addoption("--board", default=None, help="board id (boards/<id>) of the scanner on --port")


# Test files that write the checkout's build/ (glint.resources.build_dir(): fw build's and fw deploy's
# default output, the firmware type check's mypy cache): under pytest-xdist they run in one worker, one
# after another, so two workers never rebuild one board's files while the other deploys them.
BUILD_DIR_FILES = ("tests/hil/", "tests/host/fw/test_cli_fw.py", "tests/host/fw/test_manifest.py",
                   "tests/host/vscanner/test_lock.py", "tests/firmware/test_typecheck.py")


def _xdist_groups(config, items) -> None:
    """Under pytest-xdist (tools/test runs ``pytest -n 2 --dist loadgroup``; a plain ``pytest`` is one
    process): each test file is one unit of work, in file order on one worker
    (module fixtures and module state, e.g. test_link.py's, stay as in one process), and the files that
    share build/ are one unit (BUILD_DIR_FILES)."""
    if not config.pluginmanager.hasplugin("xdist"):
        return
    for item in items:
        path = item.nodeid.split("::", 1)[0]
        group = "build-dir" if path.startswith(BUILD_DIR_FILES) else path
        item.add_marker(pytest.mark.xdist_group(group))


def pytest_configure(config) -> None:
    """Refuse, in one line, a loadgroup run the installed pytest cannot group: pytest-xdist (3.8) groups by
    appending the group to ``item._nodeid``, which pytest 9.2 no longer reads (an item's nodeid comes from
    its structured id), so one file's tests would be spread over both workers and the files whose tests
    build on each other would fail (pyproject.toml's test extra pins pytest below 9.2)."""
    if hasattr(config, "workerinput") or getattr(config.option, "dist", "no") != "loadgroup":
        return
    if "_nodeid" not in pytest.Item.nodeid.fget.__code__.co_names:
        raise pytest.UsageError(
            "tests/conftest.py: pytest %s ignores pytest-xdist's loadgroup (the files would not stay on one "
            "worker): run GLINT_TEST_WORKERS=0 tools/test, or install the pytest the test extra pins"
            % pytest.__version__)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    _xdist_groups(config, items)
    # Benchmarks run only when asked for with -m bench.
    markexpr = config.getoption("-m") or ""
    if "bench" not in markexpr:
        skip = pytest.mark.skip(reason="benchmark: run with 'pytest -m bench'")
        for item in items:
            if item.get_closest_marker("bench") is not None:
                item.add_marker(skip)
    # Long-running tests are excluded from the default run (the marker's meaning in pyproject.toml).
    if "slow" not in markexpr:
        skip = pytest.mark.skip(reason="slow: run with 'pytest -m slow'")
        for item in items:
            if item.get_closest_marker("slow") is not None:
                item.add_marker(skip)
    if config.getoption("--port") is None:
        skip = pytest.mark.skip(reason="hardware-in-the-loop: needs --port")
        for item in items:
            if item.get_closest_marker("hil") is not None:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def vectors() -> Path:
    """../shared/vectors (skips with one line where absent; required under GLINT_REQUIRE_SHARED=1)."""
    return shared_dir(VECTORS)


@pytest.fixture(scope="session")
def real_photos() -> Path:
    """../shared/real: real spot photographs (skips where absent; required under GLINT_REQUIRE_SHARED=1)."""
    return shared_dir(REAL)


def _interpreter(runtime: str):
    from glint.mpy import open_micropython

    require_micropython(runtime)
    with open_micropython(runtime) as mp:
        mp.runtime = runtime
        yield mp


@pytest.fixture(scope="session", params=MICROPYTHON_RUNTIMES)
def mpy(request):
    """A session-wide MicroPython interpreter with glintcore and the firmware under /lib, once per runtime.

    Every test that uses it runs on the Unix port and on the WebAssembly port (``mpy.runtime``).
    """
    yield from _interpreter(request.param)


@pytest.fixture(scope="session")
def mpy_unix():
    """The MicroPython Unix port only: for what needs the viper/native emitters."""
    yield from _interpreter("unix")


@pytest.fixture(scope="session")
def mpy_runtime() -> str:
    """The virtual scanner's default MicroPython runtime ("unix" where installed, else "node"), without an
    interpreter: a gate for tests that start their own virtual scanner (skips, or fails under
    GLINT_REQUIRE_MICROPYTHON=1, when neither port is installed)."""
    from glint.mpy import available_runtimes

    found = available_runtimes()
    if not found:
        require_micropython(MICROPYTHON_RUNTIMES[0])
    return found[0]


# --- PostgreSQL: one throwaway cluster per session, a fresh database per test -----------------------

@pytest.fixture(scope="session")
def pg_cluster():
    """A throwaway PostgreSQL cluster (glint.pgcluster: initdb in a temporary directory, a unix socket
    there, fsync off), started once per session and torn down at its end. Skips with one line where
    the server binaries or psycopg are missing; fails instead under GLINT_REQUIRE_POSTGRES=1 (.ci/run)."""
    from glint.pgcluster import Cluster, missing_reason

    why = missing_reason()
    if why:
        if os.environ.get("GLINT_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"{why}, but GLINT_REQUIRE_POSTGRES=1 requires it", pytrace=False)
        pytest.skip(f"PostgreSQL tests: {why}")
    cluster = Cluster.start(durable=False)  # its own directory in /tmp (owned by 'postgres' as root)
    yield cluster
    # The server stops here; its directory (a database per test) is removed by a detached rm -rf, not
    # in the session's last teardown (it was that whole 16-82 s wait under load).
    cluster.stop(remove_in_background=True)


@pytest.fixture
def pg_url(pg_cluster) -> str:
    """The URL of a new, empty PostgreSQL database on the session's cluster."""
    return pg_cluster.create_database()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request) -> str | None:
    """Run a test on both backends: None for the embedded SQLite files, else a fresh PostgreSQL URL."""
    if request.param == "sqlite":
        return None
    return request.getfixturevalue("pg_url")


@pytest.fixture
def backend_home(backend, tmp_path):
    """A glint home on the test's backend (its config.toml names the database on PostgreSQL)."""
    from glint.home import Home

    home = Home(tmp_path / "home").ensure()
    if backend:
        home.config_path.write_text(f'database = "{backend}"\n')
    return home
