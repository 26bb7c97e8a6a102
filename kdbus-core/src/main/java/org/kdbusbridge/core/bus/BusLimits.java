package org.kdbusbridge.core.bus;

/**
 * Every resource limit, named as in dbus-daemon's {@code <limit name="...">}, with
 * dbus-daemon's built-in defaults. Mutable only while the bus is configured.
 */
public final class BusLimits {
    private static final long MIB = 1024L * 1024L;

    /**
     * The most fds one message may carry, whatever the config says: a message's fds travel in
     * one sendmsg, and Linux takes at most 253 (SCM_MAX_FD) in one SCM_RIGHTS message. So
     * {@code max_message_unix_fds} is clamped to it where it is set, and a receiver's copy that
     * is allowed one more fd (AttachMetadata's pidfd, {@code Connection.metadataFds}) always
     * fits one sendmsg: one rule, here.
     */
    public static final int MAX_MESSAGE_UNIX_FDS = 253;

    public long maxIncomingBytes = 127 * MIB;
    public int maxIncomingUnixFds = 16 * 4;
    public long maxOutgoingBytes = 127 * MIB;
    public int maxOutgoingUnixFds = 16 * 4;
    public long maxMessageSize = 32 * MIB;
    public int maxMessageUnixFds = 16;
    public long serviceStartTimeout = 25_000;
    public long authTimeout = 30_000;
    public long pendingFdTimeout = 150_000;
    public int maxCompletedConnections = 2048;
    public int maxIncompleteConnections = 64;
    public int maxConnectionsPerUser = 256;
    public int maxPendingServiceStarts = 512;
    public int maxNamesPerConnection = 512;
    public int maxMatchRulesPerConnection = 512;
    public int maxRepliesPerConnection = 128;
    /** Milliseconds; -1 = never, as in dbus-daemon. */
    public long replyTimeout = -1;
    /** Our own addition: a cap on queued messages per receiver (kdbus had one too). */
    public int maxQueuedMessages = 1 << 20;
    /** Container instances (Containers1.AddServer and Endpoints1.AddEndpoint alike) on the bus at once. */
    public int maxContainers = 512;
    /** AddServer instances per uid (the bus owner's uid and root are not held to it: docs/compatibility.md). */
    public int maxContainersPerUser = 16;
    /** An instance's kept metadata: its encoded a{sv} plus type and name (AddEndpoint: its metadata). */
    public int maxContainerMetadataBytes = 4096;
    /** Connections through one AddServer instance, counted from accept. */
    public int maxConnectionsPerContainer = 8;
    /**
     * Our own: connections through one Endpoints1 endpoint unless AddEndpoint set its own
     * (docs/extensions.md says why 64).
     */
    public int maxConnectionsPerEndpoint = 64;
    /** Our own: Endpoints1 endpoints one connection holds at once. */
    public int maxEndpointsPerConnection = 16;

    /** Takes every value from {@code other} (a reloaded configuration). */
    public void copyFrom(BusLimits other) {
        maxIncomingBytes = other.maxIncomingBytes;
        maxIncomingUnixFds = other.maxIncomingUnixFds;
        maxOutgoingBytes = other.maxOutgoingBytes;
        maxOutgoingUnixFds = other.maxOutgoingUnixFds;
        maxMessageSize = other.maxMessageSize;
        maxMessageUnixFds = other.maxMessageUnixFds;
        serviceStartTimeout = other.serviceStartTimeout;
        authTimeout = other.authTimeout;
        pendingFdTimeout = other.pendingFdTimeout;
        maxCompletedConnections = other.maxCompletedConnections;
        maxIncompleteConnections = other.maxIncompleteConnections;
        maxConnectionsPerUser = other.maxConnectionsPerUser;
        maxPendingServiceStarts = other.maxPendingServiceStarts;
        maxNamesPerConnection = other.maxNamesPerConnection;
        maxMatchRulesPerConnection = other.maxMatchRulesPerConnection;
        maxRepliesPerConnection = other.maxRepliesPerConnection;
        replyTimeout = other.replyTimeout;
        maxQueuedMessages = other.maxQueuedMessages;
        maxContainers = other.maxContainers;
        maxContainersPerUser = other.maxContainersPerUser;
        maxContainerMetadataBytes = other.maxContainerMetadataBytes;
        maxConnectionsPerContainer = other.maxConnectionsPerContainer;
        maxConnectionsPerEndpoint = other.maxConnectionsPerEndpoint;
        maxEndpointsPerConnection = other.maxEndpointsPerConnection;
    }

    /**
     * Sets a limit by its dbus-daemon name. Returns false for an unknown name.
     * The value is whatever the config said; ints saturate; max_message_unix_fds is clamped to
     * {@link #MAX_MESSAGE_UNIX_FDS} (the caller can tell by reading the field back).
     */
    public boolean set(String name, long value) {
        int iv = (int) Math.min(Integer.MAX_VALUE, Math.max(Integer.MIN_VALUE, value));
        switch (name) {
            case "max_incoming_bytes" -> maxIncomingBytes = value;
            case "max_incoming_unix_fds" -> maxIncomingUnixFds = iv;
            case "max_outgoing_bytes" -> maxOutgoingBytes = value;
            case "max_outgoing_unix_fds" -> maxOutgoingUnixFds = iv;
            case "max_message_size" -> maxMessageSize = value;
            case "max_message_unix_fds" -> maxMessageUnixFds = Math.min(iv, MAX_MESSAGE_UNIX_FDS);
            case "service_start_timeout" -> serviceStartTimeout = value;
            case "auth_timeout" -> authTimeout = value;
            case "pending_fd_timeout" -> pendingFdTimeout = value;
            case "max_completed_connections" -> maxCompletedConnections = iv;
            case "max_incomplete_connections" -> maxIncompleteConnections = iv;
            case "max_connections_per_user" -> maxConnectionsPerUser = iv;
            case "max_pending_service_starts" -> maxPendingServiceStarts = iv;
            case "max_names_per_connection" -> maxNamesPerConnection = iv;
            case "max_match_rules_per_connection" -> maxMatchRulesPerConnection = iv;
            case "max_replies_per_connection" -> maxRepliesPerConnection = iv;
            case "reply_timeout" -> replyTimeout = value;
            case "max_queued_messages" -> maxQueuedMessages = iv;
            case "max_containers" -> maxContainers = iv;
            case "max_containers_per_user" -> maxContainersPerUser = iv;
            case "max_container_metadata_bytes" -> maxContainerMetadataBytes = iv;
            case "max_connections_per_container" -> maxConnectionsPerContainer = iv;
            case "max_connections_per_endpoint" -> maxConnectionsPerEndpoint = iv;
            case "max_endpoints_per_connection" -> maxEndpointsPerConnection = iv;
            default -> {
                return false;
            }
        }
        return true;
    }
}
