"""Writer process for the crash test: appends, acks on stdout, checkpoints now and then.

Usage: python crash_writer.py LEDGER GLINT_HOME [batch|group]. Prints ``ack <index> <leaf hash hex>``
after each acknowledged (durable) append and ``ckpt <size>`` after each signed checkpoint; runs until
killed. ``batch``: one thread, batched commits. ``group``: several threads appending one event at a
time through a LedgerWorker (acks printed by each thread once its append returned).
"""

import sys
import threading

from glint.ledger import EventSpec, Keys, Ledger, LedgerWorker

BATCH = 50
CHECKPOINT_EVERY = 4
THREADS = 4

_print_lock = threading.Lock()


def _say(*words):
    with _print_lock:
        print(*words, flush=True)


def _register(led, items):
    new = [it for it in items if it not in set(led.items("acme:CRASH-"))]
    if new:
        led.append_batch([EventSpec("register", it, {"brand": "ACME", "prov": {"class": "factory"}}) for it in new])


def batch_mode(path, keys, items):
    with Ledger.open(path, keys=keys) as led:
        _register(led, items)
        n = 0
        while True:
            out = led.append_batch([EventSpec("verify", items[(n + k) % len(items)], {"res": "pass", "fap": 1e-9},
                                              scan=b"scan %d" % (n + k)) for k in range(BATCH)])
            n += BATCH
            _say("ack", out[-1].index, out[-1].leaf_hash.hex())
            if (n // BATCH) % CHECKPOINT_EVERY == 0:
                led.checkpoint()
                _say("ckpt", led.size)


def group_mode(path, keys, items):
    gc = LedgerWorker.open(path, keys=keys)
    gc.call(_register, items)

    def producer(t):
        k = 0
        while True:
            a = gc.append("verify", items[t], {"res": "pass"}, scan=b"scan %d %d" % (t, k))
            _say("ack", a.index, a.leaf_hash.hex())
            k += 1
            if t == 0 and k % CHECKPOINT_EVERY == 0:
                size = gc.call(lambda led: (led.checkpoint(), led.size)[1])
                _say("ckpt", size)

    threads = [threading.Thread(target=producer, args=(t,), daemon=True) for t in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()


def main(path, home, mode="batch"):
    keys = Keys.load(home, create=True)
    items = [f"acme:CRASH-{i:03d}" for i in range(20)]
    (group_mode if mode == "group" else batch_mode)(path, keys, items)


if __name__ == "__main__":
    main(*sys.argv[1:])
