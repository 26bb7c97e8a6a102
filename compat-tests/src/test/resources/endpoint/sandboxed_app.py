"""A sandboxed dbus-python (libdbus + GLib main loop) app, as Flatpak runs it: it owns a name
under its app id, reads a portal setting, posts a notification, lists names, tries the private
service, and takes a screenshot through the portal's request/response pattern.

usage: sandboxed_app.py ADDRESS NAME
prints one "key value" line per step, then "done".
"""
import sys

import dbus
import dbus.mainloop.glib
from gi.repository import GLib

dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
ADDRESS, NAME = sys.argv[1], sys.argv[2]
DRIVER = ("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus")
bus = dbus.bus.BusConnection(ADDRESS)


def out(key, value):
    print(key, value, flush=True)


def call(dest, path, iface, member, sig="", args=()):
    return bus.call_blocking(dest, path, iface, member, sig, args)


def outcome(f):
    """ok:<value> or error:<D-Bus error name>."""
    try:
        return "ok:" + str(f())
    except dbus.DBusException as e:
        return "error:" + e.get_dbus_name()


out("unique", bus.get_unique_name())
out("own", outcome(lambda: int(call(*DRIVER, "RequestName", "su", (NAME, 4)))))
out("own-private", outcome(lambda: int(call(*DRIVER, "RequestName", "su", ("org.example.Private", 4)))))
out("own-notifications", outcome(lambda: int(call(*DRIVER, "RequestName", "su", ("org.freedesktop.Notifications", 4)))))
out("portal", outcome(lambda: int(call("org.freedesktop.portal.Desktop", "/org/freedesktop/portal/desktop",
                                       "org.freedesktop.portal.Settings", "ReadOne", "ss",
                                       ("org.freedesktop.appearance", "color-scheme")))))
out("notify", outcome(lambda: int(call("org.freedesktop.Notifications", "/org/freedesktop/Notifications",
                                       "org.freedesktop.Notifications", "Notify", "susssasa{sv}i",
                                       ("py-app", 0, "", "Hello", "from dbus-python", [], {}, 5000)))))
out("names", ",".join(sorted(str(n) for n in call(*DRIVER, "ListNames") if not n.startswith(":"))))
out("private-has-owner", outcome(lambda: bool(call(*DRIVER, "NameHasOwner", "s", ("org.example.Private",)))))
out("private", outcome(lambda: call("org.example.Private", "/org/example/Private", "org.example.Private", "Secret")))

# Every broadcast this app is subscribed to (AddMatch type='signal', sent before the call below).
signals = []
loop = GLib.MainLoop()
handle = []


def on_signal(*args, **kw):
    if kw["sender"] == "org.freedesktop.DBus":
        return  # NameAcquired and friends
    signals.append("%s.%s@%s" % (kw["iface"], kw["member"], kw["path"]))
    if handle and kw["path"] == handle[0] and kw["member"] == "Response":
        loop.quit()


bus.add_signal_receiver(on_signal, sender_keyword="sender", path_keyword="path",
                        interface_keyword="iface", member_keyword="member")


def on_reply(h):
    handle.append(str(h))
    out("screenshot-handle", h)
    if any(s.endswith("@" + handle[0]) for s in signals):
        loop.quit()


def on_error(e):
    out("screenshot", "error:" + e.get_dbus_name())
    loop.quit()


def on_timeout():
    out("timeout", "no Request.Response within 10 s")
    loop.quit()
    return False


bus.call_async("org.freedesktop.portal.Desktop", "/org/freedesktop/portal/desktop", "org.freedesktop.portal.Screenshot",
               "Screenshot", "sa{sv}", ("", {"handle_token": dbus.String("py1", variant_level=1)}), on_reply, on_error)
GLib.timeout_add_seconds(10, on_timeout)
loop.run()
out("signals", ";".join(signals))
out("done", "")
