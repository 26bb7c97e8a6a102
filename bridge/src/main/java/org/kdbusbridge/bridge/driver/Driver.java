package org.kdbusbridge.bridge.driver;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.kdbusbridge.bridge.protocol.BodyWriter;
import org.kdbusbridge.bridge.protocol.ProtocolException;
import org.kdbusbridge.core.bus.Bus;
import org.kdbusbridge.core.endpoint.SendVerdict;
import org.kdbusbridge.core.bus.DeadReply;
import org.kdbusbridge.core.bus.Disconnect;
import org.kdbusbridge.core.bus.Registration;
import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.match.MatchRule;
import org.kdbusbridge.core.match.MatchRuleException;
import org.kdbusbridge.core.message.Message;
import org.kdbusbridge.bridge.driver.DriverTables.Method;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * org.freedesktop.DBus: translates driver method calls into core operations and core
 * results into replies and signals. It holds no bus state of its own.
 *
 * Invariants: each call is one transaction: the state change, its signals and the reply are
 * queued before the call returns, in dbus-daemon's order (Hello: reply, NameOwnerChanged,
 * NameAcquired; RequestName/ReleaseName: NameLost, NameOwnerChanged, NameAcquired, reply).
 * Every failure becomes exactly one error reply with dbus-daemon's error name.
 */
public final class Driver {
    private static final Logger LOG = LoggerFactory.getLogger(Driver.class);

    /** Hooks into the launcher: config reload and activation environment. */
    public interface Host {
        /** Reloads the configuration; returns null on success, else the reason. */
        String reloadConfig();

        /** The uid that owns the bus (its own process uid). */
        long busUid();

        /** The bus process id. */
        long busPid();

        /** Closes {@code c}'s socket once what is queued for it has been written (BYEBYE). */
        void closeWhenFlushed(Connection c);

        /**
         * The AttachMetadata items (MessageFacts bits) every connection gets added to its own
         * set when it becomes a monitor ({@code --kdbus-monitor-metadata}); 0: none.
         */
        default int monitorMetadata() {
            return 0;
        }

        /** Whether org.freedesktop.DBus.Containers1 is offered (--kdbus-containers). */
        default boolean containers() {
            return false;
        }

        /** Where large replies are encoded off the heap, or null for heap arrays only. */
        default DriverEmitter.LargeReplies largeReplies() {
            return null;
        }

        /** The Features property. */
        default List<String> features() {
            return DriverTables.FEATURES;
        }

        /**
         * Endpoints1.AddEndpoint: binds {@code where} (a socket path or unix: address) as a
         * custom endpoint with {@code filter}, owned by {@code creator} (removed when it leaves);
         * returns the connect address. IllegalArgumentException: a bad address or a taken id.
         */
        default String addEndpoint(String where, org.kdbusbridge.core.endpoint.EndpointFilter filter,
                List<String> options, Connection creator) throws java.io.IOException {
            throw new java.io.IOException("This bus has no custom endpoints");
        }

        /** Endpoints1.RemoveEndpoint: false if there is no endpoint {@code id}. */
        default boolean removeEndpoint(String id) {
            return false;
        }

        /** Endpoints1.ListEndpoints: every endpoint, oldest first. */
        default List<EndpointInfo> endpoints() {
            return List.of();
        }

        /**
         * Containers1.AddServer: binds an endpoint as {@code request} says; returns its address
         * and socket file. IllegalArgumentException: a bad or taken path, a taken id, a lifetime
         * fd that cannot be watched.
         */
        default EndpointRequest.Bound addEndpoint(EndpointRequest request) throws java.io.IOException {
            throw new java.io.IOException("This bus has no container servers");
        }

        /** The endpoint {@code id} while it is a container instance (not stopped, not gone), else null. */
        default LiveEndpoint liveEndpoint(String id) {
            return null;
        }

        /** Containers1.StopListening: closes the listener, keeps the connections; false if no such instance. */
        default boolean stopListening(String id) {
            return false;
        }

        /** Containers1.StopInstance: closes the listener and the connections; false if no such instance. */
        default boolean stopEndpoint(String id) {
            return false;
        }

