"""Board support: Espressif ESP32-S3-EYE (boards/esp32s3_eye).

OV2640 on the esp32-camera pins, no LED wired for glint, BOOT button GPIO0; the host talks
over the native USB Serial/JTAG console.

All of it is data in board.json next to this file; the code is the ESP32 family's
(glintfw.board_esp32.Esp32Board). The interface is in docs/boards.md.
"""

from glintfw.board_esp32 import Esp32Board

(load_config, make_camera, make_leds, make_illumination,
 make_buzzer, make_button, make_link, entropy) = Esp32Board(globals().get("__file__")).interface()
