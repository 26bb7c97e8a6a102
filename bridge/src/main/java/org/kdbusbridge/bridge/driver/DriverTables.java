package org.kdbusbridge.bridge.driver;

import java.util.List;

import static org.kdbusbridge.bridge.driver.DriverTables.Scope.ANY;
import static org.kdbusbridge.bridge.driver.DriverTables.Scope.CANONICAL;
import static org.kdbusbridge.bridge.driver.DriverTables.Scope.PRIVILEGED;

import org.kdbusbridge.bridge.protocol.ProtocolException;

/**
 * The driver's interfaces and methods: signatures, which paths they answer on, who may call
 * them, the handler that runs them, and the introspection data generated from the same rows,
 * so dispatch, checks and introspection can never disagree.
 */
final class DriverTables {
    private DriverTables() { }

    static final String PATH = "/org/freedesktop/DBus";
    static final String IFACE = "org.freedesktop.DBus";

    /** Features property: we strip unknown header fields like dbus-daemon. */
    static final List<String> FEATURES = List.of("HeaderFiltering");
    /** Our vendor extension interface (docs/extensions.md). */
    static final String EXTENSIONS = "org.kdbusbridge.Extensions1";
    /** Interfaces property: optional interfaces beyond the always-present ones. */
    /** dbus-daemon's statistics interface (present when it is built with --enable-stats, as Debian's is). */
    static final String STATS = "org.freedesktop.DBus.Debug.Stats";
    /** Custom endpoints' control interface (docs/extensions.md), bus owner's uid and root only. */
    static final String ENDPOINTS = EndpointMethods.IFACE;
    /** dbus-daemon's experimental container servers (its --enable-containers build), on our endpoints. */
    static final String CONTAINERS = ContainersMethods.IFACE;
    /** The Interfaces property: without Containers1 unless it is offered (--kdbus-containers). */
    static List<String> extraInterfaces(boolean containers) {
        return containers ? EXTRA_INTERFACES : ExtraWithoutContainers.LIST;
    }

    private static final class ExtraWithoutContainers { // made after EXTRA_INTERFACES, at first use
        static final List<String> LIST = EXTRA_INTERFACES.stream().filter(i -> !CONTAINERS.equals(i)).toList();
    }

    static final List<String> EXTRA_INTERFACES = List.of("org.freedesktop.DBus.Monitoring", STATS, CONTAINERS, EXTENSIONS,
            ENDPOINTS);

    /** Runs one validated call; non-capturing, so the table holds one instance per row. */
    @FunctionalInterface
    interface Handler {
        void handle(Driver d, DriverCall call) throws ProtocolException;
    }

    /** {@code privileged}: only the bus owner's uid or root (dbus-daemon's METHOD_FLAG_PRIVILEGED). */
    record Method(String name, String in, String out, boolean anyPath, boolean privileged, Handler handler) { }

    record Property(String name, String type) { }

    record Iface(String name, boolean anyPath, List<Method> methods, List<Property> properties, String extraXml) {
        Method find(String member) {
            // Indexed, not for-each: under C1 (the shipped flags) every iterator is a heap object.
            for (int i = 0, n = methods.size(); i < n; i++) {
                Method m = methods.get(i);
                if (m.name().equals(member)) {
                    return m;
                }
            }
            return null;
        }
    }

    /** Where a method answers, and who may call it: PRIVILEGED is the canonical path, owner's uid or root only. */
    enum Scope { ANY, CANONICAL, PRIVILEGED }

    private static Method row(Scope scope, String name, String in, String out, Handler h) {
        return new Method(name, in, out, scope == ANY, scope == PRIVILEGED, h);
    }