        /**
         * Registers who hears that an endpoint is gone (its listener closed and its last
         * connection closed, or removed at once when it had none): Containers1.InstanceRemoved.
         */
        default void onEndpointGone(java.util.function.Consumer<String> listener) {
        }

        /**
         * Extensions1.Reexec (live hand-over, docs/handover.md): starts it and owes the reply to
         * ({@code caller}, {@code serial}): an error from this bus if it fails before execve,
         * {@code ()} from the new program after it resumed. Null when started; else the reason it
         * cannot start, which the driver answers with HandOverFailed.
         */
        default String handOver(Connection caller, long serial) {
            return "this bus cannot hand over (it was not started by the kdbus-bridge launcher)";
        }
    }

    private ActivationHooks activation = ActivationHooks.NONE;

    public void setActivationHooks(ActivationHooks hooks) {
        this.activation = hooks;
    }

    private final Bus bus;
    private final DriverEmitter out;
    /** GetId's bus ID, derived only when first asked for (BusServer#busId). */
    private final java.util.function.Supplier<String> busId;
    private final String machineId;
    private final Host host;
    // The method groups; DriverTables' rows reach them.
    final ClaimMethods claims;
    final ActivationMethods activations;
    final NameQueries names;
    final PeerQueries peers;
    final StatsMethods stats;
    final DriverProperties properties;
    final QueueMethods queue;
    final MetadataMethods metadata;
    final EndpointMethods endpoints;
    final ContainersMethods containers;

    /** With a fixed bus ID (tests). */
    public Driver(Bus bus, String busId, String machineId, Host host) {
        this(bus, () -> busId, machineId, host);
    }

    public Driver(Bus bus, java.util.function.Supplier<String> busId, String machineId, Host host) {
        this.bus = bus;
        this.out = new DriverEmitter(bus, host.largeReplies());
        this.busId = busId;
        this.machineId = machineId;
        this.host = host;
        this.claims = new ClaimMethods(bus, out, () -> activation);
        this.activations = new ActivationMethods(bus, out, () -> activation);
        this.names = new NameQueries(bus, out);
        this.peers = new PeerQueries(bus, out, host);
        this.stats = new StatsMethods(bus, out, peers);
        this.properties = new DriverProperties(out, host);
        this.queue = new QueueMethods(bus, out, host);
        this.metadata = new MetadataMethods(bus, out);
        this.endpoints = new EndpointMethods(out, host);
        this.containers = new ContainersMethods(out, host, peers);
        host.onEndpointGone(containers::instanceGone);
        bus.setRefusalListener(new RefusalRenderer());
    }

    /**
     * A custom endpoint's filter on a driver call (the core's verdict, docs/endpoint-semantics.md):
     * false when it was answered here (an error, or NameHasOwner's false) or dropped.
     */
    private boolean endpointAllows(DriverCall call) {
        if (call.type() != Message.METHOD_CALL) {
            return false; // signals to the bus are dropped
        }
        boolean replyExpected = !call.noReplyExpected();
        SendVerdict v = bus.endpointDriverCall(call.caller(), call.iface(), call.member(), call.body().firstString(),
                replyExpected, (call.flags() & Message.FLAG_NO_AUTO_START) != 0);
        switch (v.outcome()) {
            case ALLOW, ALLOW_FILTER_NAMES -> {
                return true;
            }
            case REPLY_FALSE -> {
                if (!v.silent()) out.replyBoolean(call.caller(), call.serial(), false);
            }
            case REFUSE -> {
                if (!v.silent()) out.error(call.caller(), call.serial(), v.errorName(), v.errorText());
            }
        }
        return false;
    }

    /** Renders the bus's silent refusals as the errors dbus-daemon shows monitors. */
    private final class RefusalRenderer implements Bus.RefusalListener {
        @Override
        public void refused(Message m, Connection addressed, org.kdbusbridge.core.bus.Delivery reason, String text) {
            String name = reason == org.kdbusbridge.core.bus.Delivery.FDS_NOT_SUPPORTED
                    ? DBusErrors.NOT_SUPPORTED : DBusErrors.ACCESS_DENIED;
            out.refusalForMonitors(m, addressed, name, text);
        }
    }

