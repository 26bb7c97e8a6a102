"""GDBus (python-gi) receiver for the AttachMetadata compat tests (AttachMetadataCompatTest).

argv: ADDRESS ITEMS (comma list, or - for none). Prints "ready <unique name>", then one line
per signal of org.kdbusbridge.MetaCompat and per Echo call, "SIG"/"CALL" and key=value words:
the message's metadata field (header field 107, read with g_dbus_message_get_header through
ctypes: python-gi only takes the enum's known values) item by item, whether the field is there
at all (field=), and, for signals, the sender's connect-time pid and uid as
GetConnectionUnixProcessID / GetConnectionUnixUser give them (connpid=, connuid=).
"""
import ctypes
import os
import sys

from gi.repository import Gio, GLib

ADDR, ITEMS = sys.argv[1], sys.argv[2]
IFACE = "org.kdbusbridge.MetaCompat"
BUS, BUS_PATH = "org.freedesktop.DBus", "/org/freedesktop/DBus"
FIELD = 107

gio = ctypes.CDLL("libgio-2.0.so.0")
gio.g_dbus_message_get_header.restype = ctypes.c_void_p
gio.g_dbus_message_get_header.argtypes = [ctypes.c_void_p, ctypes.c_int]
glib = ctypes.CDLL("libglib-2.0.so.0")
glib.g_variant_print.restype = ctypes.c_char_p
glib.g_variant_print.argtypes = [ctypes.c_void_p, ctypes.c_int]


def metadata(msg):
    """The a{sv} of header field 107 as a Python dict, or None (hash() of a GObject is its address)."""
    v = gio.g_dbus_message_get_header(ctypes.c_void_p(hash(msg)), FIELD)
    if not v:
        return None
    text = glib.g_variant_print(v, True).decode()
    return GLib.Variant.parse(GLib.VariantType.new("a{sv}"), text, None, None).unpack()


def jsonable(x):
    if isinstance(x, dict):
        return {k: jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, bytes):
        return x.decode("utf-8", "replace").replace("\0", " ").strip().replace(" ", "_")
    return x


conn = Gio.DBusConnection.new_for_address_sync(
    ADDR, Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)
if ITEMS != "-":
    conn.call_sync(BUS, BUS_PATH, "org.kdbusbridge.Extensions1", "AttachMetadata",
                   GLib.Variant("(as)", (ITEMS.split(","),)), None, 0, -1, None)
conn.call_sync(BUS, BUS_PATH, BUS, "AddMatch", GLib.Variant("(s)", ("type='signal',interface='%s'" % IFACE,)),
               None, 0, -1, None)


def ask(member, sender):
    try:
        return conn.call_sync(BUS, BUS_PATH, BUS, member, GLib.Variant("(s)", (sender,)), None, 0, 5000, None).unpack()[0]
    except GLib.Error:
        return None


def words(kind, rec):
    meta = rec.pop("meta")
    out = [kind] + ["%s=%s" % (k, v) for k, v in rec.items()]
    out.append("field=%s" % (meta is not None))
    for k, v in (meta or {}).items():
        if k == "timestamp":
            out += ["mono=%d" % v[0], "real=%d" % v[1]]
        elif k in ("cmdline", "seclabel", "comm", "exe", "cgroup") and isinstance(v, list):
            # ay (GLib hands bytes back as a list of numbers after print/parse): as text, NULs as _
            out.append("%s=%s" % (k, bytes(v).decode("utf-8", "replace").replace("\0", "_").replace(" ", "_")))
        elif isinstance(v, list):
            out.append("%s=%s" % (k, ",".join(str(x) for x in v)))
        else:
            out.append("%s=%s" % (k, v))
    return " ".join(out)


def report(rec):
    rec["connpid"] = ask("GetConnectionUnixProcessID", rec["sender"])
    rec["connuid"] = ask("GetConnectionUnixUser", rec["sender"])
    print(words("SIG", rec), flush=True)
    return False


def on_message(c, msg, incoming):
    # Runs on GDBus's worker thread: record, and report from the main loop in arrival order.
    if incoming and msg.get_message_type() == Gio.DBusMessageType.SIGNAL and msg.get_interface() == IFACE:
        body = msg.get_body()
        rec = {"member": msg.get_member(), "sender": msg.get_sender(),
               "body": body.unpack()[0] if body is not None and len(body.unpack()) > 0 else "",
               "codes": ",".join(str(c) for c in msg.get_header_fields()), "meta": jsonable(metadata(msg))}
        GLib.idle_add(report, rec)
    return msg


conn.add_filter(on_message)

XML = """<node><interface name="%s"><method name="Echo"><arg type="s" direction="in"/>
<arg type="s" direction="out"/></method><method name="TakeFd"><arg type="h" direction="in"/>
<arg type="s" direction="out"/></method></interface></node>""" % IFACE


def on_call(c, sender, path, iface, method, params, invocation):
    msg = invocation.get_message()
    print(words("CALL", {"member": method, "sender": sender, "codes": ",".join(str(c) for c in msg.get_header_fields()),
                         "meta": jsonable(metadata(msg))}), flush=True)
    if method == "TakeFd":  # the fd must arrive beside the field: read what the caller wrote into it
        fd = msg.get_unix_fd_list().get(params.unpack()[0])
        data = os.read(fd, 100).decode()
        os.close(fd)
        invocation.return_value(GLib.Variant("(s)", ("fd:" + data,)))
        return
    invocation.return_value(GLib.Variant("(s)", ("echo:" + params.unpack()[0],)))


conn.register_object("/org/kdbusbridge/MetaCompat", Gio.DBusNodeInfo.new_for_xml(XML).interfaces[0], on_call, None, None)
print("ready", conn.get_unique_name(), flush=True)
GLib.MainLoop().run()
