"""Sandboxed client for EndpointCombinationsTest (dbus-python, no main loop needed).

usage: big_client.py ADDRESS SIZE
prints one "key value" line per step, then "done".
"""
import sys
import zlib

import dbus

ADDRESS, SIZE = sys.argv[1], int(sys.argv[2])
DRIVER = ("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus")
bus = dbus.bus.BusConnection(ADDRESS)


def out(key, value):
    print(key, value, flush=True)


def outcome(f):
    """ok:<value> or error:<D-Bus error name>."""
    try:
        return "ok:" + str(f())
    except dbus.DBusException as e:
        return "error:" + e.get_dbus_name()


def call(dest, path, iface, member, sig="", args=(), **kw):
    return bus.call_blocking(dest, path, iface, member, sig, args, **kw)


seed = bytes(range(256))
payload = (seed * (SIZE // 256 + 1))[:SIZE]
out("unique", bus.get_unique_name())
n, crc = call("org.example.Big", "/org/example/Big", "org.example.Big", "Echo", "ay", (dbus.ByteArray(payload),))
out("echo", "%d %s" % (n, "crc-ok" if int(crc) == zlib.crc32(payload) else "crc-bad"))
back = call("org.example.Big", "/org/example/Big", "org.example.Big", "Blob", "u", (SIZE,), byte_arrays=True)
out("blob", "%d %s" % (len(back), "crc-ok" if zlib.crc32(bytes(back)) == zlib.crc32(payload) else "crc-bad"))
out("secret", outcome(lambda: call("org.example.Secret", "/org/example/Secret", "org.example.Secret", "Ping")))
out("own-denied", outcome(lambda: int(call(*DRIVER, "RequestName", "su", ("org.example.Denied", 4)))))
out("own-mine", outcome(lambda: int(call(*DRIVER, "RequestName", "su", ("org.example.Mine", 4)))))
out("hidden", outcome(lambda: call("org.example.Hidden", "/org/example/Hidden", "org.example.Hidden", "HiddenProbe")))
# After the refused call, one more that passes: once a monitor saw this one, it would have seen
# the refused one too, had it reached the bus.
n, _ = call("org.example.Big", "/org/example/Big", "org.example.Big", "Echo", "ay", (dbus.ByteArray(b"after"),))
out("after", int(n))
out("done", "")
