"""Device filesystem for the MicroPython Unix port (runs ON MicroPython): host directories mounted as a board's.

``mount(root, extra)`` makes the host directory ``root`` the device's "/" and mounts each
(host dir, device path) of ``extra`` (vfs.VfsPosix), so device code sees the paths a board
has (/lib, /sim, storage under /), and puts /lib on sys.path.

Workaround: in this port's VfsPosix, rename() with two absolute paths under a mount whose
root is not "/" renames the new path onto itself (both paths share one buffer) and fails
with ENOENT. ``os`` is therefore replaced in sys.modules by a proxy whose rename() passes
paths on the root mount relative to "/" (the process's cwd is the mount's host directory),
which VfsPosix hands to the OS unchanged. Everything else is the port's own os module.
"""

import os as _os
import sys

_mounts = []  # device mount points other than "/"


def _on_root(p):
    for m in _mounts:
        if p == m or p.startswith(m + "/"):
            return False
    return True


def _rename(a, b):
    if a.startswith("/") and b.startswith("/") and _on_root(a) and _on_root(b):
        cwd = _os.getcwd()
        _os.chdir("/")
        try:
            _os.rename(a[1:] or ".", b[1:] or ".")
        finally:
            _os.chdir(cwd)
    else:
        _os.rename(a, b)


class _OS:
    """The port's os module with a working rename() on mounted host directories."""

    rename = staticmethod(_rename)

    def __getattr__(self, name):
        return getattr(_os, name)


def mount(root, extra=()):
    import vfs

    vfs.umount("/")
    vfs.mount(vfs.VfsPosix(root), "/")
    for host, dest in extra:
        vfs.mount(vfs.VfsPosix(host), dest)
        _mounts.append(dest)
    _os.chdir("/")
    sys.modules["os"] = _OS()
    sys.path[:] = ["", "/lib"]
