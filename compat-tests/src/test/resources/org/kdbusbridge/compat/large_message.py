# Written for the kdbus-bridge compat tests (LargeMessageTest): one message near the D-Bus
# maximum (128 MiB), through raw sockets (libdbus clients refuse to receive more than 32 MiB).
# Usage: python3 large_message.py MODE SOCKET_PATH SIZE
#   echo      a receiver in this process reads one call of SIZE payload bytes whole and replies
#             (uu) its byte count and CRC-32; prints "delivered BYTES crc ok|bad MS ms"
#   hold      a receiver that does not read while one sender queues two such calls (each
#             followed by a Ping to the bus, so its refusal, if any, has come back); prints
#             "call N queued" or "call N error NAME: TEXT"; then the receiver reads and answers
#             what it got: "received N calls of BYTES bytes", "call N delivered BYTES crc ok|bad"
#   activate  the call goes to org.example.Big, an activatable name with no owner yet (the
#             service is this script in mode serve); prints as echo
#   serve     the activated service: owns org.example.Big on $DBUS_STARTER_ADDRESS, answers one call
# The payload travels as two byte arrays (signature "ayay"): one array is at most 64 MiB.
# Every line it prints is checked by LargeMessageTest; exit code 0 means the script's own checks held.
import os
import random
import re
import socket
import struct
import sys
import threading
import time
import zlib

from rawwire import marshal_call

BUS = "org.freedesktop.DBus"
BUS_PATH = "/org/freedesktop/DBus"
NAME = "org.example.Big"


def pad_len(n, a):
    return (-n) % a


def parse_fields(f):
    out, i = {}, 0
    while i < len(f):
        i += pad_len(i, 8)
        code, sl = f[i], f[i + 1]
        t = bytes(f[i + 2:i + 2 + sl]).decode()
        i += 3 + sl
        if t in ("s", "o"):
            i += pad_len(i, 4)
            n = struct.unpack_from("<I", f, i)[0]
            v = bytes(f[i + 4:i + 4 + n]).decode()
            i += 5 + n
        elif t == "g":
            n = f[i]
            v = bytes(f[i + 1:i + 1 + n]).decode()
            i += 2 + n
        else:
            i += pad_len(i, 4)
            v = struct.unpack_from("<I", f, i)[0]
            i += 4
        out[code] = v
    return out


class Conn:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(path)
        self.buf = bytearray()
        self.serial = 0
        self.s.sendall(b"\0AUTH EXTERNAL " + str(os.getuid()).encode().hex().encode() + b"\r\n")
        while b"\r\n" not in self.buf:
            self.buf += self.s.recv(256)
        assert self.buf.startswith(b"OK "), self.buf
        self.buf = bytearray()
        self.s.sendall(b"BEGIN\r\n")
        self.name = bytes(self.call_bus("Hello")["body"][4:-1]).decode()

    def next_serial(self):
        self.serial += 1
        return self.serial

    def take(self, n):
        """Exactly n bytes; a large message is read straight into its own buffer."""
        if len(self.buf) >= n:
            out = self.buf[:n]
            del self.buf[:n]
            return out
        out = bytearray(n)
        have = len(self.buf)
        out[:have] = self.buf
        self.buf = bytearray()
        view = memoryview(out)
        while have < n:
            if n - have < 65536:
                chunk = self.s.recv(65536)
                if not chunk:
                    raise EOFError
                use = min(len(chunk), n - have)
                view[have:have + use] = chunk[:use]
                self.buf += chunk[use:]
                have += use
            else:
                got = self.s.recv_into(view[have:], n - have)
                if got == 0:
                    raise EOFError
                have += got
        return out

    def read(self):
        head = self.take(16)
        assert head[0:1] == b"l", head
        blen, serial, flen = struct.unpack_from("<III", head, 4)
        hlen = 16 + flen + pad_len(16 + flen, 8)
        rest = self.take(hlen - 16 + blen)
        fields = parse_fields(memoryview(rest)[:flen])
        return {"type": head[1], "serial": serial, "fields": fields, "body": memoryview(rest)[hlen - 16:]}

    def await_reply(self, serial, keep=None):
        while True:
            m = self.read()
            if m["type"] in (2, 3) and m["fields"].get(5) == serial:
                return m
            if keep is not None:
                keep.append(m)

    def call_bus(self, member, sig="", body=b"", iface=BUS, keep=None):
        s = self.next_serial()
        self.s.sendall(marshal_call(s, BUS, BUS_PATH, iface, member, sig, body))
        return self.await_reply(s, keep)

    def send_big(self, dest, payload, member="Take"):
        """One call carrying payload as two byte arrays; the body is never copied whole."""
        half = len(payload) // 2
        a, b = payload[:half], payload[half:]
        first = struct.pack("<I", len(a))
        gap = b"\0" * pad_len(4 + len(a), 4)
        second = struct.pack("<I", len(b))
        blen = len(first) + len(a) + len(gap) + len(second) + len(b)
        s = self.next_serial()
        head = marshal_call(s, dest, "/org/example/Big", NAME, member, "ayay", b"")
        head = head[:4] + struct.pack("<I", blen) + head[8:]
        for part in (head, first, a, gap, second, b):
            self.s.sendall(part)
        return s

    def reply(self, call, body, sig):
        s = self.next_serial()
        fields = bytearray()
        for code, t, v in ((5, "u", call["serial"]), (6, "s", call["fields"][7]), (8, "g", sig)):
            fields.extend(b"\0" * pad_len(len(fields), 8))
            fields.extend(bytes([code, 1]) + t.encode() + b"\0")
            if t == "u":
                fields.extend(struct.pack("<I", v))
            elif t == "s":
                fields.extend(struct.pack("<I", len(v)) + v.encode() + b"\0")
            else:
                fields.extend(bytes([len(v)]) + v.encode() + b"\0")
        head = bytearray(b"l\x02\x00\x01" + struct.pack("<III", len(body), s, len(fields)))
        head.extend(fields)
        head.extend(b"\0" * pad_len(len(head), 8))
        self.s.sendall(bytes(head) + body)


