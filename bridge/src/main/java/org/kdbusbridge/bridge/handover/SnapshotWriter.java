package org.kdbusbridge.bridge.handover;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import java.util.function.BiConsumer;
import java.util.zip.CRC32C;

/**
 * Writes a {@link Snapshot} in format v1 (docs/handover.md section 3): the header, one
 * versioned section per {@link Section} (u16 id, u16 flags, u32 version, u64 length, then u32
 * count and count length-prefixed records), and a CRC32C trailer over everything before it.
 * All integers little-endian and fixed-width; a string is i32 length (-1: null) and UTF-8.
 *
 * What of a connection and its session crosses, what is recomputed and what is dropped is
 * listed field by field in {@link Classification}, next to this writer; a test fails when a
 * field has no entry there.
 */
public final class SnapshotWriter {
    static final byte[] MAGIC = "KDBHOVR\0".getBytes(StandardCharsets.US_ASCII);
    public static final int FORMAT = 1;

    private SnapshotWriter() { }

    private static void ints(Out o, int[] v) {
        o.u32(v.length);
        for (int i : v) {
            o.u32(i);
        }
    }

    /** The snapshot as bytes (what a sealed memfd will hold from step 2). */
    public static byte[] write(Snapshot s) {
        Out body = new Out();
        section(body, Section.BUS, List.of(s.bus()), (o, b) -> {
            o.str(b.guid());
            o.u64(b.busPid());
            o.u64(b.nextId());
            o.u64(b.nextUnique());
            o.u64(b.lastSequence());
            o.u32(b.peakBusNames());
            o.u32(b.peakBusNamesPerConnection());
            o.u32(b.peakMatchRules());
            o.u32(b.peakMatchRulesPerConnection());
        });
        section(body, Section.FDS, s.fds(), (o, e) -> {
            o.u32(e.fd());
            o.u8(e.kind().ordinal());
            o.str(e.link());
        });
        section(body, Section.LISTENERS, s.listeners(), (o, l) -> {
            o.u32(l.fdIndex());
            o.str(l.requested());
            o.str(l.bound());
            o.str(l.socketFile());
        });
        section(body, Section.DEPARTED, s.departed(), (o, d) -> {
            o.u64(d.id());
            o.str(d.uniqueName());
            o.u8(d.hasCredentials() ? 1 : 0);
            o.u64(d.uid());
            o.u64(d.gid());
            o.u64(d.pid());
        });
        section(body, Section.CONNECTIONS, s.connections(), (o, c) -> {
            o.u64(c.id());
            o.str(c.uniqueName());
            o.u64(c.uid());
            o.u64(c.gid());
            o.u64(c.pid());
            o.u64(c.authenticatedUid());
            o.u8((c.unixFds() ? 1 : 0) | (c.requireSealedMemfds() ? 2 : 0) | (c.monitor() ? 4 : 0) | (c.drops() ? 8 : 0));
            o.u32(c.attached());
            o.u64(c.dropCount());
            o.u64(c.dropFirstSeq());
            o.u64(c.dropLastSeq());
            o.u64(c.peakIncomingBytes());
            o.u32(c.peakIncomingFds());
            o.u32(c.peakMatchRules());
            o.u32(c.peakBusNames());
            o.u64(c.poolPushed());
            o.u64(c.poolDropped());
            o.u64(c.poolPeakBytes());
            o.u32(c.poolPeakFds());
            o.strings(c.ownedNames());
            o.u32(c.pidfdIndex());
            o.u64(c.peekAnswerAt()); // version 2
        });
        section(body, Section.MESSAGES, s.messages(), (o, m) -> {
            o.u8(m.type());
            o.u8(m.flags());
            o.u64(m.serial());
            o.u64(m.replySerial());
            o.str(m.destination());
            o.str(m.path());
            o.str(m.iface());
            o.str(m.member());
            o.str(m.errorName());
            o.u64(m.senderId());
            o.u64(m.seq());
            o.u8((m.requestedReply() ? 1 : 0) | (m.unsealedMemfd() ? 2 : 0) | (m.direct() ? 4 : 0)
                    | (m.facts() != null ? 8 : 0));
            o.u32(m.fdIndexes().length);
            for (int i : m.fdIndexes()) {
                o.u32(i);
            }
            Snapshot.Facts f = m.facts();
            if (f != null) {
                o.u64(f.monotonicNs());
                o.u64(f.realtimeNs());
                o.u8((f.names() != null ? 1 : 0) | (f.namesTruncated() ? 2 : 0) | (f.credsAtSendTime() ? 4 : 0));
                if (f.names() != null) {
                    o.strings(f.names());
                }
                o.u64(f.pid());
                o.u64(f.uid());
                o.u64(f.gid());
                o.u32(f.pidfdIndex());
                Snapshot.Process p = f.process();
                o.u8(p == null ? 0 : 1);
                if (p != null) {
                    o.u64(p.pid());
                    o.u64(p.uid());
                    o.u32(p.items());
                    o.u32(p.groups() == null ? -1 : p.groups().length);
                    if (p.groups() != null) {
                        for (long g : p.groups()) {
                            o.u64(g);
                        }
                    }
                    o.nullableBytes(p.comm());
                    o.nullableBytes(p.exe());
                    o.nullableBytes(p.cmdline());
                    o.nullableBytes(p.cgroup());
                    o.nullableBytes(p.seclabel());
                }
            }
            o.bytes(m.payload());
        });
        section(body, Section.POOLS, s.pools(), (o, p) -> {
            o.u64(p.connectionId());
            o.u32(p.messages().length);
            for (int i : p.messages()) {
                o.u32(i);
            }
        });
        section(body, Section.NAMES, s.names(), (o, n) -> {
            o.str(n.name());
            o.u32(n.owners().length);
            for (int i = 0; i < n.owners().length; i++) {
                o.u64(n.owners()[i]);
                o.u32(n.flags()[i]);
            }
        });
        BiConsumer<Out, Snapshot.Matches> rules = (o, m) -> {
            o.u64(m.connectionId());
            o.strings(m.rules());
        };
        section(body, Section.MATCHES, s.matches(), rules);
        section(body, Section.MONITORS, s.monitors(), rules);
        section(body, Section.REPLY_SLOTS, s.replySlots(), (o, x) -> {
            o.u64(x.calleeId());
            o.u64(x.callerId());
            o.u64(x.serial());
            o.u64(x.remainingMs());
        });
        section(body, Section.SESSIONS, s.sessions(), (o, x) -> {
            o.u64(x.connectionId());
            o.u32(x.socketFdIndex());
            o.u32(x.peerPid());
            o.u32(x.peerUid());
            o.u32(x.peerGid());
            o.u8((x.passCred() ? 1 : 0) | (x.passCredFailed() ? 2 : 0) | (x.askPidfdLater() ? 4 : 0));
            o.bytes(x.committed()); // version 2
            o.u32(x.headOffset());
            o.bytes(x.renderedHead());
            Snapshot.PartialIo io = x.io(); // version 3
            Snapshot.Sasl sa = io.sasl();
            o.u8(sa == null ? 0 : 1);
            if (sa != null) {
                o.str(sa.state());
                o.bytes(sa.line());
                o.u32(sa.totalBytes());
                o.u32(sa.failures());
                o.u32(sa.mechanism());
                o.u64(sa.authUid());
                o.u8((sa.anonymous() ? 1 : 0) | (sa.unixFd() ? 2 : 0));
                o.str(sa.serverGuid());
            }
            o.u64(io.authRemainingMs());
            o.bytes(io.input());
            o.u64(io.firstPid());
            o.u64(io.firstUid());
            o.u64(io.firstGid());
            o.u8((io.partialMixed() ? 1 : 0) | (io.frameContinues() ? 2 : 0));
            ints(o, io.pendingFdIndexes());
            o.u64(io.pendingRemainingMs());
            ints(o, io.committedFdIndexes());
            o.u32(io.committedPidfdIndex());
        });
        section(body, Section.PARTIAL_IO, s.sessions().stream().filter(x -> x.io().carriesAnything()).toList(),
                (o, x) -> o.u64(x.connectionId()));
        section(body, Section.REQUEST, s.request() == null ? List.<Snapshot.Request>of() : List.of(s.request()), (o, q) -> {
            o.u64(q.connectionId());
            o.u64(q.serial());
            o.str(q.reason());
            o.u64(q.checkMs());
        });

        Out head = new Out();
        head.raw(MAGIC);
        head.u32(FORMAT);
        int headerLenAt = head.len;
        head.u32(0);
        int totalLenAt = head.len;
        head.u64(0);
        head.u64(s.bus().writtenAtMonotonicNs());
        head.str(s.bus().writerVersion());
        head.u32(Section.values().length);
        int headerLen = head.len;
        long total = (long) headerLen + body.len + 4;
        head.putU32At(headerLenAt, headerLen);
        head.putU64At(totalLenAt, total);
        head.raw(Arrays.copyOf(body.buf, body.len));
        CRC32C crc = new CRC32C();
        crc.update(head.buf, 0, head.len);
        head.u32((int) crc.getValue());
        return Arrays.copyOf(head.buf, head.len);
    }

