"""AttachMetadata together with a sealed memfd payload (AttachMetadataMemfdCompatTest): a raw
receiver R asks for sealed memfds only (RequireSealedMemfds) and for ["format=text", "creds",
"seq", "pidfd"]; a raw sender S in this process passes it a sealed 1 MiB memfd as an 'h'
argument. R checks that the message carries field 107, that the memfd arrived first (index 0,
its content and seals intact) and the pidfd behind it (index 1, this process). Prints one line
per finding. argv: ADDRESS."""
import fcntl
import os
import struct
import sys

from rawconn import Conn, fdinfo_pid, meta, strings

ADDR = sys.argv[1]
EXT = "org.kdbusbridge.Extensions1"
SEALS = fcntl.F_SEAL_WRITE | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW

r = Conn(ADDR)
req = r.until_reply(r.call("org.freedesktop.DBus", "/org/freedesktop/DBus", EXT, "RequireSealedMemfds"))
att = r.until_reply(r.call("org.freedesktop.DBus", "/org/freedesktop/DBus", EXT, "AttachMetadata", "as",
                           strings(["format=text", "creds", "seq", "pidfd"])))
print("setup", req["fields"].get(4, "ok"), att["fields"].get(4, "ok"), flush=True)

payload = bytes((i * 7 + 3) & 0xff for i in range(1 << 20))
mfd = os.memfd_create("kbb-payload", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
os.write(mfd, payload)
fcntl.fcntl(mfd, fcntl.F_ADD_SEALS, SEALS | fcntl.F_SEAL_SEAL)

s = Conn(ADDR)
s.call(r.name, "/m", "com.example.Memfd", "Take", "h", struct.pack("<I", 0), fds=[mfd], flags=1)
os.close(mfd)
m = r.until_member("Take")
md = meta(m) or {}
print("got", "field=%s" % (meta(m) is not None), "unix_fds=%d" % m["fields"].get(9, 0),
      "received=%d" % len(m["fds"]), "pidfd=%s" % md.get("pidfd"), "pid=%s" % md.get("pid"),
      "seq=%s" % md.get("seq"), "me=%d" % os.getpid(), flush=True)
got = m["fds"][0]
data = os.pread(got, len(payload) + 1, 0)
seals = fcntl.fcntl(got, fcntl.F_GET_SEALS)
print("memfd", "intact=%s" % (data == payload), "size=%d" % len(data), "sealed=%s" % ((seals & SEALS) == SEALS),
      "body_index=%d" % struct.unpack_from("<I", m["body"], 0)[0], flush=True)
idx = int(md.get("pidfd", "-1"))
if 0 <= idx < len(m["fds"]):
    print("pidfd", "fdinfo=%s" % fdinfo_pid(m["fds"][idx]), flush=True)
print("done", flush=True)
