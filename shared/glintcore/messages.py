"""Protocol messages: the CBOR envelope inside one frame (see glintcore.proto).

    request:  [type, seq, body]
    response: [type | RESPONSE, seq, status, body]
    event:    [type, 0, body]          type >= EVT_FIRST, device -> host only

Both sides build and parse messages only through this module.
"""

from glintcore import cbor
from glintcore.errors import DecodeError, ProtocolError
from glintcore.proto import EVT_FIRST, MAX_PAYLOAD, MAX_SEQ, RESPONSE, status_name

KIND_REQUEST = "request"
KIND_RESPONSE = "response"
KIND_EVENT = "event"

_EMPTY = {}  # type: dict


class Message:
    """A decoded message. ``type`` has the RESPONSE bit cleared; ``status`` is None for requests."""

    def __init__(self, kind, mtype, seq, body, status=None):
        self.kind = kind
        self.type = mtype
        self.seq = seq
        self.body = body
        self.status = status

    def __repr__(self):
        return "Message(%s, type=0x%02x, seq=%d, status=%r, body=%r)" % (
            self.kind, self.type, self.seq, self.status, self.body)

    def get(self, key, default=None):
        return self.body.get(key, default)


def _check(payload):
    if len(payload) > MAX_PAYLOAD:
        raise ProtocolError("message of %d bytes exceeds the %d-byte limit" % (len(payload), MAX_PAYLOAD))
    return payload


def encode_request(mtype, seq, body=None):
    return _check(cbor.dumps([mtype, seq, body if body is not None else _EMPTY]))


def encode_response(mtype, seq, status, body=None):
    return _check(cbor.dumps([mtype | RESPONSE, seq, status, body if body is not None else _EMPTY]))


def encode_event(mtype, body=None):
    return _check(cbor.dumps([mtype, 0, body if body is not None else _EMPTY]))


def decode_message(payload):
    """Parse one frame payload into a Message; raise DecodeError/ProtocolError if it is not one."""
    msg = cbor.loads(payload, 16)
    if type(msg) is not list or len(msg) not in (3, 4):
        raise ProtocolError("message is not a 3- or 4-element array")
    mtype = msg[0]
    seq = msg[1]
    if type(mtype) is not int or not 0 <= mtype <= 0xFF:
        raise ProtocolError("message type is not a byte")
    if type(seq) is not int or not 0 <= seq <= MAX_SEQ:
        raise ProtocolError("message sequence number out of range")
    body = msg[-1]
    if type(body) is not dict:
        raise ProtocolError("message body is not a map")
    if mtype & RESPONSE:
        if len(msg) != 4 or type(msg[2]) is not int:
            raise ProtocolError("response without a status code")
        return Message(KIND_RESPONSE, mtype & ~RESPONSE & 0xFF, seq, body, msg[2])
    if len(msg) != 3:
        raise ProtocolError("request or event with a status code")
    kind = KIND_EVENT if mtype >= EVT_FIRST else KIND_REQUEST
    return Message(kind, mtype, seq, body)


def describe_status(status, body=None):
    """One line for a response status, with the device's detail if it sent one."""
    text = status_name(status)
    if body and "error" in body:
        text += ": " + str(body["error"])
    return text


__all__ = ["Message", "encode_request", "encode_response", "encode_event", "decode_message",
           "describe_status", "KIND_REQUEST", "KIND_RESPONSE", "KIND_EVENT", "DecodeError"]
