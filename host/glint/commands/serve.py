"""glint serve: serve this host's ledger over HTTP (Flask on glint's own engine, or waitress; API in docs/api.md)."""

from __future__ import annotations

import logging
import signal
import sys

_log = logging.getLogger(__name__)

DEFAULT_LISTEN = "127.0.0.1:8750"


def register(sub) -> None:
    p = sub.add_parser("serve", help="serve the ledger over HTTP for other glint hosts",
                       description="Serve this host's ledger: POST /v1/events (idempotent), GET /v1/checkpoint, "
                                   "/v1/proof/inclusion, /v1/proof/consistency, /v1/items/<id> (docs/api.md).")
    p.add_argument("--listen", default=DEFAULT_LISTEN, metavar="HOST:PORT",
                   help=f"address to listen on (default {DEFAULT_LISTEN}; port 0 picks a free one)")
    p.add_argument("--ledger", metavar="FILE", help="ledger file (default <home>/ledger.db)")
    p.add_argument("--behind-tls-proxy", action="store_true",
                   help="allow a non-loopback address: a TLS-terminating reverse proxy is in front")
    p.add_argument("--request-deadline", type=float, default=None, metavar="SECONDS",
                   help="a request's headers and body must arrive within this long of its first byte, else 408 "
                        "and the connection is closed (default 30)")
    p.add_argument("--cpus", type=int, default=None, metavar="N",
                   help="run the server on N of this machine's CPUs (default 1: one Python process takes turns "
                        "on its GIL, and threads moved between cores cost about twice the CPU per request; "
                        "0: all CPUs)")
    p.add_argument("--engine", choices=("threads", "waitress"), default="threads",
                   help="the HTTP layer: threads (default; glint's own, one thread per connection, waitress's "
                        "request parser) or waitress (its event loop and request threads)")
    p.set_defaults(func=cmd_serve)


class _Stop(KeyboardInterrupt):
    """SIGTERM as an exception, raised in the main thread (both engines' accept or event loop runs there).
    A BaseException on purpose: waitress's dispatchers re-raise only
    SystemExit/KeyboardInterrupt and log anything else as a handler error, so a plain Exception
    raised while a request is being read was swallowed and the server kept running."""


def _raise_stop(signum, _frame):
    raise _Stop(signal.Signals(signum).name)


def cmd_serve(args) -> int:
    from glint.address import parse_listen
    from glint.errors import UsageError
    from glint.home import home_of
    from glint.server import REQUEST_DEADLINE_S, SERVER_CPUS, SWITCH_INTERVAL_S, check_listen, make_server, pin_cpus

    host, port = parse_listen(args.listen)
    check_listen(host, args.behind_tls_proxy)
    home = home_of(args).root
    deadline = REQUEST_DEADLINE_S if args.request_deadline is None else args.request_deadline
    if not 0 < deadline <= 3600:
        raise UsageError(f"--request-deadline {deadline:g} is not in 0..3600 seconds")
    cpus = SERVER_CPUS if args.cpus is None else args.cpus
    if cpus < 0:
        raise UsageError(f"--cpus {cpus} is negative", hint="give a number of CPUs, or 0 for all of them")
    pin_cpus(cpus)  # before make_server starts the ledger and fsync threads: they inherit it
    sys.setswitchinterval(SWITCH_INTERVAL_S)  # this process is the server: its threads hand the GIL on sooner
    try:
        server = make_server(home, host, port, args.ledger, request_deadline_s=deadline,
                             behind_proxy=args.behind_tls_proxy, engine=args.engine)
    except OSError as e:
        raise UsageError(f"cannot listen on {args.listen}: {e.strerror or e}",
                         hint="is another server on that port? choose another --listen (port 0 picks a free one)") from None
    print(f"glint serve: listening on http://{host}:{server.effective_port} (home {home})", flush=True)
    old = signal.signal(signal.SIGTERM, _raise_stop)
    try:
        server.run()
    except (_Stop, KeyboardInterrupt) as e:
        _log.info("stopping on %s", e or "SIGINT")
    finally:
        signal.signal(signal.SIGTERM, old)
        server.close()
        server.glint_close()
    print("glint serve: stopped", file=sys.stderr, flush=True)
    return 0