def measure(body):
    """Byte count and CRC-32 of the two arrays of an "ayay" body."""
    n1 = struct.unpack_from("<I", body, 0)[0]
    off = 4 + n1 + pad_len(4 + n1, 4)
    n2 = struct.unpack_from("<I", body, off)[0]
    crc = zlib.crc32(body[4:4 + n1])
    crc = zlib.crc32(body[off + 4:off + 4 + n2], crc)
    return n1 + n2, crc


def answer(conn, call):
    n, crc = measure(call["body"])
    conn.reply(call, struct.pack("<II", n, crc), "uu")
    return n, crc


def check(reply, payload, label):
    if reply["type"] == 3:
        print(label, "error", reply["fields"].get(4) + ":", bytes(reply["body"][4:-1]).decode(), flush=True)
        return False
    n, crc = struct.unpack_from("<II", reply["body"], 0)
    print(label, n, "crc", "ok" if crc == zlib.crc32(payload) else "bad", flush=True)
    return n == len(payload) and crc == zlib.crc32(payload)


def echo(path, payload, dest_is_name):
    receiver = None
    if not dest_is_name:
        receiver = Conn(path)

        def serve_one():
            while True:
                m = receiver.read()
                if m["type"] == 1 and m["fields"].get(3) == "Take":
                    answer(receiver, m)
                    return

        threading.Thread(target=serve_one, daemon=True).start()
    sender = Conn(path)
    start = time.monotonic()
    serial = sender.send_big(NAME if dest_is_name else receiver.name, payload)
    reply = sender.await_reply(serial)
    ms = (time.monotonic() - start) * 1000
    ok = check(reply, payload, "delivered")
    print("time %d ms" % ms, flush=True)
    return ok


def hold(path, payload):
    receiver = Conn(path)  # from here on it does not read until both calls went out
    sender = Conn(path)
    serials, seen = [], []
    for i in (1, 2):
        serial = sender.send_big(receiver.name, payload)
        serials.append(serial)
        sender.call_bus("Ping", iface="org.freedesktop.DBus.Peer", keep=seen)  # every refusal came before this
        refusal = None
        for m in seen:
            if m["type"] == 3 and m["fields"].get(5) == serial:
                refusal = m
        if refusal is None:
            print("call", i, "queued", flush=True)
        else:
            print("call", i, "error", refusal["fields"].get(4) + ":", bytes(refusal["body"][4:-1]).decode(), flush=True)
    # The receiver reads now: a Ping of its own is answered after everything queued before it.
    got = []
    ping = receiver.next_serial()
    receiver.s.sendall(marshal_call(ping, BUS, BUS_PATH, "org.freedesktop.DBus.Peer", "Ping"))
    while True:
        m = receiver.read()
        if m["type"] == 1 and m["fields"].get(3) == "Take":
            got.append(m)
        elif m["type"] == 2 and m["fields"].get(5) == ping:
            break
    print("received", len(got), "calls of", " ".join(str(measure(m["body"])[0]) for m in got), "bytes", flush=True)
    for m in got:
        answer(receiver, m)
        del m["body"]
    ok = True
    for i, serial in enumerate(serials, 1):
        earlier = [m for m in seen if m["type"] in (2, 3) and m["fields"].get(5) == serial]
        reply = earlier[0] if earlier else sender.await_reply(serial)
        if reply["type"] == 2:
            ok = check(reply, payload, "call %d delivered" % i) and ok
    return ok


def serve():
    address = os.environ["DBUS_STARTER_ADDRESS"]
    conn = Conn(re.search(r"path=([^,;]+)", address).group(1))
    name = NAME.encode()
    early = []  # the waiting call may come before RequestName's reply
    r = conn.call_bus("RequestName", "su", struct.pack("<I", len(name)) + name + b"\0" * (1 + pad_len(5 + len(name), 4))
                      + struct.pack("<I", 4), keep=early)
    assert r["type"] == 2, r
    while True:
        m = early.pop(0) if early else conn.read()
        if m["type"] == 1 and m["fields"].get(3) == "Take":
            answer(conn, m)
            conn.call_bus("GetId")  # the reply is written before this returns: nothing is lost at exit
            return True


def main():
    mode = sys.argv[1]
    if mode == "serve":
        return serve()
    path, size = sys.argv[2], int(sys.argv[3])
    payload = random.Random(size).randbytes(size)
    if mode == "echo":
        return echo(path, payload, False)
    if mode == "activate":
        return echo(path, payload, True)
    if mode == "hold":
        return hold(path, payload)
    raise SystemExit("unknown mode " + mode)


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
