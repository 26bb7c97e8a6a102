# AttachMetadataTest: one frame written by two processes on one socket. argv: socket path,
# Hello, the Split signal, the Whole signal (hex). The parent writes the first half of Split and
# forks; the child (sharing the socket) writes the rest and exits; then the parent writes Whole
# in two halves itself. Prints the parent's and the child's pid, then waits for stdin to close.
import os
import socket
import sys

path, hello, split, whole = sys.argv[1], bytes.fromhex(sys.argv[2]), bytes.fromhex(sys.argv[3]), bytes.fromhex(sys.argv[4])
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(path)
s.sendall(b"\0AUTH EXTERNAL " + str(os.getuid()).encode().hex().encode() + b"\r\n")
buf = b""
while b"\r\n" not in buf:
    buf += s.recv(4096)
if not buf.startswith(b"OK"):
    sys.exit("auth: %r" % buf)
s.sendall(b"BEGIN\r\n" + hello)
half = len(split) // 2
s.sendall(split[:half])
child = os.fork()
if child == 0:
    s.sendall(split[half:])
    os._exit(0)
os.waitpid(child, 0)
s.sendall(whole[: len(whole) // 2])
s.sendall(whole[len(whole) // 2:])
print(os.getpid(), child, flush=True)
sys.stdin.read()