    /**
     * The snapshot in a new memfd "kdbus-handover", sealed against write, shrink, grow and
     * further sealing, so the reader can trust its size and contents; returns the fd (the
     * caller closes it). Close-on-exec: the hand-over's execve clears that for the keep set only.
     */
    public static int toSealedMemfd(Snapshot s) throws java.io.IOException {
        return org.kdbusbridge.bridge.memfd.SealedMemfd.create("kdbus-handover", write(s), true);
    }

    private static <T> void section(Out out, Section s, List<T> records, BiConsumer<Out, T> field) {
        out.u16(s.id);
        out.u16(s.flags(records.size()));
        out.u32(s.version);
        int lengthAt = out.len;
        out.u64(0);
        int start = out.len;
        out.u32(records.size());
        for (T r : records) {
            int recAt = out.len;
            out.u32(0);
            field.accept(out, r);
            out.putU32At(recAt, out.len - recAt - 4);
        }
        out.putU64At(lengthAt, out.len - start);
    }

    /** A growing little-endian buffer. */
    static final class Out {
        byte[] buf = new byte[4096];
        int len;
        private final ByteBuffer view8 = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);

        private void room(int n) {
            if (len + n > buf.length) {
                buf = Arrays.copyOf(buf, Math.max(buf.length * 2, len + n));
            }
        }