    /**
     * {@code --kdbus-monitor-metadata=ITEMS}: the comma list as MessageFacts bits; throws
     * IllegalArgumentException for an unknown item, {@code pidfd} or {@code drops}.
     */
    public static int monitorMetadataItems(String commaList) {
        return MetadataMethods.monitorItems(commaList);
    }

    /** The driver object's introspection data (what --introspect prints). */
    public static String introspectionXml() {
        return DriverTables.introspect(DriverTables.PATH, false); // as offered without --kdbus-containers
    }

    public DriverEmitter emitter() {
        return out;
    }

    public Map<String, String> activationEnvironment() {
        return activations.environment();
    }

    /**
     * The transport wrote some of {@code c}'s pool out, or was told of its first drop: sends
     * the MessagesDropped notice if one is due (WatchDrops). Call only when
     * {@link Connection#hasUnreportedDrops} (nobody opted in: never called).
     */
    public void reportDrops(Connection c) {
        queue.reportDrops(c);
    }

    /** Handles a message whose destination is org.freedesktop.DBus. */
    public void handle(DriverCall call) {
        if (call.caller().endpoint() != null && call.caller().endpoint().filtering() && !endpointAllows(call)) {
            return; // refused by the endpoint's filter, as xdg-dbus-proxy would: the bus never saw it
        }
        if (call.type() == Message.SIGNAL && "org.freedesktop.systemd1.Activator".equals(call.iface())
                && "ActivationFailure".equals(call.member())) {
            // dbus-daemon sends the failure errors in a transaction of their own, before the
            // one that shows this signal to monitors.
            activations.systemdActivationFailure(call);
            call.capture().run();
            return;
        }
        if (ActivationMethods.isStartServiceByName(call)) {
            activations.startServiceByName(call); // shown to monitors there, after a systemd ActivationRequest
            return;
        }
        if (!(call.type() == Message.METHOD_CALL && "Hello".equals(call.member()) && call.caller().uniqueName() == null)) {
            call.capture().run(); // a Hello is shown to monitors once it has a sender (see hello())
        }
        if (call.type() != Message.METHOD_CALL) {
            return; // dbus-daemon ignores anything else sent to the driver
        }
        Connection c = call.caller();
        boolean canonical = DriverTables.PATH.equals(call.path());
        boolean foundInterface = false;
        Method method = null;
        for (int i = 0, n = DriverTables.INTERFACES.size(); i < n; i++) { // indexed: no iterator per call
            DriverTables.Iface ih = DriverTables.INTERFACES.get(i);
            if ((!canonical && !ih.anyPath()) || (!host.containers() && DriverTables.CONTAINERS.equals(ih.name()))) {
                continue;
            }
            if (call.iface() != null && !call.iface().equals(ih.name())) {
                continue;
            }
            foundInterface = true;
            method = ih.find(call.member());
            if (method != null) {
                if (!canonical && !method.anyPath()) {
                    error(call, DBusErrors.ACCESS_DENIED, "Method '" + call.member()
                            + "' is only available at the canonical object path '" + DriverTables.PATH + "'");
                    return;
                }
                break;
            }
        }
        if (method == null) {
            error(call, foundInterface ? DBusErrors.UNKNOWN_METHOD : DBusErrors.UNKNOWN_INTERFACE,
                    Bus.DRIVER_NAME + " does not understand message " + call.member());
            return;
        }
        String sig = call.signature() == null ? "" : call.signature();
        if (!sig.equals(method.in())) {
            error(call, DBusErrors.INVALID_ARGS, "Call to " + call.member() + " has wrong args (" + sig
                    + ", expected " + method.in() + ")\n");
            return;
        }
        if (method.privileged() && !isBusOwner(c)) {
            privilegeDenied(call);
            return;
        }
        try {
            method.handler().handle(this, call);
        } catch (ProtocolException e) {
            error(call, DBusErrors.INVALID_ARGS, e.getMessage());
        }
    }

    private boolean isBusOwner(Connection c) {
        long uid = peers.uidOf(c);
        return uid == host.busUid() || uid == 0;
    }

