"""A method call in D-Bus wire format, for the raw clients of the compat scripts (pyfds.py,
handles.py): what client libraries won't send (no fd negotiation, fd counts and indexes that
don't match)."""
import struct


def pad(b, n):
    b.extend(b"\0" * ((-len(b)) % n))


def marshal_call(serial, dest, path, iface, member, sig="", body=b"", unix_fds=None):
    """Little-endian METHOD_CALL; a UNIX_FDS field only when unix_fds is given (0 included)."""
    fields = bytearray()

    def field(code, t, v):
        pad(fields, 8)
        fields.extend(bytes([code, 1]) + t.encode() + b"\0")
        if t in "so":
            pad(fields, 4)
            fields.extend(struct.pack("<I", len(v)) + v.encode() + b"\0")
        elif t == "g":
            fields.extend(bytes([len(v)]) + v.encode() + b"\0")
        else:
            pad(fields, 4)
            fields.extend(struct.pack("<I", v))

    field(1, "o", path)
    field(2, "s", iface)
    field(3, "s", member)
    field(6, "s", dest)
    if sig:
        field(8, "g", sig)
    if unix_fds is not None:
        field(9, "u", unix_fds)
    head = bytearray(b"l\x01\x00\x01" + struct.pack("<III", len(body), serial, len(fields)))
    head.extend(fields)
    pad(head, 8)
    return bytes(head) + body
