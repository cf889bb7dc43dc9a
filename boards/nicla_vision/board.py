"""Board support: Arduino Nicla Vision (boards/nicla_vision).

GC2145 through csi/sensor (OpenMV firmware), the RGB LED; the host talks over the USB VCP console.

All of it is data in board.json next to this file; the code is the OpenMV family's
(glintfw.board_openmv.OpenMVBoard). The interface is in docs/boards.md.
"""

from glintfw.board_openmv import OpenMVBoard

(load_config, make_camera, make_leds, make_illumination,
 make_buzzer, make_button, make_link, entropy) = OpenMVBoard(globals().get("__file__")).interface()
