package org.kdbusbridge.bridge.driver;

import java.io.IOException;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.kdbusbridge.bridge.protocol.BodyReader;
import org.kdbusbridge.bridge.protocol.BodyWriter;
import org.kdbusbridge.bridge.protocol.ProtocolException;
import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.endpoint.EndpointFilter;
import org.kdbusbridge.core.name.NameSyntax;

/**
 * org.freedesktop.DBus.Containers1, as dbus-daemon's experimental {@code --enable-containers}
 * build has it (bus/containers.c, 1.13.x): AddServer, StopListening, StopInstance,
 * GetConnectionInstance, GetInstanceInfo, the InstanceRemoved signal and the SupportedArguments
 * property. A container instance is one of our endpoints: AddServer's are {@code c1, c2, …},
 * Endpoints1.AddEndpoint's {@code e1, …} are instances too (type {@link #ENDPOINTS_TYPE}), and
 * every instance's path is {@link #instancePath}. Texts and error names are the draft's.
 *
 * Who may call: anyone not inside an endpoint for AddServer and the two Stop methods (as the
 * draft's METHOD_FLAG_NO_CONTAINERS), and only the instance's uid may stop it; the two queries
 * are open to all. Loop thread only (driver calls and the host's gone notices).
 */
final class ContainersMethods {
    static final String IFACE = "org.freedesktop.DBus.Containers1";
    static final String PATH_PREFIX = "/org/freedesktop/DBus/Containers1/";
    /** GetConnectionCredentials' key for a peer inside an endpoint (the draft's). */
    static final String INSTANCE_KEY = IFACE + ".Instance";
    static final String INSTANCE_REMOVED = "InstanceRemoved";
    /** Our named arguments of AddServer: xdg-dbus-proxy options (as), a lifetime fd (h), a socket path (s). */
    static final String PROXY_OPTIONS = "org.kdbusbridge.ProxyOptions";
    static final String LIFETIME_FD = "org.kdbusbridge.LifetimeFd";
    static final String SOCKET_PATH = "org.kdbusbridge.SocketPath";
    /** The SupportedArguments property. */
    static final List<String> SUPPORTED_ARGUMENTS = List.of(PROXY_OPTIONS, LIFETIME_FD, SOCKET_PATH);
    /** The container type GetConnectionInstance shows for an endpoint made by Endpoints1.AddEndpoint. */
    static final String ENDPOINTS_TYPE = EndpointMethods.IFACE;

    /**
     * What AddServer was told, kept for the instance's life; {@code uid}: its creator's;
     * {@code metadata}: the a{sv} as it came, re-marshalled with its own types (see
     * {@link #keptMetadata}), so every value comes back with the type it was given.
     */
    private record Instance(String type, String name, byte[] metadata, Connection creator, long uid) { }

    private final DriverEmitter out;
    private final Driver.Host host;
    private final PeerQueries peers;
    /** AddServer's instances by endpoint id; Endpoints1's are not here (their facts are the filter's). */
    private final Map<String, Instance> instances = new HashMap<>();
    /** Ids are never reused during the bus's life, so a stale path never names a newer instance. */
    private long lastId;

    ContainersMethods(DriverEmitter out, Driver.Host host, PeerQueries peers) {
        this.out = out;
        this.host = host;
        this.peers = peers;
    }

    /** The object path of the instance that is endpoint {@code endpointId}. */
    static String instancePath(String endpointId) {
        return PATH_PREFIX + endpointId;
    }

