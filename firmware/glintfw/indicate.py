"""Indicator patterns (LED, and buzzer where present): ready, capturing, good, retry, error.

Patterns are lists of (led_on, buzzer_on, duration_ms) steps, played without
blocking: ``show(name)`` starts one, ``tick(now_ms)`` advances it from the main
loop. The last step of a pattern is held (READY stays lit). docs/protocol.md
tabulates what the operator sees.
"""

import time

READY = "ready"  # steady on
CAPTURING = "capturing"  # fast blink while the frame is taken and processed
GOOD = "good"  # long flash + one beep, then ready
RETRY = "retry"  # three short blinks + two short beeps: see guidance, scan again
ERROR = "error"  # slow blink + long beep, held until the next command
OFF = "off"

PATTERNS = {
    READY: ((1, 0, 0),),
    CAPTURING: ((1, 0, 60), (0, 0, 60), (1, 0, 60), (0, 0, 60), (1, 0, 0)),
    GOOD: ((0, 0, 80), (1, 1, 120), (1, 0, 600), (1, 0, 0)),
    RETRY: ((0, 0, 100), (1, 1, 100), (0, 0, 100), (1, 1, 100), (0, 0, 100), (1, 0, 100), (0, 0, 300), (1, 0, 0)),
    ERROR: ((1, 1, 400), (0, 0, 400), (1, 0, 400), (0, 0, 400), (1, 0, 400), (0, 0, 0)),
    OFF: ((0, 0, 0),),
}


def _ticks_ms():
    f = getattr(time, "ticks_ms", None)
    if f is not None:
        return f()
    return int(time.monotonic() * 1000)  # CPython runtime


def _diff(a, b):
    f = getattr(time, "ticks_diff", None)
    return f(a, b) if f is not None else a - b


class Indicators:
    def __init__(self, leds, buzzer=None, enabled=True):
        self.leds = leds or []
        self.buzzer = buzzer
        self.enabled = enabled
        self.pattern = OFF
        self._steps = PATTERNS[OFF]
        self._i = 0
        self._t0 = 0
        self.led = 0
        self.buzz = 0

    def _apply(self, led, buzz):
        self.led = led
        self.buzz = buzz
        if not self.enabled:
            led = buzz = 0
        for p in self.leds:
            p.value(led)
        if self.buzzer is not None:
            if buzz:
                self.buzzer.on()
            else:
                self.buzzer.off()

    def show(self, name, now=None):
        if name not in PATTERNS:
            raise ValueError("unknown pattern " + str(name))
        self.pattern = name
        self._steps = PATTERNS[name]
        self._i = 0
        self._t0 = _ticks_ms() if now is None else now
        step = self._steps[0]
        self._apply(step[0], step[1])

    def tick(self, now=None):
        """Advance the running pattern; cheap when nothing changes."""
        now = _ticks_ms() if now is None else now
        steps = self._steps
        while True:
            dur = steps[self._i][2]
            if dur == 0 or self._i + 1 >= len(steps) or _diff(now, self._t0) < dur:
                return
            self._t0 += dur
            self._i += 1
            step = steps[self._i]
            self._apply(step[0], step[1])
