"""Protocol constants: message types, status codes, guidance codes, limits.

Defined once here and imported by the firmware and the host, so the two sides
cannot drift apart. docs/protocol.md is the prose version of this file.

A message (the payload of one link frame, see glintcore.frame) is a CBOR array:
  request:  [type, seq, body]          body: map (may be empty)
  response: [type | RESPONSE, seq, status, body]
  event:    [type, 0, body]            unsolicited, device -> host (type >= EVT_FIRST)
``seq`` is chosen by the host (1..65535) and echoed in the response.
"""

from micropython import const  # noqa: F401  (shimmed on CPython by glintcore/__init__)

PROTOCOL_VERSION = const(1)

# --- link limits -------------------------------------------------------------
MAX_PAYLOAD = const(2048)  # bytes of one message before framing
MAX_SEQ = const(0xFFFF)

# --- message types (requests; the response sets the RESPONSE bit) ---------------
MSG_INFO = const(0x01)  # {} -> {device_id, board, fw, proto, caps, pubkey, counter, ...}
MSG_SCAN = const(0x02)  # {nonce} -> {scan: COSE_Sign1 bytes, guidance, quality}
MSG_SELFTEST = const(0x03)  # {} -> {camera, frame, key, storage: {ok, detail...}}
MSG_CONFIG_GET = const(0x04)  # {key?} -> {config}
MSG_CONFIG_SET = const(0x05)  # {key, value} -> {config}
MSG_KEYGEN = const(0x06)  # {force?, entropy?} -> {pubkey}
MSG_SPOOL_LIST = const(0x07)  # {} -> {entries: [counter...], free, capacity}
MSG_SPOOL_GET = const(0x08)  # {counter} -> {scan}
MSG_SPOOL_ACK = const(0x09)  # {counter} -> {}
MSG_REPL = const(0x0A)  # {} -> {} then the link hands over to the MicroPython REPL
MSG_CAPTURE = const(0x0B)  # {offset, length} -> raw frame chunk / frame statistics
MSG_INDICATE = const(0x0C)  # {pattern} -> {}
MSG_RESET = const(0x0D)  # {} -> {} then a soft reset
MSG_SIGNTEST = const(0x0E)  # {message} -> {signature} key self-test (never signs scans)
MSG_UNLOCK = const(0x0F)  # {} -> {challenge, locked}; {signature} -> {locked: false} (docs/security.md)

RESPONSE = const(0x80)
EVT_FIRST = const(0x40)
EVT_SCAN_SPOOLED = const(0x40)  # {counter} a button-triggered scan went to the spool
EVT_LOG = const(0x41)  # {level, msg}

# --- status codes (responses) --------------------------------------------------
ST_OK = const(0)
ST_MALFORMED = const(1)  # frame decoded but message is not valid CBOR / not the layout
ST_BAD_CRC = const(2)  # frame failed its integrity check
ST_OVERSIZE = const(3)  # frame longer than MAX_PAYLOAD
ST_UNKNOWN = const(4)  # unknown message type
ST_BAD_ARG = const(5)  # missing or invalid body field
ST_NO_KEY = const(6)  # no device key yet: run keygen
ST_KEY_EXISTS = const(7)  # keygen refused: key present and force not set
ST_POOR_CAPTURE = const(8)  # capture not usable: see guidance
ST_SPOOL_FULL = const(9)  # offline spool full: sync with a host
ST_NOT_FOUND = const(10)  # no such spool entry / config key
ST_STORAGE = const(11)  # filesystem error
ST_BUSY = const(12)  # another command is running
ST_VERSION = const(13)  # protocol version not supported
ST_INTERNAL = const(14)  # unexpected error on the device
ST_LOCKED = const(15)  # a provisioned scanner is locked: unlock first (MSG_UNLOCK or the button at boot)

STATUS_NAMES = {
    ST_OK: "ok",
    ST_MALFORMED: "malformed message",
    ST_BAD_CRC: "frame failed its CRC",
    ST_OVERSIZE: "frame too large",
    ST_UNKNOWN: "unknown message type",
    ST_BAD_ARG: "bad argument",
    ST_NO_KEY: "device has no key",
    ST_KEY_EXISTS: "device already has a key",
    ST_POOR_CAPTURE: "poor capture",
    ST_SPOOL_FULL: "spool full",
    ST_NOT_FOUND: "not found",
    ST_STORAGE: "storage error",
    ST_BUSY: "busy",
    ST_VERSION: "protocol version not supported",
    ST_INTERNAL: "internal device error",
    ST_LOCKED: "scanner is locked",
}

# The maintainer's unlock signature covers UNLOCK_PREFIX || device id || challenge: domain-separated
# from scans and sign-tests, bound to one device and one single-use challenge.
UNLOCK_PREFIX = b"glint/unlock/v1:"
UNLOCK_CHALLENGE_LEN = const(16)

# --- operator guidance (from capture quality) -------------------------------------
GD_OK = const(0)
GD_TOO_DARK = const(1)
GD_SATURATED = const(2)
GD_OUT_OF_FOCUS = const(3)
GD_TOO_FEW_SPOTS = const(4)
GD_NO_COATING = const(5)

GUIDANCE_TEXT = {
    GD_OK: "good capture",
    GD_TOO_DARK: "too dark: increase exposure or illumination",
    GD_SATURATED: "saturated: reduce exposure or illumination",
    GD_OUT_OF_FOCUS: "out of focus: adjust distance or focus",
    GD_TOO_FEW_SPOTS: "too few spots: centre the coated area under the lens",
    GD_NO_COATING: "no coating found under the lens",
}


def status_name(code):
    return STATUS_NAMES.get(code, "status " + str(code))
