"""dbus-python (libdbus) receiver for AttachMetadataCompatTest: asks for every item but pidfd
(or none: ITEMS -), then receives signals and answers Echo as usual; libdbus has no call for
unknown header fields, so this only shows that nothing breaks. argv: ADDRESS ITEMS."""
import sys

import dbus
import dbus.service
from dbus.mainloop.glib import DBusGMainLoop
from gi.repository import GLib

ADDR, ITEMS = sys.argv[1], sys.argv[2]
IFACE = "org.kdbusbridge.MetaCompat"
DBusGMainLoop(set_as_default=True)
bus = dbus.bus.BusConnection(ADDR)
if ITEMS != "-":
    bus.call_blocking("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.kdbusbridge.Extensions1",
                      "AttachMetadata", "as", (ITEMS.split(","),))
got = bus.call_blocking("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.kdbusbridge.Extensions1",
                        "GetAttachedMetadata", "", ()) if ITEMS != "-" else []
print("attached", ",".join(str(x) for x in got), flush=True)


def on_signal(*args, **kw):
    print("PYSIG", kw["member"], args[0] if args else "", flush=True)


bus.add_signal_receiver(on_signal, dbus_interface=IFACE, member_keyword="member")


class Echo(dbus.service.Object):
    @dbus.service.method(IFACE, in_signature="s", out_signature="s")
    def Echo(self, s):
        print("PYCALL Echo", s, flush=True)
        return "echo:" + s


Echo(bus, "/org/kdbusbridge/MetaCompat")
print("ready", bus.get_unique_name(), flush=True)
GLib.MainLoop().run()
