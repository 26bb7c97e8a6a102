# Sealed memfd payloads through kdbus-bridge (docs/extensions.md). argv[1] = bus address.
# B asks the bus for sealed memfds only, then exports Take(h) -> s (reads the payload).
# A sends an unsealed memfd (refused: UnsealedPayload), a sealed one (delivered), a pipe (not a
# memfd: delivered), and broadcasts a signal with an unsealed memfd (B must not get it).
import os, sys, fcntl, threading
import dbus, dbus.service
from dbus.mainloop.glib import DBusGMainLoop
from gi.repository import GLib

DBusGMainLoop(set_as_default=True)
addr = sys.argv[1]
b = dbus.bus.BusConnection(addr)
b.call_blocking('org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.kdbusbridge.Extensions1',
                'RequireSealedMemfds', '', [])
signals = []

class Svc(dbus.service.Object):
    @dbus.service.method('com.example.Memfd', in_signature='h', out_signature='s')
    def Take(self, fd):
        f = fd.take()
        try:
            data = os.pread(f, 4096, 0)   # a memfd: read from the start
        except OSError:
            data = os.read(f, 4096)       # a pipe
        os.close(f)
        return data.decode()

svc = Svc(b, '/m')
name = dbus.service.BusName('com.example.Memfd', b)
b.add_signal_receiver(lambda fd: signals.append('got'), 'Payload', 'com.example.Memfd')

def memfd(data, seal):
    fd = os.memfd_create('payload', os.MFD_ALLOW_SEALING)
    os.write(fd, data)
    if seal:
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_WRITE | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL)
    return fd

results = []
def client():
    a = dbus.bus.BusConnection(addr)
    o = a.get_object('com.example.Memfd', '/m', introspect=False)
    try:
        o.Take(dbus.types.UnixFd(memfd(b'unsealed', False)), dbus_interface='com.example.Memfd')
        results.append('unsealed delivered')
    except dbus.exceptions.DBusException as e:
        results.append('unsealed refused ' + e.get_dbus_name())
    results.append('sealed ' + str(o.Take(dbus.types.UnixFd(memfd(b'sealed payload', True)), dbus_interface='com.example.Memfd')))
    r, w = os.pipe()
    os.write(w, b'through a pipe')
    os.close(w)
    results.append('pipe ' + str(o.Take(dbus.types.UnixFd(r), dbus_interface='com.example.Memfd')))
    m = dbus.lowlevel.SignalMessage('/m', 'com.example.Memfd', 'Payload')
    m.append(dbus.types.UnixFd(memfd(b'x', False)), signature='h')
    a.send_message(m)
    # a sealed broadcast after it: B must get exactly this one
    m2 = dbus.lowlevel.SignalMessage('/m', 'com.example.Memfd', 'Payload')
    m2.append(dbus.types.UnixFd(memfd(b'y', True)), signature='h')
    a.send_message(m2)
    a.flush()
    GLib.timeout_add(300, loop.quit)

loop = GLib.MainLoop()
threading.Thread(target=client, daemon=True).start()
GLib.timeout_add(15000, loop.quit)
loop.run()
for r in results:
    print(r)
print('signals', len(signals))
