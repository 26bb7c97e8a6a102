"""Outside service for EndpointCombinationsTest: org.example.Big answers large payloads (1 MiB is
far above the bus's 64 KiB zero-copy threshold), org.example.Secret answers Ping (the busconfig
denies sending to it, whatever an endpoint's rules say).

usage: big_service.py BUS_ADDRESS
prints "ready UNIQUE" (org.example.Big's owner) once both names are owned.
"""
import sys
import zlib

import dbus
import dbus.mainloop.glib
import dbus.service
from gi.repository import GLib

dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)


def connect(name):
    """One connection per name: a send_destination rule matches every name its receiver owns."""
    c = dbus.bus.BusConnection(sys.argv[1])
    if c.request_name(name, dbus.bus.NAME_FLAG_DO_NOT_QUEUE) != dbus.bus.REQUEST_NAME_REPLY_PRIMARY_OWNER:
        raise SystemExit("cannot own " + name)
    return c


bus = connect("org.example.Big")
secret = connect("org.example.Secret")


def blob(n):
    """n deterministic bytes the client can check by CRC."""
    seed = bytes(range(256))
    return (seed * (n // 256 + 1))[:n]


class Big(dbus.service.Object):
    @dbus.service.method("org.example.Big", in_signature="ay", out_signature="uu", byte_arrays=True)
    def Echo(self, data):
        return len(data), zlib.crc32(data)

    @dbus.service.method("org.example.Big", in_signature="u", out_signature="ay", byte_arrays=True)
    def Blob(self, n):
        return dbus.ByteArray(blob(int(n)))


class Secret(dbus.service.Object):
    @dbus.service.method("org.example.Secret", in_signature="", out_signature="s")
    def Ping(self):
        return "pong"


Big(bus, "/org/example/Big")
Secret(secret, "/org/example/Secret")
bus.call_on_disconnection(lambda _c: loop.quit())
loop = GLib.MainLoop()
print("ready", bus.get_unique_name(), flush=True)
loop.run()
