package org.kdbusbridge.core.message;

import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.connection.Credentials;

/**
 * What a peek shows of one queued message (PeekQueued, PeekActivationQueue): its type, its
 * sender's unique name (null: the bus itself), interface, member (the error name for an
 * error), path (each null if absent), the bus's sequence number and the sender's credentials.
 * A copy of strings and numbers: it holds neither the message nor its payload.
 */
public record QueuedMessage(int type, String sender, String iface, String member, String path, long seq,
                            Credentials creds) {
    /**
     * The one place a peek takes a message's sender facts from: the send-time credentials the
     * message carries (SCM_CREDENTIALS, present while some receiver asked AttachMetadata for
     * creds), else the sending connection's connect-time ones (SO_PEERCRED).
     */
    public static QueuedMessage of(Message m) {
        Connection s = m.sender();
        MessageFacts f = m.facts();
        Credentials creds;
        if (f != null && f.credsAtSendTime()) {
            creds = new Credentials(f.uid(), f.gid(), f.pid());
        } else {
            creds = s == null || s.credentials() == null ? Credentials.UNKNOWN : s.credentials();
        }
        String member = m.type() == Message.ERROR ? m.errorName() : m.member();
        return new QueuedMessage(m.type(), s == null ? null : s.uniqueName(), m.iface(), member, m.path(), m.seq(),
                creds);
    }
}