    /**
     * AddServer(s type, s name, a{sv} metadata, a{sv} named_arguments) -> (o, ay, s). Named
     * arguments are our extensions: {@link #PROXY_OPTIONS} (a filter, else none),
     * {@link #LIFETIME_FD} and {@link #SOCKET_PATH} (the bus owner's uid and root only: binding
     * replaces a stale file there). Only the caller's uid may connect through the new socket.
     */
    void addServer(DriverCall call) throws ProtocolException {
        if (insideEndpoint(call)) {
            return;
        }
        Connection caller = call.caller();
        long uid = peers.uidOf(caller);
        if (uid < 0) {
            out.error(call, DBusErrors.FAILED, "Unable to determine user ID of caller");
            return;
        }
        String type = call.body().readString();
        String name = call.body().readString();
        int before = call.body().position();
        byte[] metadata = keptMetadata(call);
        if (metadata == null) {
            return;
        }
        // As dbus-daemon: what an instance keeps for its life is bounded (its encoded metadata,
        // type and name; max_container_metadata_bytes, checked with the other caps by the host).
        int metadataSize = call.body().position() - before + type.length() + name.length();
        Map<String, Object> named = call.body().readDictStringVariant();
        if (!NameSyntax.isValidInterface(type)) {
            out.error(call, DBusErrors.INVALID_ARGS,
                    "The container type identifier must have the syntax of an interface name");
            return;
        }
        List<String> options = List.of();
        String where = null;
        int lifetimeFd = -1;
        for (Map.Entry<String, Object> e : named.entrySet()) {
            Object v = e.getValue();
            switch (e.getKey()) {
                case PROXY_OPTIONS -> {
                    options = strings(v);
                    if (options == null) {
                        out.error(call, DBusErrors.INVALID_ARGS, "Named parameter " + PROXY_OPTIONS + " must be 'as'");
                        return;
                    }
                }
                case SOCKET_PATH -> {
                    if (!(v instanceof String p) || !p.startsWith("/")) {
                        out.error(call, DBusErrors.INVALID_ARGS, "Named parameter " + SOCKET_PATH
                                + " must be an absolute path");
                        return;
                    }
                    if (uid != host.busUid() && uid != 0) {
                        out.error(call, DBusErrors.ACCESS_DENIED, "rejected attempt to use " + SOCKET_PATH
                                + " by uid " + uid);
                        return;
                    }
                    where = p;
                }
                case LIFETIME_FD -> {
                    // 'h' decodes as its index into the message's fds.
                    if (!(v instanceof Integer index) || call.fds() == null || index < 0 || index >= call.fds().count()) {
                        out.error(call, DBusErrors.INVALID_ARGS, "Named parameter " + LIFETIME_FD
                                + " must be a unix fd passed with the call");
                        return;
                    }
                    lifetimeFd = call.fds().fd(index);
                }
                default -> {
                    out.error(call, DBusErrors.INVALID_ARGS, "Named parameter " + e.getKey() + " is not understood");
                    return;
                }
            }
        }
        EndpointFilter parsed = EndpointMethods.parseOrRefuse(out, call, "c" + (lastId + 1), options);
        if (parsed == null) {
            return;
        }
        EndpointFilter filter = parsed.withIdentity(name.isEmpty() ? null : name, null);
        String id = filter.endpointId();
        EndpointRequest.Bound bound;
        try {
            bound = host.addEndpoint(new EndpointRequest(where, filter, options, caller, uid, true, lifetimeFd, -1,
                    metadataSize));
        } catch (EndpointRequest.LimitExceeded e) { // max_container_metadata_bytes, max_containers, max_containers_per_user
            out.error(call, DBusErrors.LIMITS_EXCEEDED, e.getMessage());
            return;
        } catch (IllegalArgumentException e) {
            out.error(call, DBusErrors.INVALID_ARGS, e.getMessage());
            return;
        } catch (IOException e) {
            out.error(call, DBusErrors.FAILED, "Failed to listen for container connections: " + e.getMessage());
            return;
        }
        lastId++;
        instances.put(id, new Instance(type, name, metadata, caller, uid));
        BodyWriter w = new BodyWriter();
        w.writeObjectPath(instancePath(id));
        byte[] path = bound.socketPath().getBytes(java.nio.charset.StandardCharsets.UTF_8);
        w.writeByteArray(java.util.Arrays.copyOf(path, path.length + 1)); // NUL-terminated, as the draft says
        w.writeString(bound.address());
        out.reply(caller, call.serial(), "oays", w.toByteArray());
    }

    /** StopListening(o): no new connections; those there stay, and so does the instance. */
    void stopListening(DriverCall call) throws ProtocolException {
        String id = stoppable(call);
        if (id != null) {
            host.stopListening(id);
            out.replyEmpty(call.caller(), call.serial());
        }
    }

    /** StopInstance(o): no new connections and every connection through it closed. */
    void stopInstance(DriverCall call) throws ProtocolException {
        String id = stoppable(call);
        if (id != null) {
            host.stopEndpoint(id);
            out.replyEmpty(call.caller(), call.serial());
        }
    }

    /** The endpoint id the caller may stop, or null once the error is sent. */
    private String stoppable(DriverCall call) throws ProtocolException {
        if (insideEndpoint(call)) {
            return null;
        }
        String path = call.body().readObjectPath();
        LiveEndpoint live = live(path);
        if (live == null) {
            notContainer(call, path);
            return null;
        }
        long uid = peers.uidOf(call.caller());
        if (uid < 0) {
            out.error(call, DBusErrors.FAILED, "Unable to determine user ID of caller");
            return null;
        }
        long owner = ownerUid(live);
        if (uid != owner) {
            out.error(call, DBusErrors.ACCESS_DENIED, "User " + uid + " cannot stop a container server started by user "
                    + owner);
            return null;
        }
        return live.id();
    }

    /** GetConnectionInstance(s name) -> (o, a{sv} creator creds, s type, s name, a{sv} metadata). */
    void getConnectionInstance(DriverCall call) throws ProtocolException {
        String name = call.body().readString();
        Connection c = peers.peer(call, name, "container instance");
        if (c == null) {
            return;
        }
        if (c == PeerQueries.DRIVER_SELF) {
            out.error(call, EndpointMethods.NOT_CONTAINER, "The message bus is not in a container");
            return;
        }
        LiveEndpoint live = c.endpoint() == null ? null : host.liveEndpoint(c.endpoint().filter().endpointId());
        if (live == null) {
            out.error(call, EndpointMethods.NOT_CONTAINER, "Connection '" + name + "' is not in a container");
            return;
        }
        BodyWriter w = new BodyWriter();
        w.writeObjectPath(instancePath(live.id()));
        writeInfo(w, live);
        out.reply(call.caller(), call.serial(), "oa{sv}ssa{sv}", w.toByteArray());
    }

