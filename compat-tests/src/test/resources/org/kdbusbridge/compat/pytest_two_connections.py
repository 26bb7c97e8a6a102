# Written for the kdbus-bridge compat tests. Usage: python3 this.py ADDRESS
# Connection A owns com.example.PyTest and exports /com/example/PyTest (Echo, Emit);
# connection B calls Echo, subscribes to the Pong signal (match rule) and asks A to emit it.
import sys
import dbus
import dbus.service
from dbus.mainloop.glib import DBusGMainLoop
from gi.repository import GLib

address = sys.argv[1]
IFACE = "com.example.PyTest"
loop = GLib.MainLoop()
DBusGMainLoop(set_as_default=True)
a = dbus.bus.BusConnection(address)
b = dbus.bus.BusConnection(address)
print("A", a.get_unique_name(), flush=True)
print("B", b.get_unique_name(), flush=True)


class Service(dbus.service.Object):
    @dbus.service.method(IFACE, in_signature="s", out_signature="s")
    def Echo(self, s):
        return "echo:" + s

    @dbus.service.method(IFACE, in_signature="s", out_signature="")
    def Emit(self, s):
        self.Pong(s)

    @dbus.service.signal(IFACE, signature="s")
    def Pong(self, s):
        pass


name = dbus.service.BusName("com.example.PyTest", a, do_not_queue=True)
svc = Service(name, "/com/example/PyTest")
print("owner", b.get_name_owner("com.example.PyTest"), flush=True)
result = {"code": 1}


def fail(msg):
    print("FAIL", msg, flush=True)
    loop.quit()


def on_pong(s, sender=None, path=None):
    print("signal Pong", s, "from", sender, "path", path, flush=True)
    result["code"] = 0
    loop.quit()


b.add_signal_receiver(on_pong, signal_name="Pong", dbus_interface=IFACE, bus_name="com.example.PyTest",
                      path="/com/example/PyTest", sender_keyword="sender", path_keyword="path")
proxy = b.get_object("com.example.PyTest", "/com/example/PyTest", introspect=False)


def on_echo(reply):
    print("reply", reply, flush=True)
    proxy.Emit("ping-1", dbus_interface=IFACE, reply_handler=lambda: print("emit returned", flush=True),
               error_handler=lambda e: fail("Emit: %s" % e))


def on_error(e):
    print("error", e.get_dbus_name(), flush=True)


# An error case first: an unknown method on the exported object.
proxy.Nope(dbus_interface=IFACE, reply_handler=lambda *x: fail("Nope returned"), error_handler=on_error)
proxy.Echo("hi", dbus_interface=IFACE, reply_handler=on_echo, error_handler=lambda e: fail("Echo: %s" % e))
GLib.timeout_add_seconds(15, lambda: fail("timeout") or False)
loop.run()
sys.exit(result["code"])
