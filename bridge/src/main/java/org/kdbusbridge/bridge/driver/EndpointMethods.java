package org.kdbusbridge.bridge.driver;

import java.io.IOException;
import java.util.List;
import java.util.Map;

import org.kdbusbridge.bridge.endpoint.ProxyArgumentException;
import org.kdbusbridge.bridge.endpoint.ProxyRuleParser;
import org.kdbusbridge.bridge.protocol.BodyWriter;
import org.kdbusbridge.bridge.protocol.ProtocolException;
import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.endpoint.EndpointFilter;

/**
 * org.kdbusbridge.Endpoints1 (docs/extensions.md): AddEndpoint, RemoveEndpoint, ListEndpoints,
 * and GetConnectionInstance (open to all).
 * Only the bus owner's uid and root reach these (the rows are PRIVILEGED); a connection that is
 * itself inside an endpoint is refused as well, so a sandbox can never make or undo one, even
 * through an endpoint without --filter.
 */
final class EndpointMethods {
    static final String IFACE = "org.kdbusbridge.Endpoints1";
    /** ListEndpoints' entry: id, address, app id, instance id, options. */
    static final String ENTRY = "(ssssas)";
    static final String APP_ID = "app-id";
    static final String INSTANCE_ID = "instance-id";
    /** Metadata key (u): the endpoint's own connection cap instead of max_connections_per_endpoint. */
    static final String MAX_CONNECTIONS = "max-connections";
    /** The Containers1 draft's error for a connection that is in no container. */
    static final String NOT_CONTAINER = "org.freedesktop.DBus.Error.NotContainer";

    private final DriverEmitter out;
    private final Driver.Host host;
    /** Ids are never reused during the bus's life: a stale id cannot name a newer endpoint. */
    private long lastId;

    EndpointMethods(DriverEmitter out, Driver.Host host) {
        this.out = out;
        this.host = host;
    }

    /** AddEndpoint(s socket_path, as proxy_options, a{sv} metadata) -> (s endpoint_id, s address). */
    void addEndpoint(DriverCall call) throws ProtocolException {
        if (insideEndpoint(call)) {
            return;
        }
        String where = call.body().readString();
        List<String> options = call.body().readStringArray();
        int before = call.body().position();
        Map<String, Object> metadata = call.body().readDictStringVariant();
        // The endpoint keeps its metadata for its life: held to max_container_metadata_bytes, as an instance's.
        int metadataBytes = call.body().position() - before;
        String appId = null;
        String instanceId = null;
        int maxConnections = -1;
        for (Map.Entry<String, Object> e : metadata.entrySet()) {
            if (MAX_CONNECTIONS.equals(e.getKey())) {
                // 'u' decodes as a Long; 0 would make an endpoint nobody can connect to.
                if (!(e.getValue() instanceof Long n) || n < 1 || n > Integer.MAX_VALUE) {
                    out.error(call, DBusErrors.INVALID_ARGS, "Metadata '" + MAX_CONNECTIONS
                            + "' must be a uint32 of at least 1");
                    return;
                }
                maxConnections = (int) (long) n;
                continue;
            }
            if (!(e.getValue() instanceof String v)) {
                out.error(call, DBusErrors.INVALID_ARGS, "Metadata '" + e.getKey() + "' must be a string");
                return;
            }
            switch (e.getKey()) {
                case APP_ID -> appId = v;
                case INSTANCE_ID -> instanceId = v;
                default -> {
                    out.error(call, DBusErrors.INVALID_ARGS, "Unknown metadata key '" + e.getKey()
                            + "' (known: " + APP_ID + ", " + INSTANCE_ID + ", " + MAX_CONNECTIONS + ")");
                    return;
                }
            }
        }
        EndpointFilter parsed = parseOrRefuse(out, call, "e" + (lastId + 1), options);
        if (parsed == null) {
            return;
        }
        EndpointFilter filter = parsed.withIdentity(appId, instanceId);
        String id = filter.endpointId();
        String address;
        try {
            address = host.addEndpoint(new EndpointRequest(where, filter, options, call.caller(), -1, false, -1,
                    maxConnections, metadataBytes)).address();
        } catch (EndpointRequest.LimitExceeded e) { // max_containers, max_endpoints_per_connection, metadata
            out.error(call, DBusErrors.LIMITS_EXCEEDED, e.getMessage());
            return;
        } catch (IllegalArgumentException e) {
            out.error(call, DBusErrors.INVALID_ARGS, e.getMessage());
            return;
        } catch (org.kdbusbridge.bridge.transport.UnixListener.AddressInUseException e) {
            // Another process holds the abstract name: libdbus's error for EADDRINUSE.
            out.error(call, DBusErrors.ADDRESS_IN_USE, "Failed to listen on " + where + ": " + e.getMessage());
            return;
        } catch (IOException e) {
            out.error(call, DBusErrors.FAILED, "Failed to listen on " + where + ": " + e.getMessage());
            return;
        }
        lastId++;
        BodyWriter w = new BodyWriter();
        w.writeString(id);
        w.writeString(address);
        out.reply(call.caller(), call.serial(), "ss", w.toByteArray());
    }

