package org.kdbusbridge.bridge.server;

import java.nio.ByteBuffer;

import org.kdbusbridge.bridge.protocol.MessageHeader;
import org.kdbusbridge.bridge.protocol.MetadataField;
import org.kdbusbridge.bridge.protocol.ProtocolException;
import org.kdbusbridge.bridge.protocol.WireFormat;
import org.kdbusbridge.core.message.Message;
import org.kdbusbridge.core.message.MessageFacts;

/**
 * One receiver's copy of a message with the AttachMetadata field (docs/extensions.md): the
 * items it asked for that the bus knew at admission; an item the message has no fact for is
 * left out (asked for after the message was admitted, or a bus message, which has no sender
 * process: it carries seq and timestamp only).
 *
 * In the text form (MessageFacts.FORMAT_TEXT in the set) the same entries go as one string. With
 * a pidfd (the caller sends it behind the message's own fds) the copy's UNIX_FDS counts it.
 *
 * Invariants: loop thread only; the message's shared payload is only read; the result is a
 * fresh heap array holding one valid message (same fixed header but the fields length, the
 * same fields plus ours, the same body).
 */
final class MetadataRenderer {
    private final MetadataField.Encoder field = new MetadataField.Encoder();

    /** A receiver uid that means "not known here": the /proc visibility rule is not applied. */
    static final long ANY_RECEIVER = -2;

    /**
     * {@code m} with the field for {@code items}; null if it would be too large (then sent as is).
     * Without the receiver: see {@link #render(Message, int, long)} with {@link #ANY_RECEIVER}.
     */
    byte[] render(Message m, int items) {
        return render(m, items, ANY_RECEIVER);
    }

    /**
     * {@code m} with the field for {@code items} as receiver uid {@code receiverUid} may see it;
     * null if it would be too large (then sent as is). Visibility: the /proc items (groups, comm,
     * exe, cmdline, cgroup) only go to a receiver that could read them itself, uid 0 or the
     * sender's own (send-time) uid, as kdbus masked its proc items; creds, seclabel, names, seq
     * and timestamp go to every receiver that asked.
     */
    byte[] render(Message m, int items, long receiverUid) {
        return render(m, items, receiverUid, false);
    }

    /**
     * As {@link #render(Message, int, long)}; {@code withPidfd}: the caller sends the message's
     * pidfd ({@code m.facts().pidfd()}) behind its own fds, so the copy says {@code pidfd} = the
     * index after them and its UNIX_FDS counts one more (added if the message had none).
     * {@link MessageFacts#FORMAT_TEXT} in {@code items} gives the text form.
     */
    byte[] render(Message m, int items, long receiverUid, boolean withPidfd) {
        ByteBuffer whole = m.payload().view();
        int unixFdsAt = -1;
        long addUnixFds = -1;
        if (withPidfd) {
            unixFdsAt = unixFdsValueOffset(whole, m.size());
            if (unixFdsAt == -2) {
                return null; // not parsable here (never for a message the bus admitted): sent as is
            }
            if (unixFdsAt < 0) {
                addUnixFds = 1;
            }
        }
        field.begin(MetadataField.orderOf(whole), (items & MessageFacts.FORMAT_TEXT) != 0, addUnixFds);
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
        if (withPidfd) {
            field.putFd("pidfd", m.unixFds()); // behind the message's own fds
        }
        if (p != null && !mayReadProc(receiverUid, p.uid())) {
            items &= ~SenderProcess.PROC_ITEMS; // what /proc would not tell this receiver
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
        return MetadataField.splice(whole, field, unixFdsAt, m.unixFds() + 1L);
    }

    private final MessageHeader header = new MessageHeader();

    /** The offset of the message's UNIX_FDS value, -1 without one, -2 if its header does not parse. */
    private int unixFdsValueOffset(ByteBuffer whole, int size) {
        try {
            header.wrap(whole, 0, size);
        } catch (ProtocolException e) {
            return -2;
        }
        return header.fieldValueOffset(WireFormat.UNIX_FDS);
    }

    /** Whether a receiver of uid {@code receiver} may see the /proc facts of a process of uid {@code sender}. */
    static boolean mayReadProc(long receiver, long sender) {
        return receiver == ANY_RECEIVER || receiver == 0 || (receiver >= 0 && receiver == sender);
    }

    private static boolean has(int items, int item) {
        return (items & item) != 0;
    }
}
