# A dbus-python service for HandOverExecTest: owns com.example.HandOver, answers Echo, holds Hang
# calls unanswered until Release (an open reply slot on demand), and prints each Tick signal its
# match rule lets through and each NameOwnerChanged, so the test sees what crossed a hand-over.
import sys
import dbus, dbus.service
from dbus.mainloop.glib import DBusGMainLoop
from gi.repository import GLib

NAME = 'com.example.HandOver'
DBusGMainLoop(set_as_default=True)
bus = dbus.bus.BusConnection(sys.argv[1])
held = []


def out(line):
    print(line, flush=True)


class Service(dbus.service.Object):
    @dbus.service.method(NAME, in_signature='s', out_signature='s')
    def Echo(self, s):
        return s

    @dbus.service.method(NAME, in_signature='', out_signature='', async_callbacks=('ok', 'err'))
    def Hang(self, ok, err):
        held.append(ok)
        out('hang %d' % len(held))

    @dbus.service.method(NAME, in_signature='', out_signature='u')
    def Release(self):
        n = len(held)
        for ok in held:
            ok()
        del held[:]
        return n


Service(bus, '/t')
bus.request_name(NAME, dbus.bus.NAME_FLAG_DO_NOT_QUEUE)
bus.add_signal_receiver(lambda a: out('tick %s' % a), signal_name='Tick', dbus_interface=NAME)
bus.add_signal_receiver(lambda n, o, w: out('noc %s %s %s' % (n, o or '-', w or '-')),
                        signal_name='NameOwnerChanged', dbus_interface='org.freedesktop.DBus',
                        bus_name='org.freedesktop.DBus')
out('ready %s' % bus.get_unique_name())
GLib.MainLoop().run()