    static final List<Iface> INTERFACES = List.of(
            new Iface(IFACE, true, List.of(
                    row(ANY, "Hello", "", "s", Driver::hello),
                    row(ANY, "RequestName", "su", "u", (d, call) -> d.claims.requestName(call)),
                    row(ANY, "ReleaseName", "s", "u", (d, call) -> d.claims.releaseName(call)),
                    // Never dispatched: Driver.handle() answers every well-formed one first.
                    row(ANY, "StartServiceByName", "su", "u", (d, call) -> { }),
                    row(PRIVILEGED, "UpdateActivationEnvironment", "a{ss}", "", (d, call) -> d.activations.updateActivationEnvironment(call)),
                    row(ANY, "NameHasOwner", "s", "b", (d, call) -> d.names.nameHasOwner(call)),
                    row(ANY, "ListNames", "", "as", (d, call) -> d.names.listNames(call)),
                    row(ANY, "ListActivatableNames", "", "as", (d, call) -> d.names.listActivatableNames(call)),
                    row(ANY, "AddMatch", "s", "", (d, call) -> d.claims.addMatch(call)),
                    row(ANY, "RemoveMatch", "s", "", (d, call) -> d.claims.removeMatch(call)),
                    row(ANY, "GetNameOwner", "s", "s", (d, call) -> d.names.getNameOwner(call)),
                    row(ANY, "ListQueuedOwners", "s", "as", (d, call) -> d.names.listQueuedOwners(call)),
                    row(ANY, "GetConnectionUnixUser", "s", "u", (d, call) -> d.peers.unixUser(call)),
                    row(ANY, "GetConnectionUnixProcessID", "s", "u", (d, call) -> d.peers.unixProcessId(call)),
                    row(ANY, "GetAdtAuditSessionData", "s", "ay", (d, call) -> d.peers.adtAuditSessionData(call)),
                    row(ANY, "GetConnectionSELinuxSecurityContext", "s", "ay", (d, call) -> d.peers.seLinuxSecurityContext(call)),
                    row(ANY, "ReloadConfig", "", "", Driver::reloadConfig),
                    row(ANY, "GetId", "", "s", Driver::getId),
                    row(ANY, "GetConnectionCredentials", "s", "a{sv}", (d, call) -> d.peers.credentials(call))),
                    List.of(new Property("Features", "as"), new Property("Interfaces", "as")),
                    "    <signal name=\"NameOwnerChanged\">\n"
                            + "      <arg type=\"s\"/>\n"
                            + "      <arg type=\"s\"/>\n"
                            + "      <arg type=\"s\"/>\n"
                            + "    </signal>\n"
                            + "    <signal name=\"NameLost\">\n"
                            + "      <arg type=\"s\"/>\n"
                            + "    </signal>\n"
                            + "    <signal name=\"NameAcquired\">\n"
                            + "      <arg type=\"s\"/>\n"
                            + "    </signal>\n"
                            + "    <signal name=\"ActivatableServicesChanged\">\n"
                            + "    </signal>\n"),
            new Iface("org.freedesktop.DBus.Properties", false, List.of(
                    row(CANONICAL, "Get", "ss", "v", (d, call) -> d.properties.get(call)),
                    row(CANONICAL, "GetAll", "s", "a{sv}", (d, call) -> d.properties.getAll(call)),
                    row(CANONICAL, "Set", "ssv", "", (d, call) -> d.properties.set(call))),
                    List.of(),
                    "    <signal name=\"PropertiesChanged\">\n"
                            + "      <arg type=\"s\" name=\"interface_name\"/>\n"
                            + "      <arg type=\"a{sv}\" name=\"changed_properties\"/>\n"
                            + "      <arg type=\"as\" name=\"invalidated_properties\"/>\n"
                            + "    </signal>\n"),
            new Iface("org.freedesktop.DBus.Monitoring", false, List.of(row(PRIVILEGED, "BecomeMonitor", "asu", "", Driver::becomeMonitor)),
                    List.of(), null),
            new Iface(STATS, false, List.of(
                    row(CANONICAL, "GetStats", "", "a{sv}", (d, call) -> d.stats.getStats(call)),
                    row(CANONICAL, "GetConnectionStats", "s", "a{sv}", (d, call) -> d.stats.getConnectionStats(call)),
                    row(CANONICAL, "GetAllMatchRules", "", "a{sas}", (d, call) -> d.stats.getAllMatchRules(call))), List.of(), null),
            // Where dbus-daemon has it (after Stats): a call without interface finds its GetConnectionInstance first.
            new Iface(CONTAINERS, false, List.of(
                    row(CANONICAL, "AddServer", "ssa{sv}a{sv}", "oays", (d, call) -> d.containers.addServer(call)),
                    row(CANONICAL, "StopInstance", "o", "", (d, call) -> d.containers.stopInstance(call)),
                    row(CANONICAL, "StopListening", "o", "", (d, call) -> d.containers.stopListening(call)),
                    row(CANONICAL, "GetConnectionInstance", "s", "oa{sv}ssa{sv}",
                            (d, call) -> d.containers.getConnectionInstance(call)),
                    row(CANONICAL, "GetInstanceInfo", "o", "a{sv}ssa{sv}", (d, call) -> d.containers.getInstanceInfo(call))),
                    // SupportedArguments (as) is served by DriverProperties but not introspected: busctl
                    // would GetAll it, a call dbus-daemon's transcript lacks (MigrationProofTest).
                    List.of(),
                    "    <signal name=\"" + ContainersMethods.INSTANCE_REMOVED + "\">\n"
                            + "      <arg type=\"o\" name=\"path\"/>\n"
                            + "    </signal>\n"),
            new Iface(EXTENSIONS, false, List.of(row(CANONICAL, "DisconnectIfIdle", "", "", Driver::disconnectIfIdle),
                    row(CANONICAL, "RequireSealedMemfds", "", "", Driver::requireSealedMemfds),
                    // Queue insight (docs/extensions.md): drop notices and peeks.
                    row(CANONICAL, "WatchDrops", "b", "", (d, call) -> d.queue.watchDrops(call)),
                    row(CANONICAL, "PeekQueued", "", "u" + "a" + QueueMethods.ENTRY, (d, call) -> d.queue.peekQueued(call)),
                    row(CANONICAL, "PeekActivationQueue", "s", "a" + QueueMethods.ENTRY,
                            (d, call) -> d.queue.peekActivationQueue(call)),
                    row(CANONICAL, "AttachMetadata", "as", "", (d, call) -> d.metadata.attachMetadata(call)),
                    row(CANONICAL, "GetAttachedMetadata", "", "as", (d, call) -> d.metadata.getAttachedMetadata(call)),
                    // Live hand-over (docs/handover.md): the reply is deferred, see Driver.reexec.
                    row(PRIVILEGED, "Reexec", "", "", Driver::reexec)), List.of(),
                    "    <signal name=\"" + QueueMethods.MESSAGES_DROPPED + "\">\n"
                            + "      <arg type=\"u\" name=\"count\"/>\n"
                            + "      <arg type=\"t\" name=\"first_seq\"/>\n"
                            + "      <arg type=\"t\" name=\"last_seq\"/>\n"
                            + "    </signal>\n"),
            new Iface(ENDPOINTS, false, List.of(
                    row(PRIVILEGED, "AddEndpoint", "sasa{sv}", "ss", (d, call) -> d.endpoints.addEndpoint(call)),
                    row(PRIVILEGED, "RemoveEndpoint", "s", "", (d, call) -> d.endpoints.removeEndpoint(call)),
                    row(PRIVILEGED, "ListEndpoints", "", "a" + EndpointMethods.ENTRY, (d, call) -> d.endpoints.listEndpoints(call)),
                    row(CANONICAL, "GetConnectionInstance", "s", "sss", (d, call) -> d.endpoints.getConnectionInstance(call, d.peers))),
                    List.of(), null),
            new Iface("org.freedesktop.DBus.Introspectable", true, List.of(row(ANY, "Introspect", "", "s", Driver::introspect)), List.of(), null),
            new Iface("org.freedesktop.DBus.Peer", true, List.of(
                    row(ANY, "GetMachineId", "", "s", Driver::getMachineId),
                    row(ANY, "Ping", "", "", Driver::ping)), List.of(), null));

