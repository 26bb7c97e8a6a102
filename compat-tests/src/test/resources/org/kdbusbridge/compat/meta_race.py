"""The race kdbus fixed (AttachMetadataCompatTest): this process connects (raw socket), says
Hello and sends signal First, waits for FIRST_SEEN to exist, then forks and exits; its child
inherits the connected socket, becomes uid 65534 when run as root, waits until its parent is
gone, sends signal Second and waits for SECOND_SEEN before it exits. The parent prints the
child's pid and the ids it will have ("child PID UID GID") before it exits. The connection's
connect-time credentials are the parent's; the message's send-time creds are the child's.
argv: ADDRESS FIRST_SEEN SECOND_SEEN."""
import os
import socket
import struct
import sys
import time

from rawwire import pad

ADDR, FIRST_SEEN, SECOND_SEEN = sys.argv[1], sys.argv[2], sys.argv[3]
path = ADDR.split("path=", 1)[1].split(",", 1)[0]


def message(kind, serial, fields, body=b""):
    buf = bytearray()
    for code, t, v in fields:
        pad(buf, 8)
        buf.extend(bytes([code, 1]) + t.encode() + b"\0")
        pad(buf, 4)
        buf.extend(struct.pack("<I", len(v)) + v.encode() + b"\0")
    head = bytearray(b"l" + bytes([kind, 0, 1]) + struct.pack("<III", len(body), serial, len(buf)))
    head.extend(buf)
    pad(head, 8)
    return bytes(head) + body


def signal(serial, member):
    return message(4, serial, [(1, "o", "/org/kdbusbridge/MetaCompat"), (2, "s", "org.kdbusbridge.MetaCompat"),
                               (3, "s", member)])


def wait_for(p):
    deadline = time.monotonic() + 30
    while not os.path.exists(p):
        if time.monotonic() > deadline:
            sys.exit("timed out waiting for " + p)
        time.sleep(0.02)


s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(path)
s.sendall(b"\0AUTH EXTERNAL " + str(os.getuid()).encode().hex().encode() + b"\r\n")
line = b""
while not line.endswith(b"\r\n"):
    line += s.recv(1)
assert line.startswith(b"OK "), line
s.sendall(b"BEGIN\r\n")
s.sendall(message(1, 1, [(1, "o", "/org/freedesktop/DBus"), (2, "s", "org.freedesktop.DBus"), (3, "s", "Hello"),
                         (6, "s", "org.freedesktop.DBus")]))
s.sendall(signal(2, "First"))
print("parent", os.getpid(), os.getuid(), flush=True)
wait_for(FIRST_SEEN)
parent = os.getpid()
pid = os.fork()
if pid != 0:
    # The child must not print: once this process has exited the test's reader may close the pipe.
    as_uid = 65534 if os.getuid() == 0 else os.getuid()
    as_gid = 65534 if os.getuid() == 0 else os.getgid()
    print("child", pid, as_uid, as_gid, flush=True)
    os._exit(0)
# The child: same socket, another process (and, as root, another uid).
if os.getuid() == 0:
    os.setgid(65534)
    os.setuid(65534)
deadline = time.monotonic() + 30
while os.getppid() == parent:  # until the parent has exited
    if time.monotonic() > deadline:
        sys.exit("parent did not exit")
    time.sleep(0.01)
s.sendall(signal(3, "Second"))
wait_for(SECOND_SEEN)
