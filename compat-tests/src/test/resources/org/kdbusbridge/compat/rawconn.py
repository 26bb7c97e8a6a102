"""A raw D-Bus connection that negotiates unix fds, for the AttachMetadata pidfd and memfd
scripts (meta_pidfd.py, meta_memfd.py): little-endian messages, header fields by code, the fds
that came with each message, field 107 in its text form."""
import array
import os
import socket
import struct

from rawwire import marshal_call, pad


class Conn:
    def __init__(self, address):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(address.split("path=", 1)[1].split(",", 1)[0])
        self.s.sendall(b"\0AUTH EXTERNAL " + str(os.getuid()).encode().hex().encode() + b"\r\n")
        assert self.line().startswith(b"OK "), "auth"
        self.s.sendall(b"NEGOTIATE_UNIX_FD\r\n")
        assert self.line() == b"AGREE_UNIX_FD\r\n", "fd passing"
        self.s.sendall(b"BEGIN\r\n")
        self.buf = b""
        self.fds = []
        self.serial = 0
        self.call("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "Hello")
        hello = self.until_reply(self.serial)
        self.name = string_at(hello["body"], 0)

    def line(self):
        out = b""
        while not out.endswith(b"\r\n"):
            out += self.s.recv(1)
        return out

    def call(self, dest, path, iface, member, sig="", body=b"", fds=(), flags=0):
        self.serial += 1
        m = bytearray(marshal_call(self.serial, dest, path, iface, member, sig, body,
                                   len(fds) if fds else None))
        m[2] = flags
        anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
        self.s.sendmsg([bytes(m)], anc)
        return self.serial

    def read(self):
        """The next message as a dict: header fields by code, body, the fds that came with it."""
        while True:
            if len(self.buf) >= 16:
                body_len, _, fields_len = struct.unpack_from("<III", self.buf, 4)
                total = ((16 + fields_len + 7) & ~7) + body_len
                if len(self.buf) >= total:
                    frame, self.buf = self.buf[:total], self.buf[total:]
                    msg = parse(frame)
                    n = msg["fields"].get(9, 0)
                    msg["fds"], self.fds = self.fds[:n], self.fds[n:]
                    return msg
            data, anc, _, _ = self.s.recvmsg(65536, socket.CMSG_SPACE(253 * 4))
            assert data, "EOF from the bus"
            for level, kind, raw in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    a = array.array("i")
                    a.frombytes(raw[:len(raw) - len(raw) % 4])
                    self.fds.extend(a)
            self.buf += data

    def until_reply(self, serial):
        while True:
            m = self.read()
            if m["fields"].get(5) == serial:
                return m

    def until_member(self, member):
        while True:
            m = self.read()
            if m["fields"].get(3) == member:
                return m


def string_at(b, off):
    n = struct.unpack_from("<I", b, off)[0]
    return b[off + 4:off + 4 + n].decode()


def parse(frame):
    """Header fields of a little-endian message: strings, signatures and uints by code."""
    assert frame[0:1] == b"l", "little-endian expected"
    body_len, serial, fields_len = struct.unpack_from("<III", frame, 4)
    fields = {}
    p, end = 16, 16 + fields_len
    while p < end:
        p = (p + 7) & ~7
        code, slen = frame[p], frame[p + 1]
        sig = frame[p + 2:p + 2 + slen].decode()
        p += 3 + slen
        if sig in ("s", "o"):
            p = (p + 3) & ~3
            n = struct.unpack_from("<I", frame, p)[0]
            fields[code] = frame[p + 4:p + 4 + n].decode()
            p += 5 + n
        elif sig == "g":
            n = frame[p]
            fields[code] = frame[p + 1:p + 1 + n].decode()
            p += 2 + n
        elif sig == "u":
            p = (p + 3) & ~3
            fields[code] = struct.unpack_from("<I", frame, p)[0]
            p += 4
        else:
            raise AssertionError("unexpected header field %d of type %s" % (code, sig))
    body_off = (end + 7) & ~7
    return {"serial": serial, "fields": fields, "body": frame[body_off:body_off + body_len]}


def meta(msg):
    """Field 107 in its text form as a dict of strings, or None."""
    text = msg["fields"].get(107)
    return None if text is None else dict(e.split("=", 1) for e in text.split(" "))


def fdinfo_pid(fd):
    with open("/proc/self/fdinfo/%d" % fd) as f:
        for line in f:
            if line.startswith("Pid:"):
                return int(line.split()[1])
    return None


def strings(items):
    b = bytearray(struct.pack("<I", 0))
    for s in items:
        pad(b, 4)
        b.extend(struct.pack("<I", len(s)) + s.encode() + b"\0")
    struct.pack_into("<I", b, 0, len(b) - 4)
    return bytes(b)


def match(c, rule):
    body = struct.pack("<I", len(rule)) + rule.encode() + b"\0"
    c.until_reply(c.call("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "AddMatch", "s",
                         body))
