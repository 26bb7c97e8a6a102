#!/usr/bin/python3
# Migration proof app 1 (python3-gi / GDBus). Invariants: deterministic message sequence: one
# service connection exports /com/example/Calc and owns com.example.Calc, one client connection
# subscribes to Added, calls Add (signal before reply), Fail (a D-Bus error), Properties.Get and
# Introspect, strictly one after the other. Exit 0 when every answer is as expected, else 1;
# a 20 s GLib timeout (not a sleep) ends a hung run with exit 3.
import os
import sys
from gi.repository import Gio, GLib

XML = """<node><interface name="com.example.Calc">
<method name="Add"><arg type="i" direction="in"/><arg type="i" direction="in"/><arg type="i" direction="out"/></method>
<method name="Fail"/><signal name="Added"><arg type="i"/></signal>
<property name="Count" type="u" access="read"/></interface></node>"""
addr = os.environ["DBUS_SESSION_BUS_ADDRESS"]
flags = Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION
svc = Gio.DBusConnection.new_for_address_sync(addr, flags, None, None)
cli = Gio.DBusConnection.new_for_address_sync(addr, flags, None, None)
iface = Gio.DBusNodeInfo.new_for_xml(XML).interfaces[0]
loop = GLib.MainLoop()
state = {"count": 0, "signals": [], "status": 1}


def on_call(conn, sender, path, iname, method, params, inv):
    if method == "Add":
        a, b = params.unpack()
        state["count"] += 1
        conn.emit_signal(None, path, iname, "Added", GLib.Variant("(i)", (a + b,)))
        inv.return_value(GLib.Variant("(i)", (a + b,)))
    else:
        inv.return_dbus_error("com.example.Calc.Error.Failed", "asked to fail")


def on_get(conn, sender, path, iname, prop):
    return GLib.Variant("u", state["count"])


svc.register_object("/com/example/Calc", iface, on_call, on_get, None)
r = svc.call_sync("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "RequestName",
                  GLib.Variant("(su)", ("com.example.Calc", 4)), GLib.VariantType("(u)"), 0, -1, None)
assert r.unpack() == (1,), r
cli.signal_subscribe("com.example.Calc", "com.example.Calc", "Added", "/com/example/Calc", None, 0,
                     lambda *a: state["signals"].append(a[5].unpack()[0]))


def call(method, args, reply_type, then):
    cli.call("com.example.Calc", "/com/example/Calc", "com.example.Calc" if "." not in method else method.rsplit(".", 1)[0],
             method.rsplit(".", 1)[-1], args, reply_type, 0, -1, None, then)


def done(ok):
    state["status"] = 0 if ok else 1
    loop.quit()


def step4(conn, res):
    xml = conn.call_finish(res).unpack()[0]
    done(state["signals"] == [5] and "com.example.Calc" in xml)


def step3(conn, res):
    v = conn.call_finish(res).unpack()[0]
    if v != 1:
        return done(False)
    cli.call("com.example.Calc", "/com/example/Calc", "org.freedesktop.DBus.Introspectable", "Introspect", None,
             GLib.VariantType("(s)"), 0, -1, None, step4)


def step2(conn, res):
    try:
        conn.call_finish(res)
        return done(False)
    except GLib.Error as e:
        if "com.example.Calc.Error.Failed" not in e.message:
            return done(False)
    cli.call("com.example.Calc", "/com/example/Calc", "org.freedesktop.DBus.Properties", "Get",
             GLib.Variant("(ss)", ("com.example.Calc", "Count")), GLib.VariantType("(v)"), 0, -1, None, step3)


def step1(conn, res):
    if conn.call_finish(res).unpack() != (5,):
        return done(False)
    cli.call("com.example.Calc", "/com/example/Calc", "com.example.Calc", "Fail", None, None, 0, -1, None, step2)


cli.call("com.example.Calc", "/com/example/Calc", "com.example.Calc", "Add", GLib.Variant("(ii)", (2, 3)),
         GLib.VariantType("(i)"), 0, -1, None, step1)
GLib.timeout_add_seconds(20, lambda: (state.update(status=3), loop.quit()))
loop.run()
cli.close_sync(None)
svc.close_sync(None)
sys.exit(state["status"])
