"""USB discovery reads every board's current IDs and its alternates (usb.alt)."""

from __future__ import annotations

import json

from glinttest import REPO

from glint.link.discover import usb_table


def test_current_and_previous_firmware_ids_are_found():
    table = usb_table(REPO / "boards")
    assert table[(0x37C5, 0x124A)] == ["openmv_h7_plus"] and table[(0x37C5, 0x1060)] == ["openmv_rt1062"]
    assert table[(0x1209, 0xABD1)] == ["openmv_h7_plus", "openmv_rt1062"]  # previous OpenMV firmware
    assert table[(0x303A, 0x4001)] == table[(0x303A, 0x1001)] == ["esp32s3_eye", "xiao_esp32s3_sense"]
    assert table[(0x2341, 0x055F)] == table[(0x2341, 0x045F)] == ["nicla_vision"]
    assert table[(0x10C4, 0xEA60)] == ["esp32_cam"]
    assert all("sim" not in ids for ids in table.values())


def test_a_broken_alt_entry_skips_only_that_board(tmp_path):
    for bid, usb in (("a", {"vid": 1, "pid": 2, "alt": [{"vid": 3}]}), ("b", {"vid": 1, "pid": 2, "alt": [{"vid": 5, "pid": 6}]})):
        (tmp_path / bid).mkdir()
        (tmp_path / bid / "board.json").write_text(json.dumps({"id": bid, "port": "esp32", "usb": usb}))
    assert usb_table(tmp_path) == {(1, 2): ["b"], (5, 6): ["b"]}
