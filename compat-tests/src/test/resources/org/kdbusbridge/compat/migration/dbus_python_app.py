#!/usr/bin/python3
# Migration proof app 2 (dbus-python). Invariants: deterministic sequence on two private
# connections A and B: A owns com.example.Queue, B queues for it and listens for A's Ping
# signal and for the name's owner changes; A emits Ping; once B saw it, A releases the name and
# B must become the owner (NameAcquired, GetNameOwner, ListQueuedOwners). Exit 0 when all
# holds, 1 otherwise; a 20 s GLib timeout (not a sleep) ends a hung run with exit 3.
import os
import sys
import dbus
import dbus.bus
import dbus.service
from dbus.mainloop.glib import DBusGMainLoop
from gi.repository import GLib

DBusGMainLoop(set_as_default=True)
addr = os.environ["DBUS_SESSION_BUS_ADDRESS"]
a = dbus.bus.BusConnection(addr)
b = dbus.bus.BusConnection(addr)
NAME = "com.example.Queue"
loop = GLib.MainLoop()
state = {"pings": [], "owners": [], "acquired": [], "status": 1}


class Pinger(dbus.service.Object):
    @dbus.service.signal("com.example.Q", signature="s")
    def Ping(self, text):
        pass


pinger = Pinger(a, "/q")
ok = a.request_name(NAME, 0) == dbus.bus.REQUEST_NAME_REPLY_PRIMARY_OWNER
ok = ok and b.request_name(NAME, 0) == dbus.bus.REQUEST_NAME_REPLY_IN_QUEUE
queued = b.call_blocking("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                         "ListQueuedOwners", "s", (NAME,))
ok = ok and list(queued) == [a.get_unique_name(), b.get_unique_name()]


def on_acquired(name):
    state["acquired"].append(str(name))
    check()


def check():
    if NAME in state["acquired"] and b.get_unique_name() in state["owners"]:
        owner = b.get_name_owner(NAME)
        state["status"] = 0 if ok and owner == b.get_unique_name() and state["pings"] == ["one"] else 1
        loop.quit()


def on_ping(text):
    state["pings"].append(str(text))
    a.release_name(NAME)


def on_owner(owner):
    state["owners"].append(str(owner))
    check()


b.add_signal_receiver(on_acquired, "NameAcquired", "org.freedesktop.DBus", "org.freedesktop.DBus", "/org/freedesktop/DBus")
b.add_signal_receiver(on_ping, "Ping", "com.example.Q", None, "/q")
b.watch_name_owner(NAME, on_owner)
# A round trip on B so that its match rules are in place before A pings.
b.call_blocking("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "GetId", "", ())
pinger.Ping("one")
GLib.timeout_add_seconds(20, lambda: (state.update(status=3), loop.quit()))
loop.run()
a.close()
b.close()
sys.exit(state["status"])
