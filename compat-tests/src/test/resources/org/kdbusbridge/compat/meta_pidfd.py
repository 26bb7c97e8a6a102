"""AttachMetadata's pidfd item with real processes (AttachPidfdCompatTest). A raw receiver R
negotiates unix fds and asks for ["format=text", "pidfd", "creds", "seq"]; a plain receiver P
negotiates fds too but asks for nothing. A forked sender S calls R twice (no fds; one pipe fd as
an 'h' argument) and broadcasts a signal both receive, then waits until told to exit. For each
message R checks the fds that came with it against field 107 (text form: pidfd=INDEX) and
UNIX_FDS, and that the pidfd refers to S (/proc/self/fdinfo "Pid:"); after S exited, that the
pidfds say the process is gone (Pid: -1, pidfd_send_signal ESRCH), also (as root) once a new
process holds the sender's pid. Prints one line per finding;
the test reads them. argv: ADDRESS."""
import os
import signal
import struct
import sys

from rawconn import Conn, fdinfo_pid, match, meta, strings
from rawwire import pad

ADDR = sys.argv[1]
IFACE = "org.kdbusbridge.PidfdTest"

r = Conn(ADDR)
p = Conn(ADDR)
att = r.until_reply(r.call("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.kdbusbridge.Extensions1",
                           "AttachMetadata", "as", strings(["format=text", "pidfd", "creds", "seq"])))
print("attach", att["fields"].get(4, "ok"), "fds=%d" % len(att["fds"]), "field=%s" % (meta(att) is not None),
      flush=True)
for c in (r, p):
    match(c, "type='signal',interface='%s'" % IFACE)

go_r, go_w = os.pipe()
pid = os.fork()
if pid == 0:
    # The sender: its own connection; calls R (no reply expected), broadcasts, waits for "go".
    os.close(go_w)
    s = Conn(ADDR)
    s.call(r.name, "/t", IFACE, "Plain", flags=1)
    pr, pw = os.pipe()
    os.write(pw, b"through-the-pipe")
    os.close(pw)
    s.call(r.name, "/t", IFACE, "WithFd", "h", struct.pack("<I", 0), fds=[pr], flags=1)
    os.close(pr)
    s.serial += 1
    # A broadcast signal (rawwire's calls always have a destination).
    fields = bytearray()
    for code, t, v in ((1, "o", "/t"), (2, "s", IFACE), (3, "s", "Tick")):
        pad(fields, 8)
        fields.extend(bytes([code, 1]) + t.encode() + b"\0")
        pad(fields, 4)
        fields.extend(struct.pack("<I", len(v)) + v.encode() + b"\0")
    head = bytearray(b"l\x04\x00\x01" + struct.pack("<III", 0, s.serial, len(fields)))
    head.extend(fields)
    pad(head, 8)
    s.s.sendall(bytes(head))
    os.read(go_r, 1)
    os._exit(0)
os.close(go_r)
print("sender", pid, flush=True)

pidfds = []
for member in ("Plain", "WithFd", "Tick"):
    m = r.until_member(member)
    md = meta(m) or {}
    n = m["fields"].get(9, 0)
    idx = int(md.get("pidfd", "-1"))
    line = ["got", member, "unix_fds=%d" % n, "received=%d" % len(m["fds"]), "pidfd=%d" % idx,
            "pid=%s" % md.get("pid")]
    if 0 <= idx < len(m["fds"]):
        fd = m["fds"][idx]
        pidfds.append(fd)
        line.append("fdinfo=%s" % fdinfo_pid(fd))
    if member == "WithFd" and m["fds"]:
        first = m["fds"][0]
        line.append("pipe=%s" % os.read(first, 64).decode())
    print(" ".join(line), flush=True)
t = p.until_member("Tick")
print("plain Tick", "unix_fds=%d" % t["fields"].get(9, 0), "received=%d" % len(t["fds"]),
      "field=%s" % (107 in t["fields"]), flush=True)

os.write(go_w, b"x")
os.waitpid(pid, 0)
for fd in pidfds:
    try:
        signal.pidfd_send_signal(fd, 0)
        alive = "alive"
    except ProcessLookupError:
        alive = "gone"
    print("after-exit", "fdinfo=%s" % fdinfo_pid(fd), alive, flush=True)
# The pid reused: as root, steer the next pid to the sender's (ns_last_pid) and fork a process
# that holds it; the pidfds must still say the sender is gone, not name the newcomer.
reuse = "reuse not-root"
if os.getuid() == 0 and pidfds:
    reuse = "reuse not-achieved"
    for attempt in range(20):
        try:
            with open("/proc/sys/kernel/ns_last_pid", "w") as f:
                f.write(str(pid - 1))
        except OSError:
            reuse = "reuse unavailable"
            break
        hold_r, hold_w = os.pipe()
        c = os.fork()
        if c == 0:
            os.close(hold_w)
            os.read(hold_r, 1)
            os._exit(0)
        os.close(hold_r)
        if c == pid:
            os.kill(pid, 0)  # a live process has the sender's pid now
            states = []
            for fd in pidfds:
                try:
                    signal.pidfd_send_signal(fd, 0)
                    states.append("alive")
                except ProcessLookupError:
                    states.append("gone")
            reuse = "reuse pid=%d fdinfo=%s %s" % (pid, ",".join(str(fdinfo_pid(fd)) for fd in pidfds), ",".join(states))
        os.write(hold_w, b"x")
        os.close(hold_w)
        os.waitpid(c, 0)
        if c == pid:
            break
print(reuse, flush=True)
print("done", flush=True)
