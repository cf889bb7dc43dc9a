"""glint init: create a glint home (the one command that makes one without --create)."""

from __future__ import annotations

import json


def register(sub) -> None:
    p = sub.add_parser("init", help="create a glint home: folders and the ledger's issuer and log keys",
                       description="Create the home named by --home (default $GLINT_HOME, else ~/.glint) and "
                                   "its ledger keys. Other commands refuse a home that does not exist.")
    p.add_argument("--json", action="store_true", help="print one JSON object (home, created, issuer, log)")
    p.set_defaults(func=cmd_init)


def cmd_init(args) -> int:
    from glint.home import Home
    from glint.ledger import Keys

    home = Home(getattr(args, "home", None))
    existed = home.root.is_dir() and (home.keys_dir).is_dir()
    home.ensure()
    keys = Keys.load(home.ledger_dir, create=True)
    out = {"home": str(home.root), "created": not existed, "issuer": keys.issuer_public.hex(), "log": keys.log_vkey}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"{'created' if not existed else 'already there:'} glint home {home.root}")
        print(f"issuer  {out['issuer']}")
        print(f"log     {out['log']}")
    return 0
