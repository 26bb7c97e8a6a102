"""AttachMetadata's pidfd item with real processes (AttachPidfdCompatTest). A raw receiver R
negotiates unix fds and asks for ["format=text", "pidfd", "creds", "seq"]; a plain receiver P
negotiates fds too but asks for nothing. A forked sender S calls R twice (no fds; one pipe fd as
an 'h' argument) and broadcasts a signal both receive, then waits until told to exit. For each
message R checks the fds that came with it against field 107 (text form: pidfd=INDEX) and
UNIX_FDS, and that the pidfd refers to S (/proc/self/fdinfo "Pid:"); after S exited, that the
pidfds say the process is gone (Pid: -1, pidfd_send_signal ESRCH). Prints one line per finding;
the test reads them. argv: ADDRESS."""
import array
import os
import signal
import socket
import struct
import sys

from rawwire import marshal_call, pad

ADDR = sys.argv[1]
PATH = ADDR.split("path=", 1)[1].split(",", 1)[0]
IFACE = "org.kdbusbridge.PidfdTest"


class Conn:
    def __init__(self):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(PATH)
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


r = Conn()
p = Conn()
att = r.until_reply(r.call("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.kdbusbridge.Extensions1",
                           "AttachMetadata", "as", strings(["format=text", "pidfd", "creds", "seq"])))
print("attach", att["fields"].get(4, "ok"), "fds=%d" % len(att["fds"]), "field=%s" % (meta(att) is not None),
      flush=True)
for c in (r, p):
    match(c, "type='signal',interface='%s'" % IFACE)

go_r, go_w = os.pipe()
pid = os.fork()
if pid == 0:
    # The sender: its own connection; calls R (no reply expected), broadcasts, waits for "go".
    os.close(go_w)
    s = Conn()
    s.call(r.name, "/t", IFACE, "Plain", flags=1)
    pr, pw = os.pipe()
    os.write(pw, b"through-the-pipe")
    os.close(pw)
    s.call(r.name, "/t", IFACE, "WithFd", "h", struct.pack("<I", 0), fds=[pr], flags=1)
    os.close(pr)
    s.serial += 1
    # A broadcast signal (rawwire's calls always have a destination).
    fields = bytearray()
    for code, t, v in ((1, "o", "/t"), (2, "s", IFACE), (3, "s", "Tick")):
        pad(fields, 8)
        fields.extend(bytes([code, 1]) + t.encode() + b"\0")
        pad(fields, 4)
        fields.extend(struct.pack("<I", len(v)) + v.encode() + b"\0")
    head = bytearray(b"l\x04\x00\x01" + struct.pack("<III", 0, s.serial, len(fields)))
    head.extend(fields)
    pad(head, 8)
    s.s.sendall(bytes(head))
    os.read(go_r, 1)
    os._exit(0)
os.close(go_r)
print("sender", pid, flush=True)

pidfds = []
for member in ("Plain", "WithFd", "Tick"):
    m = r.until_member(member)
    md = meta(m) or {}
    n = m["fields"].get(9, 0)
    idx = int(md.get("pidfd", "-1"))
    line = ["got", member, "unix_fds=%d" % n, "received=%d" % len(m["fds"]), "pidfd=%d" % idx,
            "pid=%s" % md.get("pid")]
    if 0 <= idx < len(m["fds"]):
        fd = m["fds"][idx]
        pidfds.append(fd)
        line.append("fdinfo=%s" % fdinfo_pid(fd))
    if member == "WithFd" and m["fds"]:
        first = m["fds"][0]
        line.append("pipe=%s" % os.read(first, 64).decode())
    print(" ".join(line), flush=True)
t = p.until_member("Tick")
print("plain Tick", "unix_fds=%d" % t["fields"].get(9, 0), "received=%d" % len(t["fds"]),
      "field=%s" % (107 in t["fields"]), flush=True)

os.write(go_w, b"x")
os.waitpid(pid, 0)
for fd in pidfds:
    try:
        signal.pidfd_send_signal(fd, 0)
        alive = "alive"
    except ProcessLookupError:
        alive = "gone"
    print("after-exit", "fdinfo=%s" % fdinfo_pid(fd), alive, flush=True)
print("done", flush=True)
