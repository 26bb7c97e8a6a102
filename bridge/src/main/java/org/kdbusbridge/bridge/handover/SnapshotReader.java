package org.kdbusbridge.bridge.handover;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import java.util.zip.CRC32C;

/**
 * Reads format v1 ({@link SnapshotWriter}) into a {@link Snapshot}: checks the magic, the
 * format, the lengths and the CRC before it decodes anything; skips a section it does not know
 * unless MUST_UNDERSTAND is set; reads the fields it knows of each record and skips the rest
 * (a newer writer may append fields: docs/handover.md section 7). Any inconsistency is an
 * {@link IllegalArgumentException} naming it.
 */
public final class SnapshotReader {
    private SnapshotReader() { }

    /** Reads a snapshot from a memfd {@link SnapshotWriter#toSealedMemfd} made; refuses one that is not sealed. */
    public static Snapshot readSealedMemfd(int fd) throws java.io.IOException {
        if (!org.kdbusbridge.bridge.memfd.SealedMemfd.isSealed(fd)) {
            throw new IllegalArgumentException("fd " + fd + " is not a sealed memfd");
        }
        java.nio.MappedByteBuffer m = org.kdbusbridge.bridge.memfd.SealedMemfd.mapReadOnly(fd);
        byte[] bytes = new byte[m.remaining()];
        m.get(bytes);
        return read(bytes);
    }

