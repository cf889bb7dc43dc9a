"""Board support: AI-Thinker ESP32-CAM (boards/esp32_cam).

OV2640 on the esp32-camera pins, status LED GPIO33 (active-low), the GPIO4 flash LED
(role "illumination": lit only while the sensor captures), BOOT button GPIO0; the host talks
over UART0 through the USB-serial bridge of the ESP32-CAM-MB base.

All of it is data in board.json next to this file; the code is the ESP32 family's
(glintfw.board_esp32.Esp32Board). The interface is in docs/boards.md.
"""

from glintfw.board_esp32 import Esp32Board

(load_config, make_camera, make_leds, make_illumination,
 make_buzzer, make_button, make_link, entropy) = Esp32Board(globals().get("__file__")).interface()
