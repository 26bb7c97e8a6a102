package org.kdbusbridge.core.bus;

/** What became of a message a client sent; anything but OK becomes an error reply. */
public enum Delivery {
    OK,
    /** No owner and auto-start allowed (no activation yet): ServiceUnknown. */
    SERVICE_UNKNOWN,
    /** No owner and NO_AUTO_START set: NameHasNoOwner. */
    NAME_HAS_NO_OWNER,
    /** The recipient's receive pool is full: LimitsExceeded. */
    RECIPIENT_FULL,
    /** The caller has too many calls awaiting replies: LimitsExceeded. */
    TOO_MANY_REPLIES
}