    public static Snapshot read(byte[] bytes) {
        if (bytes.length < SnapshotWriter.MAGIC.length + 4 + 4 + 8 + 8 + 4 + 4 + 4
                || !Arrays.equals(Arrays.copyOf(bytes, SnapshotWriter.MAGIC.length), SnapshotWriter.MAGIC)) {
            throw new IllegalArgumentException("not a kdbus-bridge hand-over snapshot");
        }
        ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        b.position(SnapshotWriter.MAGIC.length);
        int format = b.getInt();
        if (format != SnapshotWriter.FORMAT) {
            throw new IllegalArgumentException("snapshot format " + format + " is " + (format > SnapshotWriter.FORMAT
                    ? "newer than" : "not one") + " this program reads (format " + SnapshotWriter.FORMAT + ")");
        }
        int headerLen = b.getInt();
        long total = b.getLong();
        if (total != bytes.length) {
            throw new IllegalArgumentException("snapshot is " + bytes.length + " bytes, its header says " + total);
        }
        CRC32C crc = new CRC32C();
        crc.update(bytes, 0, bytes.length - 4);
        int stored = ByteBuffer.wrap(bytes, bytes.length - 4, 4).order(ByteOrder.LITTLE_ENDIAN).getInt();
        if (stored != (int) crc.getValue()) {
            throw new IllegalArgumentException("snapshot CRC32C mismatch");
        }
        long writtenAt = b.getLong();
        String writer = str(b);
        int sections = b.getInt();
        if (b.position() != headerLen) {
            throw new IllegalArgumentException("snapshot header is " + b.position() + " bytes, it says " + headerLen);
        }
        Map<Section, ByteBuffer> found = new EnumMap<>(Section.class);
        for (int i = 0; i < sections; i++) {
            int id = Short.toUnsignedInt(b.getShort());
            int flags = Short.toUnsignedInt(b.getShort());
            int version = b.getInt();
            long len = b.getLong();
            if (len < 0 || len > b.remaining() - 4) {
                throw new IllegalArgumentException("section " + id + " runs past the end");
            }
            ByteBuffer payload = b.slice(b.position(), (int) len).order(ByteOrder.LITTLE_ENDIAN);
            b.position(b.position() + (int) len);
            Section s = Section.byId(id);
            // A known section of a newer version only appended fields to its records (section 7):
            // it is read by the fields this reader knows, each record's rest skipped.
            if (s == null) {
                if ((flags & Section.MUST_UNDERSTAND) != 0) {
                    throw new IllegalArgumentException("section " + id + " version " + version
                            + " must be understood, and this reader does not know it");
                }
                continue;
            }
            if (found.put(s, payload) != null) {
                throw new IllegalArgumentException("section " + s + " twice");
            }
        }
        if (b.remaining() != 4) {
            throw new IllegalArgumentException((b.remaining() - 4) + " bytes after the last section");
        }
        for (Section s : Section.values()) {
            if (!found.containsKey(s) && s.optionalWhenEmpty) {
                found.put(s, ByteBuffer.wrap(new byte[4]).order(ByteOrder.LITTLE_ENDIAN)); // no records
            } else if (!found.containsKey(s)) {
                throw new IllegalArgumentException("section " + s + " is missing");
            }
        }
        List<Snapshot.Bus> bus = records(found.get(Section.BUS), r -> new Snapshot.Bus(str(r), writer, writtenAt,
                r.getLong(), r.getLong(), r.getLong(), r.getLong(), r.getInt(), r.getInt(), r.getInt(), r.getInt()));
        if (bus.size() != 1) {
            throw new IllegalArgumentException("BUS has " + bus.size() + " records");
        }
        FdTable.Kind[] kinds = FdTable.Kind.values();
        List<FdTable.Entry> fds = records(found.get(Section.FDS), r -> {
            int fd = r.getInt();
            int kind = Byte.toUnsignedInt(r.get());
            if (kind >= kinds.length) {
                throw new IllegalArgumentException("fd " + fd + " of unknown kind " + kind);
            }
            return new FdTable.Entry(fd, kinds[kind], str(r));
        });
        List<Snapshot.Listener> listeners = records(found.get(Section.LISTENERS),
                r -> new Snapshot.Listener(index(r.getInt(), fds), str(r), str(r), str(r)));
        List<Snapshot.Conn> conns = records(found.get(Section.CONNECTIONS), r -> {
            long id = r.getLong();
            String unique = str(r);
            long uid = r.getLong();
            long gid = r.getLong();
            long pid = r.getLong();
            long authUid = r.getLong();
            int f = Byte.toUnsignedInt(r.get());
            int attached = r.getInt();
            long dropCount = r.getLong();
            long dropFirst = r.getLong();
            long dropLast = r.getLong();
            long peakInBytes = r.getLong();
            int peakInFds = r.getInt();
            int peakRules = r.getInt();
            int peakNames = r.getInt();
            long pushed = r.getLong();
            long dropped = r.getLong();
            long peakBytes = r.getLong();
            int peakFds = r.getInt();
            List<String> owned = strings(r);
            int pidfd = r.getInt();
            long peekAnswerAt = r.hasRemaining() ? r.getLong() : -1; // version 1 ends before it
            return new Snapshot.Conn(id, unique, uid, gid, pid, authUid, (f & 1) != 0, (f & 2) != 0, (f & 4) != 0,
                    attached, (f & 8) != 0, dropCount, dropFirst, dropLast, peakInBytes, peakInFds, peakRules,
                    peakNames, pushed, dropped, peakBytes, peakFds, owned, pidfd < 0 ? -1 : index(pidfd, fds),
                    peekAnswerAt);
        });
        List<Snapshot.Name> names = records(found.get(Section.NAMES), r -> {
            String name = str(r);
            int n = count(r, 12);
            long[] owners = new long[n];
            int[] flags = new int[n];
            for (int i = 0; i < n; i++) {
                owners[i] = r.getLong();
                flags[i] = r.getInt();
            }
            return new Snapshot.Name(name, owners, flags);
        });
        Function<ByteBuffer, Snapshot.Matches> rules = r -> new Snapshot.Matches(r.getLong(), strings(r));
        List<Snapshot.Matches> matches = records(found.get(Section.MATCHES), rules);
        List<Snapshot.Matches> monitors = records(found.get(Section.MONITORS), rules);
        List<Snapshot.Session> sessions = records(found.get(Section.SESSIONS), r -> {
            long id = r.getLong();
            int fd = index(r.getInt(), fds);
            int pid = r.getInt();
            int uid = r.getInt();
            int gid = r.getInt();
            int f = Byte.toUnsignedInt(r.get());
            byte[] committed = r.hasRemaining() ? bytes(r) : new byte[0]; // version 1 ends here
            int headOffset = r.hasRemaining() ? r.getInt() : 0;
            if (headOffset < 0) {
                throw new IllegalArgumentException("session " + id + " head offset " + headOffset);
            }
            byte[] rendered = r.hasRemaining() ? bytes(r) : new byte[0];
            Snapshot.PartialIo io = r.hasRemaining() ? partialIo(r, id, fds) : Snapshot.PartialIo.NONE; // version 3
            return new Snapshot.Session(id, fd, pid, uid, gid, (f & 1) != 0, (f & 2) != 0, (f & 4) != 0, committed,
                    headOffset, rendered, io);
        });
        List<Snapshot.Departed> departed = records(found.get(Section.DEPARTED), r -> new Snapshot.Departed(r.getLong(),
                str(r), (Byte.toUnsignedInt(r.get()) & 1) != 0, r.getLong(), r.getLong(), r.getLong()));
        List<Snapshot.Msg> messages = records(found.get(Section.MESSAGES), r -> {
            int type = Byte.toUnsignedInt(r.get());
            int mflags = Byte.toUnsignedInt(r.get());
            long serial = r.getLong();
            long replySerial = r.getLong();
            String dest = str(r);
            String path = str(r);
            String iface = str(r);
            String member = str(r);
            String error = str(r);
            long sender = r.getLong();
            long seq = r.getLong();
            int f = Byte.toUnsignedInt(r.get());
            int n = count(r, 4);
            int[] fdIndexes = new int[n];
            for (int i = 0; i < n; i++) {
                fdIndexes[i] = index(r.getInt(), fds);
                if (fds.get(fdIndexes[i]).kind() != FdTable.Kind.MESSAGE) {
                    throw new IllegalArgumentException("message " + seq + " names fd index " + fdIndexes[i]
                            + ", which is not a message fd");
                }
            }
            Snapshot.Facts facts = null;
            if ((f & 8) != 0) {
                long mono = r.getLong();
                long real = r.getLong();
                int ff = Byte.toUnsignedInt(r.get());
                List<String> primary = (ff & 1) != 0 ? strings(r) : null;
                long fpid = r.getLong();
                long fuid = r.getLong();
                long fgid = r.getLong();
                int pidfd = r.getInt();
                if (pidfd != -1 && (index(pidfd, fds) < 0 || fds.get(pidfd).kind() != FdTable.Kind.SENDER_PIDFD)) {
                    throw new IllegalArgumentException("message " + seq + " names fd index " + pidfd
                            + " as its sender's pidfd");
                }
                Snapshot.Process proc = null;
                if (Byte.toUnsignedInt(r.get()) != 0) {
                    long ppid = r.getLong();
                    long puid = r.getLong();
                    int pitems = r.getInt();
                    int ng = r.getInt();
                    long[] groups = null;
                    if (ng != -1) {
                        if (ng < 0 || (long) ng * 8 > r.remaining()) {
                            throw new IllegalArgumentException("message " + seq + ": " + ng + " groups");
                        }
                        groups = new long[ng];
                        for (int g = 0; g < ng; g++) {
                            groups[g] = r.getLong();
                        }
                    }
                    proc = new Snapshot.Process(ppid, puid, pitems, groups, nullableBytes(r), nullableBytes(r),
                            nullableBytes(r), nullableBytes(r), nullableBytes(r));
                }
                facts = new Snapshot.Facts(mono, real, primary, (ff & 2) != 0, fpid, fuid, fgid, (ff & 4) != 0, proc,
                        pidfd);
            }
            byte[] payload = bytes(r);
            return new Snapshot.Msg(type, mflags, serial, replySerial, dest, path, iface, member, error, sender, seq,
                    (f & 1) != 0, fdIndexes, (f & 2) != 0, facts, payload, (f & 4) != 0);
        });
        List<Snapshot.Pool> pools = records(found.get(Section.POOLS), r -> {
            long id = r.getLong();
            int n = count(r, 4);
            int[] places = new int[n];
            for (int i = 0; i < n; i++) {
                places[i] = r.getInt();
                if (places[i] < 0 || places[i] >= messages.size()) {
                    throw new IllegalArgumentException("pool of " + id + " names message " + places[i] + " of "
                            + messages.size());
                }
            }
            return new Snapshot.Pool(id, places);
        });
        List<Snapshot.Slot> slots = records(found.get(Section.REPLY_SLOTS),
                r -> new Snapshot.Slot(r.getLong(), r.getLong(), r.getLong(), r.getLong()));
        List<Long> guarded = records(found.get(Section.PARTIAL_IO), r -> r.getLong());
        List<Long> partial = sessions.stream().filter(x -> x.io().carriesAnything()).map(Snapshot.Session::connectionId)
                .toList();
        if (!guarded.equals(partial)) {
            throw new IllegalArgumentException("PARTIAL_IO names sessions " + guarded + ", SESSIONS carries partial I/O for "
                    + partial);
        }
        List<Snapshot.Request> request = records(found.get(Section.REQUEST),
                r -> new Snapshot.Request(r.getLong(), r.getLong(), str(r), r.remaining() >= 8 ? r.getLong() : -1));
        if (request.size() > 1) {
            throw new IllegalArgumentException("REQUEST has " + request.size() + " records");
        }
        return new Snapshot(bus.get(0), fds, listeners, conns, names, matches, monitors, sessions, departed, messages,
                pools, slots, request.isEmpty() ? null : request.get(0));
    }

