# Written for the kdbus-bridge compat tests: GetConnectionCredentials through dbus-python.
# Usage: python3 credentials.py ADDRESS
# Asks the bus for its own connection's credentials and for the bus's, and prints one fact
# per line (compared between dbus-daemon and ours by CredentialsTest). ProcessFD, where the
# bus sends one, is checked against /proc/self/fdinfo: it must be a pidfd of this process.
import os
import sys

import dbus

bus = dbus.bus.BusConnection(sys.argv[1])
driver = bus.get_object("org.freedesktop.DBus", "/org/freedesktop/DBus")
creds = driver.GetConnectionCredentials(bus.get_unique_name(), dbus_interface="org.freedesktop.DBus")
print("keys", ",".join(sorted(str(k) for k in creds if k != "ProcessFD")))
print("pid-is-me", int(creds["ProcessID"]) == os.getpid())
print("uid", int(creds["UnixUserID"]), "me", os.getuid())
print("groups", [int(g) for g in creds.get("UnixGroupIDs", [])])
label = creds.get("LinuxSecurityLabel")
print("label", "absent" if label is None else ("nul-terminated" if bytes(label).endswith(b"\0") else "unterminated"))
if "ProcessFD" in creds:
    fd = creds["ProcessFD"].take()
    pid = [l.split()[1] for l in open("/proc/self/fdinfo/%d" % fd) if l.startswith("Pid:")]
    print("processfd", "is-me" if pid == [str(os.getpid())] else "other %s" % pid)
    os.close(fd)
else:
    print("processfd absent")
own = driver.GetConnectionCredentials("org.freedesktop.DBus", dbus_interface="org.freedesktop.DBus")
print("bus-keys", ",".join(sorted(str(k) for k in own)))
print("bus-pid", int(own["ProcessID"]))
print("bus-uid", int(own["UnixUserID"]))
