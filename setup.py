"""Packaging hook: a wheel carries the device tree (boards/, firmware/, the device half of
shared/glintcore) as package data in glint/_device, which glint.resources finds. Editable
installs use the checkout itself and copy nothing. Everything else is in pyproject.toml."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
DEVICE_TREE = ("boards", "firmware", "shared/glintcore")
HOST_ONLY = ("p256_gen.py",)  # the comb-table generator runs on the host only (glint.fw.build.HOST_ONLY)


class build_py_with_device_tree(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        dest = Path(self.build_lib) / "glint" / "_device"
        shutil.rmtree(dest, ignore_errors=True)
        for rel in DEVICE_TREE:
            shutil.copytree(HERE / rel, dest / rel,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".*", *HOST_ONLY))


setup(cmdclass={"build_py": build_py_with_device_tree})
