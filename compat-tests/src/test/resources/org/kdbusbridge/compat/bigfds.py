# Written for the kdbus-bridge compat tests: large messages carrying a unix fd, through GLib.
# Usage: python3 bigfds.py ADDRESS SIZE...
# A service (its own connection) takes com.example.BigFds; for each SIZE a client calls
# Take(ay data, h fd) with SIZE bytes of data and the read end of a pipe; the service hashes
# the data, reads the pipe and answers. Prints one line per call: "took SIZE SHA256 PIPE-TEXT"
# (checked by CaptureTest); exit code 0 means every reply came.
import hashlib
import os
import sys
import threading

from gi.repository import Gio, GLib

NAME = "com.example.BigFds"
IFACE = "com.example.BigFds"
PATH = "/com/example/BigFds"
XML = ("<node><interface name='%s'><method name='Take'><arg type='ay' direction='in'/>"
       "<arg type='h' direction='in'/><arg type='s' direction='out'/></method></interface></node>" % IFACE)
address = sys.argv[1]
sizes = [int(s) for s in sys.argv[2:]]


def connect():
    flags = Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION
    return Gio.DBusConnection.new_for_address_sync(address, flags, None, None)


def pattern(n):
    return bytes((i * 31 + 7) & 0xFF for i in range(n))


def read_all(fd):
    out = b""
    while True:
        chunk = os.read(fd, 4096)
        if not chunk:
            return out.decode()
        out += chunk


def on_call(conn, sender, path, iface, method, params, invocation):
    data = params.get_child_value(0).get_data_as_bytes().get_data()
    index = params.get_child_value(1).get_handle()
    fd = invocation.get_message().get_unix_fd_list().get(index)
    text = read_all(fd)
    os.close(fd)
    invocation.return_value(GLib.Variant("(s)", ("%d %s %s" % (len(data), hashlib.sha256(data).hexdigest(), text),)))


svc = connect()
svc.register_object(PATH, Gio.DBusNodeInfo.new_for_xml(XML).interfaces[0], on_call, None, None)
reply = svc.call_sync("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "RequestName",
                      GLib.Variant("(su)", (NAME, 4)), GLib.VariantType("(u)"), Gio.DBusCallFlags.NONE, -1, None)
assert reply.unpack() == (1,), reply
loop = GLib.MainLoop()
threading.Thread(target=loop.run, daemon=True).start()

cli = connect()
for n in sizes:
    r, w = os.pipe()
    os.write(w, ("pipe-%d" % n).encode())
    os.close(w)
    fds = Gio.UnixFDList.new_from_array([r])  # takes r
    data = GLib.Variant.new_from_bytes(GLib.VariantType("ay"), GLib.Bytes.new(pattern(n)), True)
    args = GLib.Variant.new_tuple(data, GLib.Variant("h", 0))
    result, _ = cli.call_with_unix_fd_list_sync(NAME, PATH, IFACE, "Take", args, GLib.VariantType("(s)"),
                                                Gio.DBusCallFlags.NONE, 20000, fds, None)
    print("took " + result.unpack()[0], flush=True)
loop.quit()
