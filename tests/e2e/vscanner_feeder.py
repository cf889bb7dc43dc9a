"""A feeder hook for tests: puts the next object under a virtual scanner through its control port.

    glint bench M.csv -p socket://... --feeder "python vscanner_feeder.py 127.0.0.1:PORT"
    glint scan -p socket://... --item A --parts --feeder "python vscanner_feeder.py 127.0.0.1:PORT '{\"clasp\": 3}'"

Bench rows: the row's lens from GLINT_ROW_JSON (no lens: nothing under the scanner).
Assembly parts: the seed of GLINT_PART (the assembly's own coating: key "body") from the JSON map
in argv[2]; a negative seed puts a counterfeit of that seed there.
"""

import json
import os
import socket
import sys

host, port = sys.argv[1].rsplit(":", 1)
if "GLINT_PART" in os.environ:
    seed = json.loads(sys.argv[2])[os.environ["GLINT_PART"] or "body"]
    lens = {"lens": "counterfeit" if seed < 0 else "item", "item_seed": abs(seed), "capture_seed": 70 + abs(seed)}
else:
    lens = json.loads(os.environ["GLINT_ROW_JSON"]).get("lens") or {"lens": "empty"}
with socket.create_connection((host, int(port)), timeout=10) as s:
    s.sendall((json.dumps(dict(lens, profile="field")) + "\n").encode())
    answer = json.loads(s.makefile().readline())
if not answer.get("ok"):
    sys.exit(f"feeder: {answer}")
