package org.kdbusbridge.core.bus;

/** What became of a message a client sent; anything but OK and DISCARDED gets the sender an answer. */
public enum Delivery {
    OK,
    /** No owner and auto-start allowed (no activation yet): ServiceUnknown. */
    SERVICE_UNKNOWN,
    /** No owner and NO_AUTO_START set: NameHasNoOwner. */
    NAME_HAS_NO_OWNER,
    /** The recipient's receive pool is full: LimitsExceeded. */
    RECIPIENT_FULL,
    /**
     * The sender's uid (or the bus) holds all the queued bytes or fds its quota allows: answered
     * as RECIPIENT_FULL is; the bus already logged it (once a minute per uid).
     */
    QUEUE_QUOTA,
    /** The caller has too many calls awaiting replies: LimitsExceeded. */
    TOO_MANY_REPLIES,
    /**
     * The caller already awaits a reply from this recipient to a call with the same serial:
     * AccessDenied ("Message has the same reply serial as a currently-outstanding existing
     * method call"), as dbus-daemon does.
     */
    DUPLICATE_SERIAL,
    /**
     * The name needs activating and max_pending_service_starts entries already wait:
     * LimitsExceeded ("The maximum number of pending activations has been reached, ...").
     */
    TOO_MANY_ACTIVATIONS,

    /**
     * The sender's send rules or the recipient's receive rules deny it: AccessDenied with
     * {@link Bus#denialText} as text (an activatable name is then not started).
     */
    ACCESS_DENIED,
    /** The message carries unix fds and the recipient did not negotiate them: NotSupported. */
    FDS_NOT_SUPPORTED,
    /** The recipient asked for sealed memfds only (our extension) and one is not sealed. */
    UNSEALED_MEMFD,
    /**
     * A method call without destination: not routed (match rules don't see it); the bus
     * answers it as the peer it was sent to, as dbus-daemon's connection layer does:
     * Peer.Ping and Peer.GetMachineId, anything else UnknownMethod, whatever NO_REPLY_EXPECTED
     * says.
     */
    UNADDRESSED_CALL,
    /** A custom endpoint's filter refused it (xdg-dbus-proxy's answers: the error name is the text). */
    ENDPOINT_ACCESS_DENIED,
    /** A custom endpoint's client may not see the name: as if it did not exist. */
    ENDPOINT_SERVICE_UNKNOWN,
    /** The same, for a unique name or a call with NO_AUTO_START. */
    ENDPOINT_NAME_HAS_NO_OWNER,
    /** A method return or error without destination: nobody receives it (dbus-daemon drops it too). */
    DISCARDED
}
