# Written for the kdbus-bridge compat tests: unix fd passing with real clients.
# Usage: python3 pyfds.py MODE ADDRESS [N]
#   dbus-python  A (service) reads a pipe whose read end B passed (dbus.types.UnixFd) and hands
#                back a pipe of its own; B's fd call to a peer that never negotiated fds fails.
#   gio          the same with GLib (Gio.UnixFDList, call_with_unix_fd_list_sync).
#   leak N       N fd passes through dbus-python: delivered, refused (NotSupported) and
#                undeliverable (ServiceUnknown) mixed, plus raw sockets that die with fds
#                half-sent or claim more fds than they pass. Prints the unique names it used.
# Every line it prints is checked by FdPassingTest; exit code 0 means the script's own checks held.
import os
import re
import socket
import struct
import sys
import threading

from rawwire import marshal_call

from gi.repository import GLib

IFACE = "com.example.Fds"
PATH = "/com/example/Fds"
mode, address = sys.argv[1], sys.argv[2]
socket_path = re.search(r"path=([^,;]+)", address).group(1)


def pipe_with(data):
    r, w = os.pipe()
    os.write(w, data)
    os.close(w)
    return r


def read_all(fd):
    out = b""
    while True:
        chunk = os.read(fd, 4096)
        if not chunk:
            return out.decode()
        out += chunk


# --- a raw client, for what libraries won't do: skip NEGOTIATE_UNIX_FD, send broken fd messages ---

def raw_client(negotiate_fds):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(socket_path)
    s.sendall(b"\0AUTH EXTERNAL " + str(os.getuid()).encode().hex().encode() + b"\r\n")
    buf = b""
    while b"\r\n" not in buf:
        buf += s.recv(256)
    assert buf.startswith(b"OK "), buf
    if negotiate_fds:
        s.sendall(b"NEGOTIATE_UNIX_FD\r\n")
        buf = b""
        while b"\r\n" not in buf:
            buf += s.recv(256)
        assert buf.startswith(b"AGREE_UNIX_FD"), buf
    s.sendall(b"BEGIN\r\n" + marshal_call(1, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                          "org.freedesktop.DBus", "Hello"))
    buf = b""
    while True:
        buf += s.recv(4096)
        m = re.search(rb"(:\d+\.\d+)\0", buf)
        if m:
            return s, m.group(1).decode()


def fail(msg):
    print("FAIL", msg, flush=True)
    sys.exit(1)


# --- dbus-python ---------------------------------------------------------------------------

def run_dbus_python():
    import dbus
    import dbus.service
    from dbus.mainloop.glib import DBusGMainLoop
    DBusGMainLoop(set_as_default=True)
    loop = GLib.MainLoop()
    a = dbus.bus.BusConnection(address)
    b = dbus.bus.BusConnection(address)
    raw, raw_name = raw_client(negotiate_fds=False)

    class Service(dbus.service.Object):
        @dbus.service.method(IFACE, in_signature="h", out_signature="s")
        def Read(self, fd):
            n = fd.take()
            try:
                return read_all(n)
            finally:
                os.close(n)

        @dbus.service.method(IFACE, in_signature="", out_signature="h")
        def Pipe(self):
            r = pipe_with(b"from-service")
            try:
                return dbus.types.UnixFd(r)  # dup'ed
            finally:
                os.close(r)

    Service(a, PATH)
    proxy = b.get_object(a.get_unique_name(), PATH)
    steps = []

    def read_done(s):
        print("read", s, flush=True)
        proxy.Pipe(dbus_interface=IFACE, reply_handler=pipe_done, error_handler=err)

    def pipe_done(fd):
        n = fd.take()
        print("got", read_all(n), flush=True)
        os.close(n)
        r = pipe_with(b"x")
        b.call_async(raw_name, PATH, IFACE, "Read", "h", (dbus.types.UnixFd(r),), unexpected, denied)
        os.close(r)

    def unexpected(*args):
        fail("call to a peer without fd support succeeded")

    def denied(e):
        print("denied", e.get_dbus_name(), flush=True)
        steps.append("done")
        loop.quit()

    def err(e):
        fail(str(e))

    r = pipe_with(b"hello-fd")
    proxy.Read(dbus.types.UnixFd(r), dbus_interface=IFACE, reply_handler=read_done, error_handler=err)
    os.close(r)
    GLib.timeout_add_seconds(15, lambda: fail("timeout"))
    loop.run()
    raw.close()
    if steps != ["done"]:
        fail("did not finish")


# --- GLib / GDBus --------------------------------------------------------------------------

XML = """<node><interface name='%s'>
<method name='Read'><arg type='h' direction='in'/><arg type='s' direction='out'/></method>
<method name='Pipe'><arg type='h' direction='out'/></method>
</interface></node>""" % IFACE


