package org.kdbusbridge.bridge.driver;

import java.util.ArrayList;
import java.util.List;

import org.kdbusbridge.bridge.protocol.ProtocolException;
import org.kdbusbridge.core.bus.Bus;
import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.name.NameSyntax;

/** The read-only name methods: who owns what, who is queued, what could be activated. */
final class NameQueries {
    private final Bus bus;
    private final DriverEmitter out;

    NameQueries(Bus bus, DriverEmitter out) {
        this.bus = bus;
        this.out = out;
    }

    void nameHasOwner(DriverCall call) throws ProtocolException {
        String name = call.body().readString();
        out.replyBoolean(call.caller(), call.serial(), Bus.DRIVER_NAME.equals(name) || bus.resolve(name) != null);
    }

    void listNames(DriverCall call) {
        // Sized once: 100k names are one 400 KB array, not a chain of growing copies.
        java.util.Collection<Connection> active = bus.activeConnections();
        List<String> names = new ArrayList<>(1 + active.size() + bus.names().nameCount());
        names.add(Bus.DRIVER_NAME);
        for (Connection x : active) {
            names.add(x.uniqueName());
        }
        bus.names().addNamesTo(names);
        out.replyStrings(call.caller(), call.serial(), visibleTo(call.caller(), names));
    }

    void listActivatableNames(DriverCall call) {
        List<String> names = new ArrayList<>();
        names.add(Bus.DRIVER_NAME);
        names.addAll(new java.util.TreeSet<>(bus.activatableNames()));
        out.replyStrings(call.caller(), call.serial(), visibleTo(call.caller(), names));
    }

    void getNameOwner(DriverCall call) throws ProtocolException {
        String name = call.body().readString();
        if (Bus.DRIVER_NAME.equals(name)) {
            out.replyString(call.caller(), call.serial(), Bus.DRIVER_NAME);
            return;
        }
        Connection owner = NameSyntax.isValidBusName(name) ? bus.resolve(name) : null;
        if (owner == null) {
            out.error(call, DBusErrors.NAME_HAS_NO_OWNER, "Could not get owner of name '" + name + "': no such name");
        } else {
            out.replyString(call.caller(), call.serial(), owner.uniqueName());
        }
    }

    void listQueuedOwners(DriverCall call) throws ProtocolException {
        String name = call.body().readString();
        if (Bus.DRIVER_NAME.equals(name)) {
            out.replyStrings(call.caller(), call.serial(), List.of(Bus.DRIVER_NAME));
            return;
        }
        List<String> owners = new ArrayList<>();
        if (NameSyntax.isUniqueName(name)) {
            Connection u = bus.resolve(name);
            if (u != null) {
                owners.add(u.uniqueName());
            }
        } else {
            for (Connection x : bus.names().queue(name)) {
                owners.add(x.uniqueName());
            }
        }
        if (owners.isEmpty()) {
            out.error(call, DBusErrors.NAME_HAS_NO_OWNER, "Could not get owners of name '" + name + "': no such name");
        } else {
            out.replyStrings(call.caller(), call.serial(), owners);
        }
    }

    /** The names a caller behind a custom endpoint may be told of (all of them for anyone else). */
    private List<String> visibleTo(Connection caller, List<String> names) {
        if (caller.endpoint() == null) {
            return names;
        }
        List<String> kept = new ArrayList<>();
        for (String n : names) {
            if (bus.endpointLists(caller, n)) {
                kept.add(n);
            }
        }
        return kept;
    }
}
