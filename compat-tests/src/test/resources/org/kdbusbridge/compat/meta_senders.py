"""dbus-python senders for AttachMetadataCompatTest: three connections in this process send
signals in a known admission order (each signal is followed by a Ping round trip on its own
connection, so the bus admitted it before the next one is sent), the first owning a name;
then the first calls Echo on the receiver. argv: ADDRESS ROUNDS RECEIVER."""
import os
import sys

import dbus
import dbus.lowlevel

ADDR, ROUNDS, RECEIVER = sys.argv[1], int(sys.argv[2]), sys.argv[3]
IFACE = "org.kdbusbridge.MetaCompat"
conns = [dbus.bus.BusConnection(ADDR) for _ in range(3)]
conns[0].request_name("org.kdbusbridge.MetaSender0", dbus.bus.NAME_FLAG_DO_NOT_QUEUE)
print("pid", os.getpid(), flush=True)
for k, c in enumerate(conns):
    print("conn", k, c.get_unique_name(), flush=True)
for i in range(ROUNDS):
    for k, c in enumerate(conns):
        m = dbus.lowlevel.SignalMessage("/org/kdbusbridge/MetaCompat", IFACE, "Tick")
        m.append("%d-%d" % (k, i), signature="s")
        c.send_message(m)
        c.call_blocking("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus.Peer", "Ping", "", ())
        print("sent", k, i, flush=True)
print("echo", conns[0].call_blocking(RECEIVER, "/org/kdbusbridge/MetaCompat", IFACE, "Echo", "s", ("hi",)), flush=True)