    /** dbus-daemon's texts for a privileged method called by anyone else. */
    private void privilegeDenied(DriverCall call) {
        Connection c = call.caller();
        long uid = peers.uidOf(c);
        if ("BecomeMonitor".equals(call.member())) {
            LOG.warn("Connection {} (uid {}) tried to become a monitor", c, uid);
            error(call, DBusErrors.ACCESS_DENIED, "rejected attempt to call BecomeMonitor by connection "
                    + c.uniqueName() + " with uid " + uid);
        } else {
            error(call, DBusErrors.ACCESS_DENIED, "rejected attempt to call " + call.member() + " by uid " + uid);
        }
    }

    void reloadConfig(DriverCall call) {
        String failure = host.reloadConfig();
        if (failure != null) {
            error(call, DBusErrors.FAILED, failure);
        } else {
            out.replyEmpty(call.caller(), call.serial());
        }
    }

    void getId(DriverCall call) {
        out.replyString(call.caller(), call.serial(), busId.get());
    }

    void introspect(DriverCall call) {
        out.replyString(call.caller(), call.serial(), DriverTables.introspect(call.path(), host.containers()));
    }

    void ping(DriverCall call) {
        out.replyEmpty(call.caller(), call.serial());
    }

    void getMachineId(DriverCall call) {
        out.replyString(call.caller(), call.serial(), machineId);
    }

    /** From now on a memfd reaches this connection only with its write/shrink/grow seals. */
    void requireSealedMemfds(DriverCall call) {
        call.caller().requireSealedMemfds();
        out.replyEmpty(call.caller(), call.serial());
    }

    void hello(DriverCall call) {
        Connection c = call.caller();
        if (c.uniqueName() != null) {
            error(call, DBusErrors.FAILED, "Already handled an Hello message");
            return;
        }
        Registration r = bus.hello(c);
        if (r.refused()) {
            // As dbus-daemon: the connection stays open and unregistered (it may retry Hello)
            // until it leaves or its auth_timeout runs out; monitors see the Hello from
            // :not.active.yet and the error.
            call.capture().run();
            String text;
            int limit;
            if (r.refusedBy() == Registration.Limit.MAX_COMPLETED_CONNECTIONS) {
                text = "The maximum number of active connections has been reached";
                limit = bus.limits().maxCompletedConnections;
            } else {
                text = "The maximum number of active connections for UID " + c.authenticatedUid() + " has been reached";
                limit = bus.limits().maxConnectionsPerUser;
            }
            LOG.warn("{} ({}={})", text, r.refusedBy().name().toLowerCase(java.util.Locale.ROOT), limit);
            error(call, DBusErrors.LIMITS_EXCEEDED, text);
            return;
        }
        call.capture().run(); // as dbus-daemon: monitors see the Hello with its new sender
        out.replyString(c, call.serial(), c.uniqueName());
        out.emit(List.of(r.arrival()));
    }

    /**
     * A call without destination ({@code Delivery.UNADDRESSED_CALL}, from a registered client
     * or not): answered as libdbus answers it for dbus-daemon, with its texts.
     * org.freedesktop.DBus.Peer's Ping and GetMachineId whatever their arguments, any other
     * Peer method or any other call UnknownMethod; always, even with NO_REPLY_EXPECTED.
     */
    public void answerUnaddressed(Connection c, long serial, String iface, String member, String signature) {
        if ("org.freedesktop.DBus.Peer".equals(iface)) {
            if ("Ping".equals(member)) {
                out.unaddressedAnswer(c, serial, null, null, null);
            } else if ("GetMachineId".equals(member)) {
                BodyWriter w = new BodyWriter();
                w.writeString(machineId);
                out.unaddressedAnswer(c, serial, null, "s", w.toByteArray());
            } else {
                unaddressedError(c, serial, "Unknown method invoked on org.freedesktop.DBus.Peer interface");
            }
            return;
        }
        // libdbus's text, trailing newline and glibc's "(null)" for a missing interface included.
        unaddressedError(c, serial, "Method \"" + member + "\" with signature \"" + (signature == null ? "" : signature)
                + "\" on interface \"" + (iface == null ? "(null)" : iface) + "\" doesn't exist\n");
    }

