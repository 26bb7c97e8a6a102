"""dbus-python passes a pipe's read end to RECEIVER's TakeFd (AttachMetadataCompatTest): a
message with a unix fd reaching an opted-in receiver. argv: ADDRESS RECEIVER."""
import os
import sys

import dbus

bus = dbus.bus.BusConnection(sys.argv[1])
r, w = os.pipe()
os.write(w, b"through-the-pipe")
os.close(w)
print("reply", bus.call_blocking(sys.argv[2], "/org/kdbusbridge/MetaCompat", "org.kdbusbridge.MetaCompat", "TakeFd", "h",
                                 (dbus.types.UnixFd(r),)), flush=True)
