"""Fake desktop services outside the sandbox: a portal, a notification server and a private
service, each on a connection of its own (so each has its own unique name), plus a control
connection the test uses to read what every service received.

usage: fake_desktop.py BUS_ADDRESS
prints "ready PORTAL NOTIFICATIONS PRIVATE CONTROL" (unique names) once all names are owned.
"""
import sys

import dbus
import dbus.lowlevel
import dbus.mainloop.glib
import dbus.service
from gi.repository import GLib

dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
ADDRESS = sys.argv[1]
PORTAL_PATH = "/org/freedesktop/portal/desktop"
calls = []  # "service|interface.member|sender", in arrival order


def connect(name):
    c = dbus.bus.BusConnection(ADDRESS)
    if c.request_name(name, dbus.bus.NAME_FLAG_DO_NOT_QUEUE) != dbus.bus.REQUEST_NAME_REPLY_PRIMARY_OWNER:
        raise SystemExit("cannot own " + name)
    c.call_on_disconnection(lambda _c: loop.quit())
    return c


def signal(conn, path, iface, member, sig, *args):
    m = dbus.lowlevel.SignalMessage(path, iface, member)
    if sig:
        m.append(*args, signature=sig)
    conn.send_message(m)


def round_trip(conn):
    """When GetId returns, the bus has routed everything this connection sent before."""
    conn.call_blocking("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "GetId", "", ())


class Portal(dbus.service.Object):
    def __init__(self, conn, private_conn):
        super().__init__(conn, PORTAL_PATH)
        self.private_conn = private_conn
        self.serial = 0

    @dbus.service.method("org.freedesktop.portal.Settings", in_signature="ss", out_signature="v", sender_keyword="sender")
    def ReadOne(self, namespace, key, sender=None):
        calls.append("portal|org.freedesktop.portal.Settings.ReadOne|" + sender)
        if (namespace, key) == ("org.freedesktop.appearance", "color-scheme"):
            return dbus.UInt32(1, variant_level=1)
        raise dbus.DBusException("no such setting", name="org.freedesktop.portal.Error.NotFound")

    @dbus.service.method("org.freedesktop.portal.Screenshot", in_signature="sa{sv}", out_signature="o",
                         sender_keyword="sender", async_callbacks=("reply", "error"))
    def Screenshot(self, parent_window, options, sender=None, reply=None, error=None):
        """The portal request pattern: reply a Request handle, then broadcast Request.Response on it.
        Before that, the private service and the portal itself broadcast signals that a sandboxed
        client must not get (hidden sender; a path outside the --broadcast rule). Both are routed
        before the Response, so a client that got the Response would have got them too."""
        calls.append("portal|org.freedesktop.portal.Screenshot.Screenshot|" + sender)
        self.serial += 1
        token = str(options.get("handle_token", "t%d" % self.serial))
        handle = PORTAL_PATH + "/request/" + sender[1:].replace(".", "_") + "/" + token
        signal(self.private_conn, "/org/example/Private", "org.example.Private", "Leak", "s", "secret")
        round_trip(self.private_conn)
        signal(self.connection, "/org/example/elsewhere", "org.freedesktop.portal.Request", "Response", "ua{sv}", 0, {})
        reply(dbus.ObjectPath(handle))
        signal(self.connection, handle, "org.freedesktop.portal.Request", "Response", "ua{sv}",
               0, {"uri": dbus.String("file:///tmp/shot.png", variant_level=1)})


class Notifications(dbus.service.Object):
    def __init__(self, conn):
        super().__init__(conn, "/org/freedesktop/Notifications")
        self.next_id = 0

    @dbus.service.method("org.freedesktop.Notifications", in_signature="susssasa{sv}i", out_signature="u",
                         sender_keyword="sender")
    def Notify(self, app_name, replaces_id, app_icon, summary, body, actions, hints, expire_timeout, sender=None):
        calls.append("notifications|org.freedesktop.Notifications.Notify|" + sender + "|" + summary)
        self.next_id += 1
        return dbus.UInt32(self.next_id)

    @dbus.service.method("org.freedesktop.Notifications", in_signature="", out_signature="ssss", sender_keyword="sender")
    def GetServerInformation(self, sender=None):
        calls.append("notifications|org.freedesktop.Notifications.GetServerInformation|" + sender)
        return ("fake-notifyd", "kdbus-bridge tests", "1.0", "1.2")


class Private(dbus.service.Object):
    def __init__(self, conn):
        super().__init__(conn, "/org/example/Private")

    @dbus.service.method("org.example.Private", in_signature="", out_signature="s", sender_keyword="sender")
    def Secret(self, sender=None):
        calls.append("private|org.example.Private.Secret|" + sender)
        return "secret"


class Control(dbus.service.Object):
    def __init__(self, conn):
        super().__init__(conn, "/control")

    @dbus.service.method("org.example.Control", in_signature="", out_signature="as")
    def Calls(self):
        return calls


loop = GLib.MainLoop()
portal_conn = connect("org.freedesktop.portal.Desktop")
notify_conn = connect("org.freedesktop.Notifications")
private_conn = connect("org.example.Private")
control_conn = connect("org.example.DesktopControl")
keep = [Portal(portal_conn, private_conn), Notifications(notify_conn), Private(private_conn), Control(control_conn)]
print("ready", portal_conn.get_unique_name(), notify_conn.get_unique_name(), private_conn.get_unique_name(),
      control_conn.get_unique_name(), flush=True)
loop.run()
