"""glint.bringup without a device: frame statistics, exposure choice, indicator table, freeze manifest."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from glinttest import REPO

from glint.bringup.checks import PATTERNS
from glint.bringup.frames import HIST_BINS, frame_stats, histogram_bar, save_png
from glint.bringup.tuning import SweepRow, recommend
from glintcore import proto


def test_frame_stats_match_the_detector_on_a_simulated_frame(tmp_path):
    from glint.imaging import detect, load_image
    from glint.sim import capture, make_coating

    img = capture(make_coating(5, "bench"), "bench", seed=1).image
    st = frame_stats(img)
    det = detect(img)
    assert st.spots == det.quality[0] and st.focus == det.quality[2] and st.guidance == det.guidance
    assert (st.min, st.max, st.width, st.height) == (int(img.min()), int(img.max()), img.shape[1], img.shape[0])
    assert sum(st.histogram) == img.size and len(st.histogram) == HIST_BINS
    assert st.guidance == proto.GD_OK and st.focus >= 800
    path = save_png(img, tmp_path / "f.png")  # PNG round trip is lossless
    assert np.array_equal(load_image(path), img)
    assert len(histogram_bar(st.histogram)) == HIST_BINS


def test_dark_and_flat_frames():
    dark = frame_stats(np.full((48, 64), 3, np.uint8))
    assert dark.spots == 0 and dark.guidance != proto.GD_OK and dark.saturated_permille == 0


def _row(us, snr, sat=0.0, p99=120, spots=50, guidance=proto.GD_OK):
    st = frame_stats(np.zeros((16, 16), np.uint8))
    st.snr, st.saturated_permille, st.p99, st.spots, st.guidance = snr, sat, p99, spots, guidance
    return SweepRow(us, st)


def test_recommend_best_snr_without_saturation_shorter_on_ties():
    rows = [_row(1000, 5, p99=20), _row(2000, 12), _row(4000, 20), _row(8000, 20), _row(16000, 40, sat=9.0)]
    assert recommend(rows).exposure_us == 4000  # 16000 saturates, 1000 too dark, 4000 == 8000 -> shorter
    assert [r.verdict for r in rows] == ["too dark", "ok", "ok", "ok", "saturated"]
    assert recommend([_row(1000, 5, p99=10), _row(2000, 50, sat=5)]) is None
    # a frame with good guidance beats a higher-SNR one the detector flags
    assert recommend([_row(1000, 30, guidance=proto.GD_OUT_OF_FOCUS), _row(2000, 10)]).exposure_us == 2000


def test_indicator_table_matches_the_firmware():
    spec = importlib.util.spec_from_file_location("glintfw_indicate", REPO / "firmware/glintfw/indicate.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert set(PATTERNS) == set(mod.PATTERNS)


def test_freeze_manifest_lists_every_device_module(tmp_path):
    from glint.errors import UsageError
    from glint.fw.freeze import write_manifest

    path = write_manifest("openmv_h7_plus", tmp_path)
    frozen = {}

    def package(name, files=None, base_path="."):
        frozen[name] = (files, base_path)

    exec(path.read_text(), {"package": package, "include": lambda *a: None})  # noqa: S102 - our own output
    files, base = frozen["glintfw"]
    assert "app.py" in files and "detect_viper.py" in files and base == str(REPO / "firmware")
    assert "p256_gen.py" not in frozen["glintcore"][0]
    with pytest.raises(UsageError):
        write_manifest("sim", tmp_path)


def test_selftest_verdict_shows_the_camera_settings_read_back():
    from glint.fw.deploy import selftest_verdict

    ok, lines = selftest_verdict({
        "camera": {"ok": True, "detail": "320x240", "sensor": "OV2640", "exposure": "manual", "exposure_us": 7980,
                   "gain_db": 29},
        "frame": {"ok": True, "min": 3, "max": 250, "quality": {0: 80}}, "key": {"ok": True, "detail": "sign+verify"},
        "storage": {"ok": True, "free": 100, "spool": 0}})
    assert ok and lines[0] == "  camera   ok 320x240 OV2640, exposure 7980 us, gain 29 dB"
    _, lines = selftest_verdict({"camera": {"ok": True, "detail": "320x240", "sensor": "GC2145", "exposure": "auto",
                                            "exposure_us": None, "gain_db": None}})
    assert lines[0] == "  camera   ok 320x240 GC2145, exposure auto, gain n/a"
