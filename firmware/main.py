"""glint scanner: runs at boot (deployed as /main.py next to /board.py and /lib/glintfw).

Real boards enter protocol mode on their link until the host asks for the REPL
(MSG_REPL, or mpremote's interrupt); then this script ends and the MicroPython
REPL takes the console. Under the virtual scanner the host drives the loop, so
main() returns at once and the bridge feeds the link (glintfw.link hosted mode).
"""

from glintfw import link

link.main()
