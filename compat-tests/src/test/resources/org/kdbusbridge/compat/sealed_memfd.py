# Sealed memfd payloads through kdbus-bridge (docs/extensions.md). Two processes, no threads
# (dbus-python is not thread-safe with a main loop):
#   sealed_memfd.py service ADDR  - asks for sealed memfds only, exports Take(h) -> s and
#                                   Count() -> u (Payload signals received); prints "ready"
#   sealed_memfd.py client ADDR   - sends an unsealed memfd (refused), a sealed one and a pipe
#                                   (delivered), two broadcasts (unsealed, sealed), then Count.
import os, sys, fcntl
import dbus

mode, addr = sys.argv[1], sys.argv[2]

if mode == 'service':
    import dbus.service
    from dbus.mainloop.glib import DBusGMainLoop
    from gi.repository import GLib
    DBusGMainLoop(set_as_default=True)
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

        @dbus.service.method('com.example.Memfd', in_signature='', out_signature='u')
        def Count(self):
            return len(signals)

    svc = Svc(b, '/m')
    b.add_signal_receiver(lambda fd: signals.append(1), 'Payload', 'com.example.Memfd')
    name = dbus.service.BusName('com.example.Memfd', b)
    print('ready', flush=True)
    GLib.timeout_add(30000, lambda: os._exit(0))
    GLib.MainLoop().run()
else:
    def memfd(data, seal):
        fd = os.memfd_create('payload', os.MFD_ALLOW_SEALING)
        os.write(fd, data)
        if seal:
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS,
                        fcntl.F_SEAL_WRITE | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL)
        return fd

    a = dbus.bus.BusConnection(addr)
    o = a.get_object('com.example.Memfd', '/m', introspect=False)
    try:
        o.Take(dbus.types.UnixFd(memfd(b'unsealed', False)), dbus_interface='com.example.Memfd')
        print('unsealed delivered')
    except dbus.exceptions.DBusException as e:
        print('unsealed refused ' + e.get_dbus_name())
    print('sealed ' + str(o.Take(dbus.types.UnixFd(memfd(b'sealed payload', True)), dbus_interface='com.example.Memfd')))
    r, w = os.pipe()
    os.write(w, b'through a pipe')
    os.close(w)
    print('pipe ' + str(o.Take(dbus.types.UnixFd(r), dbus_interface='com.example.Memfd')))
    for data, seal in ((b'x', False), (b'y', True)):
        m = dbus.lowlevel.SignalMessage('/m', 'com.example.Memfd', 'Payload')
        m.append(dbus.types.UnixFd(memfd(data, seal)), signature='h')
        a.send_message(m)
    # Same connection, so the bus delivers the signals (or skips them) before this call.
    print('signals ' + str(o.Count(dbus_interface='com.example.Memfd')))
