"""Runs docs/extensions.md's python-gi AttachMetadata snippet as written (MetadataSnippetTest).

The test puts the snippet, taken from the docs, where the SNIPPET line is; DBUS_SESSION_BUS_ADDRESS
names our bus. Afterwards a second connection of this process takes a name and sends the
snippet's connection a unicast signal "Hi"; the snippet's filter prints its metadata. Prints
"pid <our pid>" first and "done" once the signal went through the filters.
"""
import os
import sys
import threading

print("pid", os.getpid(), flush=True)

# SNIPPET

from gi.repository import Gio, GLib  # noqa: E402 (again, in case the snippet imports otherwise)

seen = threading.Event()


def after(c, msg, incoming):  # added after the snippet's filter, so it runs after it
    if incoming and msg.get_member() == "Hi":
        seen.set()
    return msg


conn.add_filter(after)  # noqa: F821 (conn comes from the snippet)
other = Gio.DBusConnection.new_for_address_sync(
    os.environ["DBUS_SESSION_BUS_ADDRESS"],
    Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)
other.call_sync("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "RequestName",
                GLib.Variant("(su)", ("org.kdbusbridge.SnippetSender", 4)), None, 0, -1, None)
other.emit_signal(conn.get_unique_name(), "/org/kdbusbridge/Snippet", "org.kdbusbridge.Snippet", "Hi", None)  # noqa: F821
other.flush_sync(None)
if not seen.wait(30):
    print("no Hi within 30 s", flush=True)
    sys.exit(1)
print("done", flush=True)
