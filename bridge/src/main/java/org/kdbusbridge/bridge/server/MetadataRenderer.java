package org.kdbusbridge.bridge.server;

import java.nio.ByteBuffer;

import org.kdbusbridge.bridge.protocol.MetadataField;
import org.kdbusbridge.core.message.Message;
import org.kdbusbridge.core.message.MessageFacts;

/**
 * One receiver's copy of a message with the AttachMetadata field (docs/extensions.md): the
 * items it asked for that the bus knew at admission; an item the message has no fact for is
 * left out (asked for after the message was admitted, or a bus message, which has no sender
 * process: it carries seq and timestamp only).
 *
 * Invariants: loop thread only; the message's shared payload is only read; the result is a
 * fresh heap array holding one valid message (same fixed header but the fields length, the
 * same fields plus ours, the same body).
 */
final class MetadataRenderer {
    private final MetadataField.Encoder field = new MetadataField.Encoder();

    /** {@code m} with the field for {@code items}; null if it would be too large (then sent as is). */
    byte[] render(Message m, int items) {
        ByteBuffer whole = m.payload().view();
        field.begin(MetadataField.orderOf(whole));
        MessageFacts f = m.facts();
        SenderProcess p = f != null && f.process() instanceof SenderProcess sp ? sp : null;
        if (has(items, MessageFacts.CREDS) && f != null && f.uid() >= 0) {
            if (f.pid() >= 0) {
                field.putUint32("pid", f.pid());
            }
            field.putUint32("uid", f.uid());
            if (f.gid() >= 0) {
                field.putUint32("gid", f.gid());
            }
            field.putBoolean("creds-at-send", f.credsAtSendTime());
        }
        if (p != null) {
            if (has(items, MessageFacts.GROUPS) && p.groups() != null) {
                field.putUint32s("groups", p.groups());
            }
            if (has(items, MessageFacts.COMM) && p.comm() != null) {
                field.putText("comm", p.comm());
            }
            if (has(items, MessageFacts.EXE) && p.exe() != null) {
                field.putText("exe", p.exe());
            }
            if (has(items, MessageFacts.CMDLINE) && p.cmdline() != null) {
                field.putBytes("cmdline", p.cmdline());
            }
            if (has(items, MessageFacts.CGROUP) && p.cgroup() != null) {
                field.putText("cgroup", p.cgroup());
            }
            if (has(items, MessageFacts.SECLABEL) && p.seclabel() != null) {
                field.putBytes("seclabel", p.seclabel());
            }
        }
        if (has(items, MessageFacts.NAMES) && f != null && f.names() != null) {
            field.putStrings("names", f.names());
            if (f.namesTruncated()) {
                field.putBoolean("names-truncated", true); // it owns more than the bus's cap lists
            }
        }
        if (has(items, MessageFacts.SEQ)) {
            field.putUint64("seq", m.seq());
        }
        if (has(items, MessageFacts.TIMESTAMP) && f != null && f.monotonicNs() >= 0) {
            field.putPair("timestamp", f.monotonicNs(), f.realtimeNs());
        }
        field.end();
        return MetadataField.splice(whole, field);
    }

    private static boolean has(int items, int item) {
        return (items & item) != 0;
    }
}