def run_gio():
    from gi.repository import Gio
    flags = Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION
    a = Gio.DBusConnection.new_for_address_sync(address, flags, None, None)
    b = Gio.DBusConnection.new_for_address_sync(address, flags, None, None)
    if not (a.get_capabilities() & Gio.DBusCapabilityFlags.UNIX_FD_PASSING):
        fail("GDBus did not negotiate fd passing")
    raw, raw_name = raw_client(negotiate_fds=False)
    info = Gio.DBusNodeInfo.new_for_xml(XML).interfaces[0]
    loop = GLib.MainLoop()

    def on_call(conn, sender, path, iface, method, params, invocation):
        if method == "Read":
            fds = invocation.get_message().get_unix_fd_list()
            fd = fds.get(params.unpack()[0])  # a dup we own
            text = read_all(fd)
            os.close(fd)
            invocation.return_value(GLib.Variant("(s)", (text,)))
        else:
            r = pipe_with(b"from-service")
            out = Gio.UnixFDList.new()
            out.append(r)  # dup'ed
            os.close(r)
            invocation.return_value_with_unix_fd_list(GLib.Variant("(h)", (0,)), out)

    a.register_object(PATH, info, on_call, None, None)
    result = {}

    def client():
        try:
            r = pipe_with(b"hello-fd")
            fds = Gio.UnixFDList.new()
            fds.append(r)
            os.close(r)
            ret, _ = b.call_with_unix_fd_list_sync(a.get_unique_name(), PATH, IFACE, "Read",
                                                   GLib.Variant("(h)", (0,)), GLib.VariantType("(s)"),
                                                   Gio.DBusCallFlags.NONE, 10000, fds, None)
            result["read"] = ret.unpack()[0]
            ret, out = b.call_with_unix_fd_list_sync(a.get_unique_name(), PATH, IFACE, "Pipe", None,
                                                     GLib.VariantType("(h)"), Gio.DBusCallFlags.NONE,
                                                     10000, None, None)
            fd = out.get(ret.unpack()[0])
            result["got"] = read_all(fd)
            os.close(fd)
            r = pipe_with(b"x")
            fds = Gio.UnixFDList.new()
            fds.append(r)
            os.close(r)
            try:
                b.call_with_unix_fd_list_sync(raw_name, PATH, IFACE, "Read", GLib.Variant("(h)", (0,)),
                                              None, Gio.DBusCallFlags.NONE, 10000, fds, None)
                result["denied"] = "none"
            except GLib.Error as e:
                result["denied"] = Gio.DBusError.get_remote_error(e)
        except Exception as e:  # reported by the main thread
            result["error"] = repr(e)
        finally:
            GLib.idle_add(loop.quit)

    threading.Thread(target=client, daemon=True).start()
    GLib.timeout_add_seconds(15, lambda: fail("timeout"))
    loop.run()
    raw.close()
    if "error" in result:
        fail(result["error"])
    for k in ("read", "got", "denied"):
        print(k, result.get(k), flush=True)


# --- leak run ------------------------------------------------------------------------------

def run_leak(total):
    import dbus
    import dbus.service
    from dbus.mainloop.glib import DBusGMainLoop
    DBusGMainLoop(set_as_default=True)
    loop = GLib.MainLoop()
    a = dbus.bus.BusConnection(address)
    s = dbus.bus.BusConnection(address)
    raw, raw_name = raw_client(negotiate_fds=False)
    names = [a.get_unique_name(), s.get_unique_name(), raw_name]
    taken = [0]

    class Sink(dbus.service.Object):
        @dbus.service.method(IFACE, in_signature="h", out_signature="")
        def Take(self, fd):
            os.close(fd.take())
            taken[0] += 1

    Sink(a, PATH)
    counts = {"ok": 0, "org.freedesktop.DBus.Error.NotSupported": 0,
              "org.freedesktop.DBus.Error.ServiceUnknown": 0}
    state = {"sent": 0, "done": 0}
    r, w = os.pipe()
    os.close(w)

    def send_next():
        i = state["sent"]
        if i >= total:
            return
        state["sent"] += 1
        kind = i % 5
        dest = a.get_unique_name() if kind < 3 else (raw_name if kind == 3 else "com.example.Nobody")
        s.call_async(dest, PATH, IFACE, "Take", "h", (dbus.types.UnixFd(r),), ok, error)

    def finished():
        state["done"] += 1
        if state["done"] == total:
            loop.quit()
        else:
            send_next()

    def ok(*args):
        counts["ok"] += 1
        finished()

    def error(e):
        counts[e.get_dbus_name()] = counts.get(e.get_dbus_name(), 0) + 1
        finished()

    for _ in range(min(64, total)):
        send_next()
    GLib.timeout_add_seconds(120, lambda: fail("timeout"))
    loop.run()
    os.close(r)

    # Raw clients that leave fds behind in the bus: a message whose fds came with its first bytes
    # but whose rest never comes (connection dies), and a message claiming more fds than passed.
    for claim, passed, cut in ((2, 2, 12), (3, 1, None)):
        c, name = raw_client(negotiate_fds=True)
        names.append(name)
        msg = marshal_call(2, a.get_unique_name(), PATH, IFACE, "Take", "h", struct.pack("<I", 0), claim)
        p, q = os.pipe()
        socket.send_fds(c, [msg if cut is None else msg[:cut]], [p] * passed)
        os.close(p)
        os.close(q)
        c.close()
    raw.close()
    print("names", " ".join(names), flush=True)
    print("counts", " ".join("%s=%d" % (k.rsplit(".", 1)[-1], v) for k, v in sorted(counts.items())), flush=True)
    print("taken", taken[0], flush=True)


if mode == "dbus-python":
    run_dbus_python()
elif mode == "gio":
    run_gio()
elif mode == "leak":
    run_leak(int(sys.argv[3]))
else:
    fail("unknown mode " + mode)
