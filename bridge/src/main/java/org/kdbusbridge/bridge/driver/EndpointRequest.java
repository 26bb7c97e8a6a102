package org.kdbusbridge.bridge.driver;

import java.util.List;

import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.endpoint.EndpointCaps;
import org.kdbusbridge.core.endpoint.EndpointFilter;

/**
 * What the driver asks the host for when it makes an endpoint (Containers1.AddServer,
 * Endpoints1.AddEndpoint): {@code where} a socket path, or null for one the bus picks in its
 * containers directory; {@code onlyUid} the one uid that may connect through it (an AddServer
 * instance), or -1 for the bus's usual rules (an AddEndpoint endpoint);
 * {@code creatorStopsListening} true: the creator's disconnect only stops the listener (the
 * Containers1 draft), false: it removes the endpoint with its connections (Endpoints1);
 * {@code lifetimeFd} an fd of the call, borrowed for the call's duration (the host dups it),
 * whose hang-up removes the endpoint, or -1. An endpoint with a lifetime fd outlives its
 * creator's connection. {@code maxConnections}: the endpoint's own connection cap, or -1 for
 * the bus's limit for its kind; {@code metadataBytes}: what the instance keeps (held to
 * max_container_metadata_bytes).
 */
public record EndpointRequest(String where, EndpointFilter filter, List<String> options, Connection creator,
        long onlyUid, boolean creatorStopsListening, int lifetimeFd, int maxConnections, int metadataBytes) {
    public EndpointRequest {
        options = List.copyOf(options);
    }

    /** Without a cap of its own and without metadata. */
    public EndpointRequest(String where, EndpointFilter filter, List<String> options, Connection creator,
            long onlyUid, boolean creatorStopsListening, int lifetimeFd) {
        this(where, filter, options, creator, onlyUid, creatorStopsListening, lifetimeFd, -1, 0);
    }

    /** The kind of instance this asks for (which caps it is held to). */
    public EndpointCaps.Kind kind() {
        return onlyUid >= 0 ? EndpointCaps.Kind.CONTAINER : EndpointCaps.Kind.ENDPOINT;
    }

    /** The bound endpoint: its connect address and its socket file. */
    public record Bound(String address, String socketPath) { }

    /** The host refused the endpoint over a cap; the driver answers LimitsExceeded with the text. */
    public static final class LimitExceeded extends RuntimeException {
        private static final long serialVersionUID = 1L;
        private final transient EndpointCaps.Refusal refusal;

        public LimitExceeded(EndpointCaps.Refusal refusal) {
            super(refusal.message(), null, false, false);
            this.refusal = refusal;
        }

        public EndpointCaps.Refusal refusal() {
            return refusal;
        }
    }
}
