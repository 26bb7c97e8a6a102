package org.kdbusbridge.bridge.driver;

import java.util.List;

import org.kdbusbridge.bridge.protocol.BodyWriter;
import org.kdbusbridge.bridge.protocol.ProtocolException;

/**
 * org.freedesktop.DBus.Properties on the driver: Features and Interfaces of org.freedesktop.DBus,
 * and Containers1's SupportedArguments, all read-only.
 */
final class DriverProperties {
    private static final String SUPPORTED_ARGUMENTS = "SupportedArguments";
    private final DriverEmitter out;
    private final Driver.Host host;

    DriverProperties(DriverEmitter out, Driver.Host host) {
        this.out = out;
        this.host = host;
    }

    void set(DriverCall call) throws ProtocolException {
        String iface = call.body().readString();
        String prop = call.body().readString();
        if (findPropertyInterface(call, iface) && checkProperty(call, iface, prop)) {
            out.error(call, DBusErrors.PROPERTY_READ_ONLY, "Property '" + iface + "." + prop + "' cannot be set");
        }
    }

    private boolean findPropertyInterface(DriverCall call, String iface) {
        if (!DriverTables.IFACE.equals(iface) && !(host.containers() && DriverTables.CONTAINERS.equals(iface))) {
            out.error(call, DBusErrors.UNKNOWN_INTERFACE, "Interface \"" + iface + "\" not found");
            return false;
        }
        return true;
    }

    private boolean checkProperty(DriverCall call, String iface, String prop) {
        boolean known = DriverTables.CONTAINERS.equals(iface) ? prop.equals(SUPPORTED_ARGUMENTS)
                : prop.equals("Features") || prop.equals("Interfaces");
        if (!known) {
            out.error(call, DBusErrors.UNKNOWN_PROPERTY, "Property \"" + iface + "." + prop + "\" not found");
            return false;
        }
        return true;
    }

    void get(DriverCall call) throws ProtocolException {
        String iface = call.body().readString();
        String prop = call.body().readString();
        if (!findPropertyInterface(call, iface) || !checkProperty(call, iface, prop)) {
            return;
        }
        BodyWriter w = new BodyWriter();
        w.writeVariant("as");
        writeStrings(w, prop.equals(SUPPORTED_ARGUMENTS) ? ContainersMethods.SUPPORTED_ARGUMENTS
                : prop.equals("Features") ? host.features() : DriverTables.extraInterfaces(host.containers()));
        out.reply(call.caller(), call.serial(), "v", w.toByteArray());
    }

    void getAll(DriverCall call) throws ProtocolException {
        String iface = call.body().readString();
        if (!findPropertyInterface(call, iface)) {
            return;
        }
        BodyWriter w = new BodyWriter();
        w.beginArray('{');
        if (DriverTables.CONTAINERS.equals(iface)) {
            w.beginDictEntry();
            w.writeString(SUPPORTED_ARGUMENTS);
            w.writeVariant("as");
            writeStrings(w, ContainersMethods.SUPPORTED_ARGUMENTS);
            w.endDictEntry();
            w.endArray();
            out.reply(call.caller(), call.serial(), "a{sv}", w.toByteArray());
            return;
        }
        w.beginDictEntry();
        w.writeString("Features");
        w.writeVariant("as");
        writeStrings(w, host.features());
        w.endDictEntry();
        w.beginDictEntry();
        w.writeString("Interfaces");
        w.writeVariant("as");
        writeStrings(w, DriverTables.extraInterfaces(host.containers()));
        w.endDictEntry();
        w.endArray();
        out.reply(call.caller(), call.serial(), "a{sv}", w.toByteArray());
    }

    private static void writeStrings(BodyWriter w, List<String> values) {
        w.beginArray('s');
        for (String v : values) {
            w.writeString(v);
        }
        w.endArray();
    }
}
