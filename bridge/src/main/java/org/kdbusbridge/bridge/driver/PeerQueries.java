package org.kdbusbridge.bridge.driver;

import org.kdbusbridge.bridge.protocol.BodyWriter;
import org.kdbusbridge.bridge.protocol.ProtocolException;
import org.kdbusbridge.core.bus.Bus;
import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.name.NameSyntax;

/** The GetConnection* methods: a peer's credentials as the bus saw them at connect. */
final class PeerQueries {
    private final Bus bus;
    private final DriverEmitter out;
    private final Driver.Host host;

    PeerQueries(Bus bus, DriverEmitter out, Driver.Host host) {
        this.bus = bus;
        this.out = out;
        this.host = host;
    }

    void unixUser(DriverCall call) throws ProtocolException {
        String n = call.body().readString();
        replyId(call, "UID", n, uidOf(peer(call, n, "UID")));
    }

    void unixProcessId(DriverCall call) throws ProtocolException {
        String n = call.body().readString();
        replyId(call, "PID", n, pidOf(peer(call, n, "PID")));
    }

    void adtAuditSessionData(DriverCall call) throws ProtocolException {
        String n = call.body().readString();
        if (peer(call, n, "audit session data") != null) {
            out.error(call, DBusErrors.ADT_AUDIT_DATA_UNKNOWN, "Could not determine audit session data for '" + n + "'");
        }
    }

    void seLinuxSecurityContext(DriverCall call) throws ProtocolException {
        String n = call.body().readString();
        if (peer(call, n, "security context") != null) {
            out.error(call, DBusErrors.SELINUX_CONTEXT_UNKNOWN, "Could not determine security context for '" + n + "'");
        }
    }

    /** Resolves the name argument of a Get* call; sends NameHasNoOwner and returns null if absent. */
    Connection peer(DriverCall call, String name, String what) {
        if (Bus.DRIVER_NAME.equals(name)) {
            return DRIVER_SELF;
        }
        Connection c = NameSyntax.isValidBusName(name) ? bus.resolve(name) : null;
        if (c == null) {
            out.error(call, DBusErrors.NAME_HAS_NO_OWNER, "Could not get " + what + " of name '" + name + "': no such name");
        }
        return c;
    }

    /**
     * GetConnectionCredentials, with dbus-daemon 1.14's keys in its order: ProcessID,
     * UnixUserID, UnixGroupIDs, LinuxSecurityLabel (NUL-terminated, as dbus-daemon sends it),
     * each only when known; for the bus itself only the first two, as dbus-daemon. Then, for a
     * peer that came in through an endpoint, the Containers1 draft's
     * {@code org.freedesktop.DBus.Containers1.Instance} (its instance path). Plus ProcessFD
     * (dbus 1.15.8 / dbus-broker 34), a pidfd of the peer, to callers that negotiated fd passing
     * and are not inside a filtering endpoint.
     */
    void credentials(DriverCall call) throws ProtocolException {
        Connection peer = peer(call, call.body().readString(), "credentials");
        if (peer == null) {
            return;
        }
        BodyWriter w = new BodyWriter();
        w.beginArray('{');
        writeCredentials(w, peer);
        if (peer != DRIVER_SELF && peer.endpoint() != null) {
            w.beginDictEntry().writeString(ContainersMethods.INSTANCE_KEY).writeVariant("o")
                    .writeObjectPath(ContainersMethods.instancePath(peer.endpoint().filter().endpointId()))
                    .endDictEntry();
        }
        org.kdbusbridge.core.message.FdSet pidfd = call.caller().acceptsUnixFds() && bus.mayGetProcessHandles(call.caller())
                ? peer.peerDetails().processFd() : null;
        if (pidfd != null) {
            w.beginDictEntry().writeString("ProcessFD").writeVariant("h").writeUnixFd(0).endDictEntry();
        }
        w.endArray();
        if (pidfd != null) {
            out.replyWithFds(call.caller(), call.serial(), "a{sv}", w.toByteArray(), pidfd);
        } else {
            out.reply(call.caller(), call.serial(), "a{sv}", w.toByteArray());
        }
    }

    /**
     * The dict entries ProcessID, UnixUserID, UnixGroupIDs and LinuxSecurityLabel of {@code peer}
     * (each only when known), inside an open a{sv}: also the creator's credentials in Containers1's
     * instance info.
     */
    void writeCredentials(BodyWriter w, Connection peer) {
        long pid = pidOf(peer);
        if (pid >= 0) {
            w.beginDictEntry().writeString("ProcessID").writeVariant("u").writeUint32(pid).endDictEntry();
        }
        long uid = uidOf(peer);
        if (uid >= 0) {
            w.beginDictEntry().writeString("UnixUserID").writeVariant("u").writeUint32(uid).endDictEntry();
        }
        org.kdbusbridge.core.connection.PeerDetails details = peer.peerDetails();
        long[] groups = details.groups();
        if (groups != null) {
            w.beginDictEntry().writeString("UnixGroupIDs").writeVariant("au").beginArray('u');
            for (long g : groups) {
                w.writeUint32(g);
            }
            w.endArray().endDictEntry();
        }
        byte[] label = details.securityLabel();
        if (label != null) {
            w.beginDictEntry().writeString("LinuxSecurityLabel").writeVariant("ay")
                    .writeByteArray(java.util.Arrays.copyOf(label, label.length + 1)).endDictEntry();
        }
    }

    /** Stands for the bus itself in the Get* calls. */
    static final Connection DRIVER_SELF = new Connection(0, null, x -> { }, null);

    /** Replies with a uid or pid; {@code value} is -2 when peer() already sent NameHasNoOwner. */
    private void replyId(DriverCall call, String what, String name, long value) {
        if (value == -2) {
            return;
        }
        if (value < 0) {
            out.error(call, DBusErrors.FAILED, "Could not determine " + what + " for '" + name + "'");
        } else {
            out.replyUint32(call.caller(), call.serial(), value);
        }
    }

    long uidOf(Connection c) {
        return credential(c, host::busUid, org.kdbusbridge.core.connection.Credentials::uid);
    }

    long pidOf(Connection c) {
        return credential(c, host::busPid, org.kdbusbridge.core.connection.Credentials::pid);
    }

    /** -2: no such peer (peer() already answered); -1: unknown; the bus's own for DRIVER_SELF. */
    private static long credential(Connection c, java.util.function.LongSupplier bus,
                                   java.util.function.ToLongFunction<org.kdbusbridge.core.connection.Credentials> field) {
        if (c == null) {
            return -2;
        }
        if (c == DRIVER_SELF) {
            return bus.getAsLong();
        }
        return c.credentials() == null ? -1 : field.applyAsLong(c.credentials());
    }

}
