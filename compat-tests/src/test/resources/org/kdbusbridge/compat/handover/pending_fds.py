"""Hand-over step 5 over a real exec: a call with two unix fds sent in two batches, the first with
its first 10 bytes, the second with the rest. Between them this prints "half" and waits for a line
on stdin (the test hands the bus over meanwhile). The receiver then gets the call once, with both
fds, the very pipes sent (same inodes, and data written into them comes out of the other ends)."""
import array
import os
import socket
import struct
import sys

from rawconn import Conn
from rawwire import marshal_call

address = sys.argv[1]
recv = Conn(address)
send = Conn(address)
r1, w1 = os.pipe()
r2, w2 = os.pipe()
send.serial += 1
frame = bytes(marshal_call(send.serial, recv.name, "/t", "com.example.HandOver", "TwoFds", "hh",
                           struct.pack("<II", 0, 1), 2))
frame = frame[:2] + b"\x01" + frame[3:]  # NO_REPLY_EXPECTED
send.s.sendmsg([frame[:10]], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [w1]))])
print("half", len(frame), flush=True)
sys.stdin.readline()
send.s.sendmsg([frame[10:]], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [w2]))])
m = recv.until_member("TwoFds")
got = m["fds"]
same = [os.fstat(a).st_ino == os.fstat(b).st_ino for a, b in zip(got, [w1, w2])]
for i, fd in enumerate(got):
    os.write(fd, b"through-%d" % i)
through = [os.read(r, 64).decode() for r in (r1, r2)]
print("got serial=%d fds=%d same=%s through=%s" % (m["serial"], len(got), same, ",".join(through)), flush=True)
send.until_reply(send.call("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus.Peer", "Ping"))
extra = 0
recv.call("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus.Peer", "Ping")
while True:
    x = recv.read()
    if x["fields"].get(5) == recv.serial:
        break
    extra += 1
print("done extra=%d" % extra, flush=True)
