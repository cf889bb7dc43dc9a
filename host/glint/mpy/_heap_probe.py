"""Device side of glint.mpy.heap: the scan path under a board's heap budget (runs ON the MicroPython Unix port).

    micropython -X heapsize=BUDGET _heap_probe.py FLASH SIM ROM SCANS

Boots the firmware from the image at ROM (compiled .mpy, as deployed to a board) on the
sim board, then runs SCANS times the whole scan path twice: a host scan (MSG_SCAN frame in:
capture, detect, encode, sign, response frame out) and a button scan (capture, detect,
encode, sign, spool, event frame out). Prints one JSON line: the heap after boot (live
bytes after a collection), per scan the bytes allocated (micropython.mem_total delta) and
the live heap before it, and the failure (phase and message) if one occurred.
"""

import sys


def main():
    import gc
    import json

    import _unix_vfs
    import micropython

    flash, sim, rom, scans = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    _unix_vfs.mount(flash, [(sim, "/sim"), (rom, "/rom")])
    sys.path[:] = ["", "/rom", "/rom/lib", "/lib"]

    class _SimHost:
        pass

    import os

    sh = _SimHost()
    sh.entropy = os.urandom
    sys.modules["simhost"] = sh
    out = {"heap": gc.mem_free() + gc.mem_alloc(), "phase": "boot", "scans": []}
    try:
        gc.collect()
        t0 = micropython.mem_total()
        import board
        from glintfw import link

        from glintcore import frame, messages
        from glintcore.proto import EVT_SCAN_SPOOLED, MSG_KEYGEN, MSG_SCAN

        core = link.main(board)
        gc.collect()
        out["boot_allocated"] = micropython.mem_total() - t0
        out["idle"] = gc.mem_alloc()
        out["phase"] = "keygen"
        core.feed(frame.encode_frame(messages.encode_request(MSG_KEYGEN, 1, {})))
        seq = 2
        for _ in range(scans):
            for kind in ("scan", "button"):
                out["phase"] = kind
                req = frame.encode_frame(messages.encode_request(MSG_SCAN, seq, {"nonce": bytes(range(16))}))
                seq += 1
                gc.collect()
                live = gc.mem_alloc()
                t0 = micropython.mem_total()
                if kind == "scan":
                    resp, _, _ = core.feed(req)
                    m = messages.decode_message(frame.Deframer().feed(resp)[0])
                    ok = m.status == 0
                    why = m.body.get("error", "") if not ok else ""
                else:
                    m = messages.decode_message(frame.Deframer().feed(link.host_button())[0])
                    ok = m.type == EVT_SCAN_SPOOLED
                    why = m.body.get("msg", "") if not ok else ""
                allocated = micropython.mem_total() - t0
                out["scans"].append({"kind": kind, "live": live, "allocated": allocated, "ok": ok})
                if not ok:
                    raise RuntimeError("the device refused the %s: %s" % (kind, why))
        out["phase"] = "done"
    except MemoryError as e:
        out["error"] = "MemoryError: %s" % (e,)
    except Exception as e:  # noqa: BLE001 - reported to the host with its phase
        out["error"] = "%s: %s" % (type(e).__name__, e)
    try:
        gc.collect()
        out["free_end"] = gc.mem_free()
    except MemoryError:
        pass
    sys.stdout.write(json.dumps(out) + "\n")


if sys.implementation.name == "micropython":
    main()
