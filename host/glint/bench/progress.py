"""A plain-text progress bar: redrawn in place on a terminal, occasional lines otherwise."""

from __future__ import annotations

import sys
import threading
import time

BAR_WIDTH = 30
TTY_REDRAW_S = 0.1       # at most ten redraws a second on a terminal
LOG_EVERY_S = 10.0       # a non-terminal (CI log, pipe) gets a line this often ...
LOG_EVERY_FRACTION = 0.1  # ... or every 10 % of the batch


class Progress:
    """Thread-safe counter with a rendering for ``stream`` (default stderr); ``quiet`` draws nothing."""

    def __init__(self, total: int, stream=None, quiet: bool = False, label: str = "bench"):
        self.total = total
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.label = label
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.done = self.failed = 0
        self.t0 = time.monotonic()
        self._last_draw = 0.0
        self._last_logged = 0
        self._lock = threading.Lock()

    def line(self) -> str:
        el = max(1e-9, time.monotonic() - self.t0)
        rate = self.done / el
        frac = self.done / self.total if self.total else 1.0
        fill = int(BAR_WIDTH * frac)
        eta = (self.total - self.done) / rate if rate > 0 else float("inf")
        eta_s = f"{eta:.0f}s" if eta != float("inf") else "?"
        return (f"{self.label} [{'#' * fill}{'.' * (BAR_WIDTH - fill)}] {self.done}/{self.total} "
                f"{self.failed} failed  {60 * rate:.1f} scans/min  eta {eta_s}")

    def advance(self, failed: bool = False) -> None:
        with self._lock:
            self.done += 1
            self.failed += int(failed)
            if self.quiet:
                return
            now = time.monotonic()
            if self.tty:
                if now - self._last_draw >= TTY_REDRAW_S or self.done == self.total:
                    self.stream.write("\r" + self.line())
                    self.stream.flush()
                    self._last_draw = now
            else:
                step = max(1, int(self.total * LOG_EVERY_FRACTION))
                if self.done - self._last_logged >= step or now - self._last_draw >= LOG_EVERY_S \
                        or self.done == self.total:
                    self.stream.write(self.line() + "\n")
                    self.stream.flush()
                    self._last_draw, self._last_logged = now, self.done

    def finish(self) -> None:
        if not self.quiet and self.tty:
            self.stream.write("\n")
            self.stream.flush()
