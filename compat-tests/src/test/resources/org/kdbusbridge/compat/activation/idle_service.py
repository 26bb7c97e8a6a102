# An activatable echo service that exits when idle.
#   mode "byebye":  asks the bus DisconnectIfIdle (org.kdbusbridge.Extensions1); exits only if the
#                   bus agreed, otherwise keeps serving.
#   mode "classic": the usual pattern on dbus-daemon: ReleaseName, then exit.
# Each start appends a line to the log file given as argv[3], each exit another.
import os, sys
import dbus, dbus.service
from dbus.mainloop.glib import DBusGMainLoop
from gi.repository import GLib

mode, idle_ms, log = sys.argv[1], int(sys.argv[2]), sys.argv[3]
NAME = 'com.example.IdleEcho'
DBusGMainLoop(set_as_default=True)
bus = dbus.bus.BusConnection(os.environ['DBUS_STARTER_ADDRESS'])
loop = GLib.MainLoop()
timer = [None]

def note(what):
    with open(log, 'a') as f:
        f.write('%s %d\n' % (what, os.getpid()))

def arm():
    if timer[0] is not None:
        GLib.source_remove(timer[0])
    timer[0] = GLib.timeout_add(idle_ms, on_idle)

class Echo(dbus.service.Object):
    @dbus.service.method('com.example.IdleEcho', in_signature='u', out_signature='u')
    def Echo(self, n):
        arm()
        return n

def on_idle():
    timer[0] = None
    if mode == 'byebye':
        try:
            bus.call_blocking('org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.kdbusbridge.Extensions1',
                              'DisconnectIfIdle', '', [])
        except dbus.exceptions.DBusException as e:
            if e.get_dbus_name() == 'org.kdbusbridge.Error.NotIdle':
                note('busy')
                arm()
                return False
            raise
        note('exit')
        os._exit(0)
    else:
        bus.release_name(NAME)
        note('exit')
        os._exit(0)
    return False

obj = Echo(bus, '/com/example/IdleEcho')
name = dbus.service.BusName(NAME, bus, do_not_queue=True)
note('start')
arm()
loop.run()