    /** RemoveEndpoint(s endpoint_id): its socket goes away and its connections are disconnected. */
    void removeEndpoint(DriverCall call) throws ProtocolException {
        if (insideEndpoint(call)) {
            return;
        }
        String id = call.body().readString();
        if (!host.removeEndpoint(id)) {
            out.error(call, DBusErrors.INVALID_ARGS, "No endpoint '" + id + "'");
            return;
        }
        out.replyEmpty(call.caller(), call.serial());
    }

    /** ListEndpoints() -> a(ssssas): missing metadata is an empty string. */
    void listEndpoints(DriverCall call) {
        if (insideEndpoint(call)) {
            return;
        }
        BodyWriter w = new BodyWriter();
        w.beginArray('(');
        for (EndpointInfo e : host.endpoints()) {
            w.beginStruct();
            w.writeString(e.id());
            w.writeString(e.address());
            w.writeString(e.appId() == null ? "" : e.appId());
            w.writeString(e.instanceId() == null ? "" : e.instanceId());
            w.beginArray('s');
            for (String o : e.options()) {
                w.writeString(o);
            }
            w.endArray();
            w.endStruct();
        }
        w.endArray();
        out.reply(call.caller(), call.serial(), "a" + ENTRY, w.toByteArray());
    }

    /**
     * GetConnectionInstance(s name) -> (s endpoint_id, s app_id, s instance_id): which endpoint a
     * peer came in through, so a service can tell which sandbox is calling (the Containers1
     * draft's method of that name, reduced to our metadata). Anyone may ask. A peer on the bus's
     * own socket gets NotContainer, as in the draft; a missing app or instance id is "".
     */
    void getConnectionInstance(DriverCall call, PeerQueries peers) throws ProtocolException {
        String name = call.body().readString();
        Connection c = peers.peer(call, name, "endpoint");
        if (c == null) {
            return;
        }
        if (c.endpoint() == null) {
            out.error(call, NOT_CONTAINER, "Connection '" + name + "' is not in an endpoint");
            return;
        }
        EndpointFilter f = c.endpoint().filter();
        BodyWriter w = new BodyWriter();
        w.writeString(f.endpointId());
        w.writeString(f.appId() == null ? "" : f.appId());
        w.writeString(f.instanceId() == null ? "" : f.instanceId());
        out.reply(call.caller(), call.serial(), "sss", w.toByteArray());
    }

    /** Refuses (AccessDenied) a caller that is inside an endpoint; true if it did. */
    private boolean insideEndpoint(DriverCall call) {
        Connection c = call.caller();
        if (c.endpoint() == null) {
            return false;
        }
        out.error(call, DBusErrors.ACCESS_DENIED, "Connection " + c.uniqueName()
                + " is inside an endpoint and may not call " + call.member());
        return true;
    }

    /** xdg-dbus-proxy's options as endpoint {@code id}'s filter; null after answering InvalidArgs with the parser's text. */
    static EndpointFilter parseOrRefuse(DriverEmitter out, DriverCall call, String id, List<String> options) {
        try {
            return ProxyRuleParser.parseOptions(id, options);
        } catch (ProxyArgumentException e) {
            out.error(call, DBusErrors.INVALID_ARGS, e.getMessage());
            return null;
        }
    }
}
