"""Persisted device settings: a fixed schema of keys with defaults and bounds.

Stored as one CRC-checked CBOR record (store.py). Unknown keys and out-of-range
values are refused with ConfigError, so a bad ``config set`` never reaches flash.
"""

from glintcore import cbor
from glintfw import store

# key -> (type, default, min, max); for str, min/max bound the length
SCHEMA = {
    "exposure_us": (int, 8000, 10, 1000000),
    "gain": (int, 0, 0, 36),  # dB; each camera clamps to its sensor's range (board.json camera.gain_db_max)
    "max_spots": (int, 64, 8, 128),
    "spool_capacity": (int, 64, 1, 1024),
    "accept_poor": (bool, False, 0, 1),  # sign scans even when the capture is poor
    "indicators": (bool, True, 0, 1),
    "name": (str, "", 0, 32),
}


class ConfigError(Exception):
    pass


def check(key, value):
    """The validated value for ``key``; raise ConfigError if either is invalid."""
    spec = SCHEMA.get(key)
    if spec is None:
        raise ConfigError("unknown config key %r" % (key,))
    typ, _, lo, hi = spec
    if typ is bool:
        if value is not True and value is not False:
            raise ConfigError("%s must be true or false" % key)
        return value
    if type(value) is not typ:
        raise ConfigError("%s must be %s" % (key, "an integer" if typ is int else "a string"))
    n = len(value) if typ is str else value
    if n < lo or n > hi:
        raise ConfigError("%s out of range [%d, %d]" % (key, lo, hi))
    return value


class Config:
    def __init__(self, path, board_defaults=None):
        self.path = path
        self._values = {}
        for k in SCHEMA:
            self._values[k] = SCHEMA[k][1]
        if board_defaults:
            for k in board_defaults:
                if k in SCHEMA:
                    self._values[k] = board_defaults[k]
        data = store.read_record(path)
        if data is not None:
            try:
                saved = cbor.loads(data)
            except Exception:
                saved = {}
            if type(saved) is dict:
                for k in saved:
                    try:
                        self._values[k] = check(k, saved[k])
                    except ConfigError:
                        pass  # a key from another firmware version: keep the default

    def get(self, key):
        if key not in SCHEMA:
            raise ConfigError("unknown config key %r" % (key,))
        return self._values[key]

    def as_dict(self):
        return dict(self._values)

    def set(self, key, value):
        self._values[key] = check(key, value)
        store.write_record(self.path, cbor.dumps(self._values))
