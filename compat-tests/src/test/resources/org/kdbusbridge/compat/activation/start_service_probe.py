#!/usr/bin/python3
# StartServiceByName probe (issue 13, item 2), run by `kdbus-bridge diff` on both buses:
# the answer for the caller's own unique name, org.freedesktop.DBus, org.freedesktop.systemd1
# (Debian ships a file for it, Exec=/bin/false), an owned name without a file, an owned
# activatable name, an unowned activatable one whose service fails, and a transient service file dropped into
# $XDG_RUNTIME_DIR/dbus-1/services (which the bus must have created) before ReloadConfig.
# Expects $XDG_DATA_HOME/dbus-1/services to hold com.example.ProbeOwned.service and
# com.example.ProbeUnowned.service (Exec=/bin/false). Prints one line per probe; exit 0.
import os
import sys

import dbus

bus = dbus.SessionBus()
driver = dbus.Interface(bus.get_object("org.freedesktop.DBus", "/org/freedesktop/DBus"), "org.freedesktop.DBus")
bus.request_name("com.example.ProbeOwned", dbus.bus.NAME_FLAG_DO_NOT_QUEUE)
bus.request_name("com.example.ProbePlain", dbus.bus.NAME_FLAG_DO_NOT_QUEUE)


def probe(label, name):
    try:
        print(label, int(driver.StartServiceByName(name, dbus.UInt32(0))))
    except dbus.DBusException as e:
        print(label, e.get_dbus_name(), e.get_dbus_message().replace(bus.get_unique_name(), ":SELF"))


probe("own-unique-name", bus.get_unique_name())
probe("bus-driver", "org.freedesktop.DBus")
probe("systemd1", "org.freedesktop.systemd1")  # Debian ships a file for it (Exec=/bin/false)
probe("owned-not-activatable", "com.example.ProbePlain")
probe("owned-activatable", "com.example.ProbeOwned")
probe("unowned-activatable", "com.example.ProbeUnowned")
probe("transient-before", "com.example.ProbeTransient")

transient = os.path.join(os.environ["XDG_RUNTIME_DIR"], "dbus-1", "services")
if not os.path.isdir(transient):
    print("no transient service directory", transient)
    sys.exit(3)
path = os.path.join(transient, "com.example.ProbeTransient.service")
with open(path, "w") as f:
    f.write("[D-BUS Service]\nName=com.example.ProbeTransient\nExec=/bin/false\n")
try:
    driver.ReloadConfig()
    probe("transient-after-reload", "com.example.ProbeTransient")
finally:
    os.unlink(path)
