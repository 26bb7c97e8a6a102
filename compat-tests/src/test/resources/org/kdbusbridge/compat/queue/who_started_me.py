# An activatable service that asks the bus, right after it got its name, which messages waited
# for it on the activator and caused its start (org.kdbusbridge.Extensions1.PeekActivationQueue).
# argv[1]: a log file; one line per message, then "done", all before it serves anything.
import os, sys
import dbus, dbus.service
from dbus.mainloop.glib import DBusGMainLoop
from gi.repository import GLib

NAME = 'com.example.WhoStarted'
DBusGMainLoop(set_as_default=True)
bus = dbus.bus.BusConnection(os.environ['DBUS_STARTER_ADDRESS'])

class Svc(dbus.service.Object):
    @dbus.service.method(NAME, in_signature='u', out_signature='u')
    def Echo(self, n):
        return n

obj = Svc(bus, '/com/example/WhoStarted')
name = dbus.service.BusName(NAME, bus, do_not_queue=True)
waited = bus.call_blocking('org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.kdbusbridge.Extensions1',
                           'PeekActivationQueue', 's', [NAME])
with open(sys.argv[1], 'w') as f:
    for (kind, sender, iface, member, path, seq, pid, uid, gid) in waited:
        f.write('%d %s %s %s %s %d %d %d %d\n' % (kind, sender, iface, member, path, seq, pid, uid, gid))
    f.write('done\n')
GLib.MainLoop().run()