    static String introspect(String path) {
        return introspect(path, true);
    }

    /** {@code containers}: whether Containers1 is offered (--kdbus-containers) and so described. */
    static String introspect(String path, boolean containers) {
        boolean canonical = PATH.equals(path);
        StringBuilder x = new StringBuilder();
        x.append("<!DOCTYPE node PUBLIC \"-//freedesktop//DTD D-BUS Object Introspection 1.0//EN\"\n")
                .append("\"http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd\">\n");
        x.append("<node>\n");
        for (Iface ih : INTERFACES) {
            if ((!canonical && !ih.anyPath()) || (!containers && CONTAINERS.equals(ih.name()))) {
                continue;
            }
            x.append("  <interface name=\"").append(ih.name()).append("\">\n");
            for (Method m : ih.methods()) {
                x.append("    <method name=\"").append(m.name()).append("\">\n");
                args(x, m.in(), "in");
                args(x, m.out(), "out");
                x.append("    </method>\n");
            }
            for (Property p : ih.properties()) {
                x.append("    <property name=\"").append(p.name()).append("\" type=\"").append(p.type())
                        .append("\" access=\"read\">\n")
                        .append("      <annotation name=\"org.freedesktop.DBus.Property.EmitsChangedSignal\" value=\"const\"/>\n")
                        .append("    </property>\n");
            }
            if (ih.extraXml() != null) {
                x.append(ih.extraXml());
            }
            x.append("  </interface>\n");
        }
        if ("/".equals(path)) {
            x.append("  <node name=\"org/freedesktop/DBus\"/>\n");
        } else if ("/org".equals(path)) {
            x.append("  <node name=\"freedesktop/DBus\"/>\n");
        } else if ("/org/freedesktop".equals(path)) {
            x.append("  <node name=\"DBus\"/>\n");
        }
        x.append("</node>\n");
        return x.toString();
    }

    /** One {@code <arg>} per complete type in the signature. */
    private static void args(StringBuilder x, String sig, String direction) {
        int i = 0;
        while (i < sig.length()) {
            int end = completeTypeEnd(sig, i);
            x.append("      <arg direction=\"").append(direction).append("\" type=\"")
                    .append(sig, i, end).append("\"/>\n");
            i = end;
        }
    }

    private static int completeTypeEnd(String sig, int i) {
        char c = sig.charAt(i);
        if (c == 'a') {
            return completeTypeEnd(sig, i + 1);
        }
        if (c == '(' || c == '{') {
            char close = c == '(' ? ')' : '}';
            int depth = 0;
            for (int j = i; j < sig.length(); j++) {
                char d = sig.charAt(j);
                if (d == '(' || d == '{') {
                    depth++;
                } else if (d == ')' || d == '}') {
                    depth--;
                    if (depth == 0 && d == close) {
                        return j + 1;
                    }
                }
            }
            return sig.length();
        }
        return i + 1;
    }
}
