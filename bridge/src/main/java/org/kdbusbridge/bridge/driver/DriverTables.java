package org.kdbusbridge.bridge.driver;

import java.util.List;

/**
 * The driver's interfaces and methods: signatures, which paths they answer on, and the
 * introspection data generated from them, so the three can never disagree.
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
    static final List<String> EXTRA_INTERFACES = List.of("org.freedesktop.DBus.Monitoring", STATS, EXTENSIONS);

    record Method(String name, String in, String out, boolean anyPath) { }

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

    private static Method any(String name, String in, String out) {
        return new Method(name, in, out, true);
    }

    static final List<Iface> INTERFACES = List.of(
            new Iface(IFACE, true, List.of(
                    any("Hello", "", "s"),
                    any("RequestName", "su", "u"),
                    any("ReleaseName", "s", "u"),
                    any("StartServiceByName", "su", "u"),
                    new Method("UpdateActivationEnvironment", "a{ss}", "", false),
                    any("NameHasOwner", "s", "b"),
                    any("ListNames", "", "as"),
                    any("ListActivatableNames", "", "as"),
                    any("AddMatch", "s", ""),
                    any("RemoveMatch", "s", ""),
                    any("GetNameOwner", "s", "s"),
                    any("ListQueuedOwners", "s", "as"),
                    any("GetConnectionUnixUser", "s", "u"),
                    any("GetConnectionUnixProcessID", "s", "u"),
                    any("GetAdtAuditSessionData", "s", "ay"),
                    any("GetConnectionSELinuxSecurityContext", "s", "ay"),
                    any("ReloadConfig", "", ""),
                    any("GetId", "", "s"),
                    any("GetConnectionCredentials", "s", "a{sv}")),
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
                    new Method("Get", "ss", "v", false),
                    new Method("GetAll", "s", "a{sv}", false),
                    new Method("Set", "ssv", "", false)),
                    List.of(),
                    "    <signal name=\"PropertiesChanged\">\n"
                            + "      <arg type=\"s\" name=\"interface_name\"/>\n"
                            + "      <arg type=\"a{sv}\" name=\"changed_properties\"/>\n"
                            + "      <arg type=\"as\" name=\"invalidated_properties\"/>\n"
                            + "    </signal>\n"),
            new Iface("org.freedesktop.DBus.Monitoring", false, List.of(new Method("BecomeMonitor", "asu", "", false)),
                    List.of(), null),
            new Iface(STATS, false, List.of(
                    new Method("GetStats", "", "a{sv}", false),
                    new Method("GetConnectionStats", "s", "a{sv}", false),
                    new Method("GetAllMatchRules", "", "a{sas}", false)), List.of(), null),
            new Iface(EXTENSIONS, false, List.of(new Method("DisconnectIfIdle", "", "", false),
                    new Method("RequireSealedMemfds", "", "", false)), List.of(), null),
            new Iface("org.freedesktop.DBus.Introspectable", true, List.of(any("Introspect", "", "s")), List.of(), null),
            new Iface("org.freedesktop.DBus.Peer", true, List.of(
                    any("GetMachineId", "", "s"),
                    any("Ping", "", "")), List.of(), null));

    static String introspect(String path) {
        boolean canonical = PATH.equals(path);
        StringBuilder x = new StringBuilder();
        x.append("<!DOCTYPE node PUBLIC \"-//freedesktop//DTD D-BUS Object Introspection 1.0//EN\"\n")
                .append("\"http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd\">\n");
        x.append("<node>\n");
        for (Iface ih : INTERFACES) {
            if (!canonical && !ih.anyPath()) {
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
