"""glintfw: the scanner firmware (MicroPython): capture, detect, sign, talk to the host."""

import glintcore  # installs the const() shim on CPython
