# Written for the kdbus-bridge compat tests: unix fd indexes ('h' values) past UNIX_FDS.
# Usage: python3 handles.py ADDRESS
# A GDBus service (com.example.Handles) answers One(h) and Two(hh) by reading each index from
# the message's fd list, or saying it has no such fd. A raw client (fds negotiated) calls it
# with indexes the bus must not check (as libdbus does not): One(5) with no fds, Two(0, 3)
# with one fd, then pings the bus. Prints one line per reply: "TYPE TEXT" (checked by
# HandleIndexTest); a disconnect prints "eof".
import os
import re
import socket
import struct
import sys
import threading

from rawwire import marshal_call

from gi.repository import Gio, GLib

NAME = "com.example.Handles"
IFACE = "com.example.Handles"
PATH = "/com/example/Handles"
XML = ("<node><interface name='%s'><method name='One'><arg type='h' direction='in'/>"
       "<arg type='s' direction='out'/></method><method name='Two'><arg type='h' direction='in'/>"
       "<arg type='h' direction='in'/><arg type='s' direction='out'/></method></interface></node>" % IFACE)
address = sys.argv[1]
socket_path = re.search(r"path=([^,;]+)", address).group(1)


def on_call(conn, sender, path, iface, method, params, invocation):
    fds = invocation.get_message().get_unix_fd_list()
    n = 0 if fds is None else fds.get_length()
    words = []
    for i in range(params.n_children()):
        index = params.get_child_value(i).get_handle()
        if index < n:
            fd = fds.get(index)
            words.append(os.read(fd, 100).decode())
            os.close(fd)
        else:
            words.append("no-fd-%d-of-%d" % (index, n))
    invocation.return_value(GLib.Variant("(s)", (" ".join(words),)))


flags = Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION
svc = Gio.DBusConnection.new_for_address_sync(address, flags, None, None)
svc.register_object(PATH, Gio.DBusNodeInfo.new_for_xml(XML).interfaces[0], on_call, None, None)
reply = svc.call_sync("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "RequestName",
                      GLib.Variant("(su)", (NAME, 4)), GLib.VariantType("(u)"), Gio.DBusCallFlags.NONE, -1, None)
assert reply.unpack() == (1,), reply
threading.Thread(target=GLib.MainLoop().run, daemon=True).start()


class Raw:
    def __init__(self):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(socket_path)
        self.s.settimeout(20)
        self.buf = b""
        self.s.sendall(b"\0AUTH EXTERNAL " + str(os.getuid()).encode().hex().encode() + b"\r\n")
        assert self.line().startswith(b"OK "), "auth"
        self.s.sendall(b"NEGOTIATE_UNIX_FD\r\n")
        assert self.line().startswith(b"AGREE_UNIX_FD"), "fds"
        self.s.sendall(b"BEGIN\r\n")
        self.serial = 0
        self.call("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "Hello")

    def line(self):
        while b"\r\n" not in self.buf:
            self.buf += self.s.recv(256)
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def read_message(self):
        while True:
            if len(self.buf) >= 16:
                body_len, _, fields_len = struct.unpack_from("<III", self.buf, 4)
                header = 16 + fields_len + ((-(16 + fields_len)) % 8)
                if len(self.buf) >= header + body_len:
                    m, self.buf = self.buf[:header + body_len], self.buf[header + body_len:]
                    return m, header
            data, fds, _, _ = socket.recv_fds(self.s, 65536, 16)
            for fd in fds:
                os.close(fd)
            if not data:
                return None, 0
            self.buf += data

    def call(self, dest, path, iface, member, sig="", body=b"", unix_fds=None, fds=()):
        self.serial += 1
        frame = marshal_call(self.serial, dest, path, iface, member, sig, body, unix_fds)
        try:
            if fds:
                socket.send_fds(self.s, [frame], list(fds))
            else:
                self.s.sendall(frame)
        except OSError:
            return "eof", ""
        while True:
            m, header = self.read_message()
            if m is None:
                return "eof", ""
            kind = m[1]
            reply_serial = re.search(rb"\x05\x01u\x00(....)", m[16:header], re.S)
            if kind in (2, 3) and reply_serial and struct.unpack("<I", reply_serial.group(1))[0] == self.serial:
                body = m[header:]
                text = body[4:4 + struct.unpack_from("<I", body, 0)[0]].decode() if body else ""
                return ("return" if kind == 2 else "error"), text


raw = Raw()
print(*raw.call(NAME, PATH, IFACE, "One", "h", struct.pack("<I", 5)), flush=True)
r, w = os.pipe()
os.write(w, b"pipe-two")
os.close(w)
print(*raw.call(NAME, PATH, IFACE, "Two", "hh", struct.pack("<II", 0, 3), unix_fds=1, fds=[r]), flush=True)
os.close(r)
print(*raw.call("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus.Peer", "Ping"), flush=True)
