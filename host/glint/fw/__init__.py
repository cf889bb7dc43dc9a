"""Firmware tools: build for a board, deploy over mpremote, check the running version (docs/hardware.md).

    from glint.fw import build, deploy
    b = build.build("sim")                                  # compile + stage (cached)
    report = deploy.deploy("socket://127.0.0.1:7700", "sim")  # copy what changed, reset, confirm

``glint fw build|deploy|version|freeze|provision`` is the command line over this package.
"""