    /** GetInstanceInfo(o) -> (a{sv} creator creds, s type, s name, a{sv} metadata). */
    void getInstanceInfo(DriverCall call) throws ProtocolException {
        String path = call.body().readObjectPath();
        LiveEndpoint live = live(path);
        if (live == null) {
            notContainer(call, path);
            return;
        }
        BodyWriter w = new BodyWriter();
        writeInfo(w, live);
        out.reply(call.caller(), call.serial(), "a{sv}ssa{sv}", w.toByteArray());
    }

    /** The host's notice that endpoint {@code id} is gone: InstanceRemoved to everyone listening. */
    void instanceGone(String id) {
        instances.remove(id);
        if (host.containers()) { // no Containers1 signal from a bus that does not offer the interface
            out.signalWithPath(IFACE, INSTANCE_REMOVED, instancePath(id));
        }
    }

    private LiveEndpoint live(String path) {
        if (!path.startsWith(PATH_PREFIX)) {
            return null;
        }
        return host.liveEndpoint(path.substring(PATH_PREFIX.length()));
    }

    private long ownerUid(LiveEndpoint live) {
        Instance i = instances.get(live.id());
        if (i != null) {
            return i.uid();
        }
        return live.creator() == null ? host.busUid() : peers.uidOf(live.creator());
    }

    /** Creator's credentials, type, name and metadata; an Endpoints1 endpoint's from its filter. */
    private void writeInfo(BodyWriter w, LiveEndpoint live) {
        Instance i = instances.get(live.id());
        Connection creator = i != null ? i.creator() : live.creator();
        w.beginArray('{');
        if (creator != null) {
            peers.writeCredentials(w, creator);
        }
        w.endArray();
        if (i != null) {
            w.writeString(i.type());
            w.writeString(i.name());
            writeKept(w, i.metadata());
            return;
        }
        EndpointFilter f = live.filter();
        Map<String, Object> m = new LinkedHashMap<>();
        if (f.appId() != null) {
            m.put(EndpointMethods.APP_ID, f.appId());
        }
        if (f.instanceId() != null) {
            m.put(EndpointMethods.INSTANCE_ID, f.instanceId());
        }
        w.writeString(ENDPOINTS_TYPE);
        w.writeString(f.appId() == null ? "" : f.appId());
        VariantDicts.write(w, m);
    }

    private void notContainer(DriverCall call, String path) {
        out.error(call, EndpointMethods.NOT_CONTAINER, "There is no container with path '" + path + "'");
    }

    /** dbus-daemon's refusal of a NO_CONTAINERS method to a contained caller; true if it refused. */
    private boolean insideEndpoint(DriverCall call) {
        Connection c = call.caller();
        if (c.endpoint() == null) {
            return false;
        }
        out.error(call, DBusErrors.ACCESS_DENIED, "rejected attempt to call " + call.member() + " by connection "
                + c.uniqueName() + " in container");
        return true;
    }

    /**
     * Reads the metadata a{sv} of {@code call} into what the instance keeps: the dict written
     * out afresh from offset 0 (length, padding, entries) with every value's own type and in
     * our byte order, as dbus-daemon keeps it as a variant. Null once refused: a unix fd in it
     * (it would name an fd of this call only).
     */
    private byte[] keptMetadata(DriverCall call) throws ProtocolException {
        BodyWriter kept = new BodyWriter();
        try {
            call.body().copyValue(kept, false);
        } catch (ProtocolException e) {
            if (!BodyReader.NO_FDS.equals(e.getMessage())) {
                throw e;
            }
            out.error(call, DBusErrors.INVALID_ARGS, "Container metadata cannot hold a unix fd");
            return null;
        }
        return kept.toByteArray();
    }

    /**
     * Writes kept metadata back as the a{sv} it was: its entries start 8-aligned in both places,
     * so their bytes (padding included) are the same wherever the dict lands.
     */
    private static void writeKept(BodyWriter w, byte[] kept) {
        w.beginArray('{');
        w.writeRaw(kept, 8, kept.length - 8);
        w.endArray();
    }

    /** A decoded 'as' as a list of strings, or null. */
    private static List<String> strings(Object v) {
        if (!(v instanceof List<?> l)) {
            return null;
        }
        for (Object o : l) {
            if (!(o instanceof String)) {
                return null;
            }
        }
        @SuppressWarnings("unchecked")
        List<String> s = (List<String>) l;
        return List.copyOf(s);
    }
}