        void raw(byte[] b) {
            room(b.length);
            System.arraycopy(b, 0, buf, len, b.length);
            len += b.length;
        }

        void u8(int v) {
            room(1);
            buf[len++] = (byte) v;
        }

        void u16(int v) {
            u8(v);
            u8(v >>> 8);
        }

        void u32(int v) {
            room(4);
            putU32At(len, v);
            len += 4;
        }

        void u32(long v) {
            u32((int) v);
        }

        void u64(long v) {
            room(8);
            putU64At(len, v);
            len += 8;
        }

        void putU32At(int at, int v) {
            view8.putInt(0, v);
            System.arraycopy(view8.array(), 0, buf, at, 4);
        }

        void putU64At(int at, long v) {
            view8.putLong(0, v);
            System.arraycopy(view8.array(), 0, buf, at, 8);
        }

        void str(String s) {
            if (s == null) {
                u32(-1);
                return;
            }
            byte[] b = s.getBytes(StandardCharsets.UTF_8);
            u32(b.length);
            raw(b);
        }

        void nullableBytes(byte[] b) {
            if (b == null) {
                u32(-1);
            } else {
                bytes(b);
            }
        }

        void bytes(byte[] b) {
            u32(b.length);
            raw(b);
        }

        void strings(List<String> l) {
            u32(l.size());
            for (String s : l) {
                str(s);
            }
        }
    }
}