    private void unaddressedError(Connection c, long serial, String text) {
        BodyWriter w = new BodyWriter();
        w.writeString(text);
        out.unaddressedAnswer(c, serial, DBusErrors.UNKNOWN_METHOD, "s", w.toByteArray());
    }

    /** dbus-daemon's text (bus/activation.c) for max_pending_service_starts. */
    public static String tooManyActivations(String name, int limit) {
        return "The maximum number of pending activations has been reached, activation of " + name
                + " failed (max_pending_service_starts=" + limit + ")";
    }

    /**
     * The vendor extension's race-free exit-on-idle (kdbus BYEBYE): succeeds only if nothing is
     * queued for the caller and it owes no replies; then its names fall back to their
     * activators in this same step and its socket closes once the reply is out.
     */
    void disconnectIfIdle(DriverCall call) {
        Connection c = call.caller();
        if (!bus.isIdle(c)) {
            error(call, DBusErrors.NOT_IDLE, "Connection " + c.uniqueName() + " is not idle: "
                    + c.pool().messages() + " message(s) queued, " + c.pendingIncomingReplies() + " call(s) unanswered");
            return;
        }
        out.replyEmpty(c, call.serial());
        org.kdbusbridge.core.bus.Disconnect d = bus.disconnectKeepingQueue(c);
        out.emit(d.nameChanges());
        host.closeWhenFlushed(c);
    }

    /** Extensions1.Reexec(): no reply here; the host answers later (see Host.handOver). */
    void reexec(DriverCall call) {
        String failure = host.handOver(call.caller(), call.serial());
        if (failure != null) {
            error(call, failure.startsWith(HAND_OVER_BUSY) ? DBusErrors.HAND_OVER_IN_PROGRESS : DBusErrors.HAND_OVER_FAILED,
                    failure);
        }
    }

    /** How a host's refusal text begins when another hand-over is running. */
    public static final String HAND_OVER_BUSY = "a hand-over is already running";

    /**
     * BecomeMonitor(as rules, u flags): only the bus owner's uid or root; no flags yet; an
     * empty list means everything. The reply goes out first, then the connection loses its
     * names (NameLost / NameOwnerChanged) and only receives what it monitors.
     */
    void becomeMonitor(DriverCall call) throws ProtocolException {
        Connection c = call.caller();
        List<String> texts = call.body().readStringArray();
        long flags = call.body().readUint32();
        if (flags != 0) {
            error(call, DBusErrors.INVALID_ARGS, "BecomeMonitor does not support any flags yet");
            return;
        }
        List<MatchRule> rules = new ArrayList<>();
        for (String text : texts) {
            try {
                rules.add(MatchRule.parse(text));
            } catch (MatchRuleException e) {
                error(call, e.isLimitExceeded() ? DBusErrors.LIMITS_EXCEEDED : DBusErrors.MATCH_RULE_INVALID, e.getMessage());
                return;
            }
        }
        // An empty rule list, or an empty rule in it, means everything.
        if (rules.stream().anyMatch(r -> r.equals(EVERYTHING))) {
            rules.clear();
        }
        out.replyEmpty(c, call.serial());
        Disconnect gone = bus.becomeMonitor(c);
        out.emit(gone.nameChanges());
        for (DeadReply r : gone.deadReplies()) {
            out.error(r.caller(), r.serial(), DBusErrors.NO_REPLY, "Message recipient disconnected from message bus without replying");
        }
        bus.startMonitoring(c, rules);
        int extra = host.monitorMetadata();
        if (extra != 0) {
            // The bus owner's choice: every monitor also gets these items (its own set stays).
            bus.attachMetadata(c, c.attachedMetadata() | extra);
        }
        LOG.info("Connection {} (uid {}) became a monitor", c, peers.uidOf(c));
    }

    private static final MatchRule EVERYTHING = parseOrNull("");

    private static MatchRule parseOrNull(String text) {
        try {
            return MatchRule.parse(text);
        } catch (MatchRuleException e) {
            return null;
        }
    }

    private void error(DriverCall call, String name, String text) {
        out.error(call.caller(), call.serial(), name, text);
    }
}
