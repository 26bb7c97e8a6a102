package org.kdbusbridge.core.endpoint;

/**
 * The caps on custom endpoints, decided in this one place (issue 18): how many instances the bus
 * holds at once, how many one uid (Containers1.AddServer) and one creating connection
 * (Endpoints1.AddEndpoint) hold, how much metadata one keeps, and how many connections one
 * takes. The caller owns the endpoints and counts; this decides and words the refusal the way
 * dbus-daemon's containers code does (LimitsExceeded for a call, a log line for a connection
 * that cannot be told). The limits are the bus's values, passed in.
 *
 * @param maxContainers         instances of either kind on the bus (max_containers)
 * @param maxContainersPerUser  AddServer instances of one uid (max_containers_per_user)
 * @param maxMetadataBytes      kept metadata of one instance (max_container_metadata_bytes)
 * @param maxEndpointsPerConnection AddEndpoint endpoints of one creating connection (ours)
 */
public record EndpointCaps(int maxContainers, int maxContainersPerUser, int maxMetadataBytes,
        int maxEndpointsPerConnection) {

    /** A refusal: the limit's configuration name, its value and the text to answer or log. */
    public record Refusal(String limitName, int limit, String message) { }

    /** What asks for a new instance. */
    public enum Kind {
        /** Containers1.AddServer: held to the per-uid cap. */
        CONTAINER,
        /** Endpoints1.AddEndpoint: held to the per-connection cap. */
        ENDPOINT
    }

    /**
     * The refusal of a new instance, or null if there is room. Checked in dbus-daemon's order:
     * metadata size, then the bus-wide count, then the per-uid count (a CONTAINER whose uid is
     * held to it), then, ours, the per-connection count (an ENDPOINT).
     *
     * @param who           the caller as dbus-daemon names it: {@code Connection ":1.5" (loginfo)}
     * @param metadataBytes what the instance would keep
     * @param instances     instances on the bus now (of both kinds)
     * @param ofUid         CONTAINER instances of {@code uid} now
     * @param ofCreator     ENDPOINT instances the caller made and still holds
     */
    public Refusal create(String who, Kind kind, long uid, boolean uidHeld, int metadataBytes, int instances,
            int ofUid, int ofCreator) {
        if (metadataBytes > maxMetadataBytes) {
            return new Refusal("max_container_metadata_bytes", maxMetadataBytes, who + " is not allowed to set "
                    + metadataBytes + " bytes of container metadata (max_container_metadata_bytes=" + maxMetadataBytes
                    + ")");
        }
        String what = kind == Kind.CONTAINER ? "container servers" : "endpoints";
        if (instances >= maxContainers) {
            return new Refusal("max_containers", maxContainers, who + " is not allowed to create more " + what
                    + " (max_containers=" + maxContainers + ")");
        }
        if (kind == Kind.CONTAINER && uidHeld && (maxContainersPerUser <= 0 || ofUid >= maxContainersPerUser)) {
            return new Refusal("max_containers_per_user", maxContainersPerUser, who + " is not allowed to create more "
                    + what + " for uid " + uid + " (max_containers_per_user=" + maxContainersPerUser + ")");
        }
        if (kind == Kind.ENDPOINT && ofCreator >= maxEndpointsPerConnection) {
            return new Refusal("max_endpoints_per_connection", maxEndpointsPerConnection, who
                    + " is not allowed to create more " + what + " (max_endpoints_per_connection="
                    + maxEndpointsPerConnection + ")");
        }
        return null;
    }

    /** Whether an instance with {@code connections} takes one more under {@code limit}. */
    public static boolean hasRoom(int connections, int limit) {
        return connections < limit;
    }

    /**
     * The refusal of one more connection through an instance that has {@code connections}
     * already (counted from accept, as dbus-daemon counts them), or null. The new connection
     * cannot be told why (it has not authenticated): the text is for the log.
     *
     * @param instance  how the log names the instance (its path, type and name)
     * @param limitName max_connections_per_container or max_connections_per_endpoint
     */
    public static Refusal connection(String instance, int connections, int limit, String limitName) {
        if (hasRoom(connections, limit)) {
            return null;
        }
        return new Refusal(limitName, limit, "Closing connection to " + instance
                + " because it would exceed resource limit (" + limitName + "=" + limit + ")");
    }
}
