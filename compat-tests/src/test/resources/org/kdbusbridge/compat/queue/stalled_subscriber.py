# A dbus-python subscriber that asks for MessagesDropped notices, then stalls (reads nothing)
# until a line arrives on stdin, then reads on. argv[1]: the bus address.
# Prints "ready <unique name>", then, once the bus answered a Ping sent after the first
# notice (so everything queued before it has been seen): "summary <ticks> <notices>", where
# <notices> is "count,first,last" for each MessagesDropped, joined by ";".
import sys
import dbus
from dbus.mainloop.glib import DBusGMainLoop
from gi.repository import GLib

DBusGMainLoop(set_as_default=True)
bus = dbus.bus.BusConnection(sys.argv[1])
loop = GLib.MainLoop()
ticks = []
notices = []

def tick(i, pad):
    ticks.append(int(i))

def done(*args):
    print('summary %d %s' % (len(ticks), ';'.join('%d,%d,%d' % n for n in notices)), flush=True)
    loop.quit()

def dropped(count, first_seq, last_seq):
    notices.append((int(count), int(first_seq), int(last_seq)))
    if len(notices) == 1:
        bus.call_async('org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus.Peer', 'Ping',
                       '', [], done, done)

bus.add_signal_receiver(tick, signal_name='Tick', dbus_interface='org.example.Ticker')
bus.add_signal_receiver(dropped, signal_name='MessagesDropped', dbus_interface='org.kdbusbridge.Extensions1',
                        bus_name='org.freedesktop.DBus', path='/org/freedesktop/DBus')
bus.call_blocking('org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.kdbusbridge.Extensions1',
                  'WatchDrops', 'b', [True])
print('ready %s' % bus.get_unique_name(), flush=True)
sys.stdin.readline()  # stalled: nobody reads the socket meanwhile
loop.run()
