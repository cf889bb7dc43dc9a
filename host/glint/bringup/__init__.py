"""Bring-up tools for hardware engineers: raw frames, statistics, focus, exposure, part checks.

    from glint.link import open_scanner
    from glint.bringup import capture_frame, frame_stats, focus_readings, exposure_sweep
    from glint.bringup.checks import check_signing, check_storage, check_indicators

``glint bringup ...`` is the command line over this package (docs/hardware.md).
"""

from glint.bringup.frames import FrameStats, capture_frame, frame_stats, save_png
from glint.bringup.tuning import exposure_sweep, focus_readings, recommend

__all__ = ["capture_frame", "frame_stats", "save_png", "FrameStats", "focus_readings", "exposure_sweep", "recommend"]
