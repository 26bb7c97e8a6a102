package org.kdbusbridge.bridge.driver;

import java.util.ArrayList;
import java.util.List;

import org.kdbusbridge.bridge.protocol.MessageBuilder;
import org.kdbusbridge.bridge.protocol.ProtocolException;
import org.kdbusbridge.core.bus.Bus;
import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.message.MessageFacts;

/**
 * org.kdbusbridge.Extensions1's AttachMetadata and GetAttachedMetadata (docs/extensions.md):
 * decodes the item names, calls {@link Bus#attachMetadata}, renders the result.
 */
final class MetadataMethods {
    /** The item names, index i naming MessageFacts bit (1 << i). */
    static final List<String> ITEMS = List.of("creds", "pidfd", "groups", "comm", "exe", "cmdline", "cgroup",
            "seclabel", "names", "seq", "timestamp");
    /** The item that asks for MessagesDropped notices instead of a header entry (same as WatchDrops(true)). */
    static final String DROPS = "drops";

    private final Bus bus;
    private final DriverEmitter out;

    MetadataMethods(Bus bus, DriverEmitter out) {
        this.bus = bus;
        this.out = out;
    }

    /** AttachMetadata(as items): replaces the caller's set; an empty array clears it. */
    void attachMetadata(DriverCall call) throws ProtocolException {
        Connection c = call.caller();
        int items = 0;
        boolean drops = false;
        for (String name : call.body().readStringArray()) {
            if (name.equals(DROPS)) {
                drops = true; // not a header item: the MessagesDropped notices (WatchDrops)
                continue;
            }
            int i = ITEMS.indexOf(name);
            if (i < 0) {
                out.error(call, DBusErrors.INVALID_ARGS, "Unknown metadata item '" + shown(name) + "' (known: "
                        + String.join(", ", ITEMS) + ", " + DROPS + ")");
                return;
            }
            if (1 << i == MessageFacts.PIDFD) {
                if (!c.acceptsUnixFds()) {
                    out.error(call, DBusErrors.INVALID_ARGS,
                            "Metadata item 'pidfd' needs unix fd passing, which this connection did not negotiate");
                } else {
                    out.error(call, DBusErrors.NOT_SUPPORTED, "Metadata item 'pidfd' is not supported by this bus yet");
                }
                return;
            }
            items |= 1 << i;
        }
        bus.attachMetadata(c, items, drops);
        out.replyEmpty(c, call.serial());
    }

    /**
     * The bus owner's attach set for monitors ({@code --kdbus-monitor-metadata=ITEMS}): a comma
     * list of the header items above. {@code pidfd} is refused (not supported yet) and so is
     * {@code drops} (the bus tells a monitor nothing). Throws IllegalArgumentException naming
     * the bad item; an empty list is refused too (leave the option out instead).
     */
    static int monitorItems(String commaList) {
        int items = 0;
        for (String raw : commaList.split(",", -1)) {
            String name = raw.trim();
            int i = ITEMS.indexOf(name);
            if (i < 0 || 1 << i == MessageFacts.PIDFD) {
                throw new IllegalArgumentException("unknown or unsupported metadata item '" + name + "' (known: "
                        + String.join(", ", ITEMS.stream().filter(n -> !n.equals("pidfd")).toList()) + ")");
            }
            items |= 1 << i;
        }
        return items;
    }

    /** The longest prefix of a client's item name an error text repeats. */
    static final int SHOWN_NAME_MAX = 64;

    /** {@code name} as an error text repeats it: at most SHOWN_NAME_MAX chars, so a huge name is not echoed back whole. */
    static String shown(String name) {
        return name.length() <= SHOWN_NAME_MAX ? name : name.substring(0, SHOWN_NAME_MAX) + "...";
    }

    /** GetAttachedMetadata() -> as: the caller's set, in the documented order. */
    void getAttachedMetadata(DriverCall call) {
        int items = call.caller().attachedMetadata();
        List<String> names = new ArrayList<>();
        for (int i = 0; i < ITEMS.size(); i++) {
            if ((items & (1 << i)) != 0) {
                names.add(ITEMS.get(i));
            }
        }
        if (call.caller().drops() != null) {
            names.add(DROPS);
        }
        out.reply(call.caller(), call.serial(), "as", new MessageBuilder.StringArray(names));
    }
}
