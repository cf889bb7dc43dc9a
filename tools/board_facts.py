"""Print the board-facts table (tests/firmware/board_facts.py) as the markdown docs/boards.md embeds.

    python tools/board_facts.py            # prints the table
    python tools/board_facts.py --check    # exit 1 if docs/boards.md does not carry it verbatim
"""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "firmware"))

from board_facts import render  # noqa: E402


def main(argv):
    table = render()
    if "--check" in argv:
        ok = table in (REPO / "docs" / "boards.md").read_text()
        print("docs/boards.md carries the board-facts table" if ok else "docs/boards.md is out of date: paste the table")
        return 0 if ok else 1
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