    /** SESSIONS version 3: the partial I/O of session {@code id} (fd indexes checked against FDS and their kinds). */
    private static Snapshot.PartialIo partialIo(ByteBuffer r, long id, List<FdTable.Entry> fds) {
        Snapshot.Sasl sasl = null;
        if (Byte.toUnsignedInt(r.get()) != 0) {
            String state = str(r);
            byte[] line = bytes(r);
            int total = r.getInt();
            int failures = r.getInt();
            int mechanism = r.getInt();
            long authUid = r.getLong();
            int sf = Byte.toUnsignedInt(r.get());
            sasl = new Snapshot.Sasl(state, line, total, failures, mechanism, authUid, (sf & 1) != 0, (sf & 2) != 0,
                    str(r));
        }
        long authRemaining = r.getLong();
        byte[] input = bytes(r);
        long firstPid = r.getLong();
        long firstUid = r.getLong();
        long firstGid = r.getLong();
        int cf = Byte.toUnsignedInt(r.get());
        int[] pending = fdIndexes(r, fds, FdTable.Kind.MESSAGE, id);
        long pendingRemaining = r.getLong();
        int[] committed = fdIndexes(r, fds, FdTable.Kind.MESSAGE, id);
        int pidfd = r.getInt();
        if (pidfd >= 0 && fds.get(index(pidfd, fds)).kind() != FdTable.Kind.SENDER_PIDFD) {
            throw new IllegalArgumentException("session " + id + " names fd index " + pidfd + " as a pidfd");
        }
        return new Snapshot.PartialIo(sasl, authRemaining, input, firstPid, firstUid, firstGid, (cf & 1) != 0,
                (cf & 2) != 0, pending, pendingRemaining, committed, pidfd < 0 ? -1 : pidfd);
    }

