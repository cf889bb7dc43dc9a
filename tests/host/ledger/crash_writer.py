"""Writer process for the crash test: batched appends, acks on stdout, checkpoints now and then.

Usage: python crash_writer.py LEDGER GLINT_HOME. Prints ``ack <index> <leaf hash hex>`` after
each durable batch commit and ``ckpt <size>`` after each signed checkpoint; runs until killed.
"""

import sys

from glint.ledger import EventSpec, Keys, Ledger

BATCH = 50
CHECKPOINT_EVERY = 4


def main(path, home):
    keys = Keys.load(home, create=True)
    with Ledger.open(path, keys=keys) as led:
        items = [f"acme:CRASH-{i:03d}" for i in range(20)]
        new = [it for it in items if it not in set(led.items("acme:CRASH-"))]
        if new:
            led.append_batch([EventSpec("register", it, {"brand": "ACME", "prov": {"class": "factory"}}) for it in new])
        n = 0
        while True:
            out = led.append_batch([EventSpec("verify", items[(n + k) % len(items)], {"res": "pass", "fap": 1e-9},
                                              scan=b"scan %d" % (n + k)) for k in range(BATCH)])
            n += BATCH
            print("ack", out[-1].index, out[-1].leaf_hash.hex(), flush=True)
            if (n // BATCH) % CHECKPOINT_EVERY == 0:
                led.checkpoint()
                print("ckpt", led.size, flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
