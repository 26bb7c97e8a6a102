package org.kdbusbridge.core.bus;

/**
 * Why the transport closed a connection, as the bus counts it (the metrics exposition). The
 * close site says which (the bridge's ClientSession.close takes one), never a log text.
 */
public enum DisconnectReason {
    /** The peer hung up or said BYEBYE (end of stream). */
    HANG_UP,
    /** It broke the wire protocol (bad frame, header, body or fd use). */
    PROTOCOL_VIOLATION,
    /** A limit closed it: pending fds, pending_fd_timeout, max_incomplete_connections, memory. */
    LIMITS,
    /** It did not authenticate (auth_timeout, SASL rejected, SASL output overflow). */
    AUTH,
    /** A socket error other than end of stream. */
    IO_ERROR,
    /** The bus closed it on purpose: shutdown, its endpoint removed. */
    BUS
}