    private static int[] fdIndexes(ByteBuffer r, List<FdTable.Entry> fds, FdTable.Kind kind, long id) {
        int n = r.getInt();
        if (n < 0 || n > r.remaining() / 4) {
            throw new IllegalArgumentException("session " + id + " has " + n + " fd indexes");
        }
        int[] out = new int[n];
        for (int i = 0; i < n; i++) {
            out[i] = index(r.getInt(), fds);
            if (fds.get(out[i]).kind() != kind) {
                throw new IllegalArgumentException("session " + id + " names fd index " + out[i] + " of kind "
                        + fds.get(out[i]).kind() + ", not " + kind);
            }
        }
        return out;
    }

    private static int index(int i, List<FdTable.Entry> fds) {
        if (i < 0 || i >= fds.size()) {
            throw new IllegalArgumentException("fd index " + i + " out of range (" + fds.size() + " fds)");
        }
        return i;
    }

    /** Decodes each record from its own slice: a field this reader does not know is skipped with the rest. */
    private static <T> List<T> records(ByteBuffer section, Function<ByteBuffer, T> decode) {
        int n = count(section, 4);
        List<T> out = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            int len = section.getInt();
            if (len < 0 || len > section.remaining()) {
                throw new IllegalArgumentException("record " + i + " runs past its section");
            }
            ByteBuffer r = section.slice(section.position(), len).order(ByteOrder.LITTLE_ENDIAN);
            section.position(section.position() + len);
            try {
                out.add(decode.apply(r));
            } catch (java.nio.BufferUnderflowException e) {
                throw new IllegalArgumentException("record " + i + " is shorter than its fields", e);
            }
        }
        if (section.hasRemaining()) {
            throw new IllegalArgumentException(section.remaining() + " bytes after the last record");
        }
        return out;
    }

    /** A u32 count whose items take at least {@code minBytes} each: bounded by what is left. */
    private static int count(ByteBuffer b, int minBytes) {
        int n = b.getInt();
        if (n < 0 || (long) n * minBytes > b.remaining()) {
            throw new IllegalArgumentException("count " + n + " does not fit in " + b.remaining() + " bytes");
        }
        return n;
    }

    private static String str(ByteBuffer b) {
        int len = b.getInt();
        if (len == -1) {
            return null;
        }
        if (len < 0 || len > b.remaining()) {
            throw new IllegalArgumentException("string of " + len + " bytes runs past its record");
        }
        byte[] s = new byte[len];
        b.get(s);
        return new String(s, StandardCharsets.UTF_8);
    }

    private static byte[] nullableBytes(ByteBuffer b) {
        if (b.getInt(b.position()) == -1) {
            b.getInt();
            return null;
        }
        return bytes(b);
    }

    private static byte[] bytes(ByteBuffer b) {
        int len = b.getInt();
        if (len < 0 || len > b.remaining()) {
            throw new IllegalArgumentException("bytes of " + len + " run past their record");
        }
        byte[] out = new byte[len];
        b.get(out);
        return out;
    }

    private static List<String> strings(ByteBuffer b) {
        int n = count(b, 4);
        List<String> out = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            out.add(str(b));
        }
        return out;
    }
}
