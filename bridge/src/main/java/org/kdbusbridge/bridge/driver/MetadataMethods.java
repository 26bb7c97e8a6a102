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
    /**
     * Pseudo-items choosing the field's form: the {@code a{sv}} dictionary (the default) or one
     * text string (variant {@code s}), which sd-bus can skip (docs/extensions.md, "The text form").
     */
    static final String FORMAT_DICT = "format=dict";
    static final String FORMAT_TEXT = "format=text";

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
        boolean text = false;
        for (String name : call.body().readStringArray()) {
            if (name.equals(DROPS)) {
                drops = true; // not a header item: the MessagesDropped notices (WatchDrops)
                continue;
            }
            if (name.equals(FORMAT_TEXT) || name.equals(FORMAT_DICT)) {
                text = name.equals(FORMAT_TEXT); // the last one given counts
                continue;
            }
            int i = ITEMS.indexOf(name);
            if (i < 0) {
                out.error(call, DBusErrors.INVALID_ARGS, "Unknown metadata item '" + shown(name) + "' (known: "
                        + String.join(", ", ITEMS) + ", " + DROPS + ", " + FORMAT_DICT + ", " + FORMAT_TEXT + ")");
                return;
            }
            if (1 << i == MessageFacts.PIDFD && !c.acceptsUnixFds()) {
                // As dbus-daemon refuses fds for a peer that cannot take them: NotSupported.
                out.error(call, DBusErrors.NOT_SUPPORTED, "Metadata item 'pidfd' needs unix fd passing,"
                        + " which this connection did not negotiate (NEGOTIATE_UNIX_FD)");
                return;
            }
            items |= 1 << i;
        }
        if (text) {
            items |= MessageFacts.FORMAT_TEXT; // a form without items is no set: the core drops it (normalizedSet)
        }
        bus.attachMetadata(c, items, drops);
        out.replyEmpty(c, call.serial());
    }

    /**
     * The bus owner's attach set for monitors ({@code --kdbus-monitor-metadata=ITEMS}): a comma
     * list of the header items above, and {@code format=text} for the text form. {@code pidfd}
     * is refused (a monitor's copies carry no fds of ours) and so is {@code drops} (the bus tells
     * a monitor nothing). Throws IllegalArgumentException naming
     * the bad item; an empty list is refused too (leave the option out instead).
     */
    static int monitorItems(String commaList) {
        int items = 0;
        boolean text = false;
        for (String raw : commaList.split(",", -1)) {
            String name = raw.trim();
            if (name.equals(FORMAT_TEXT) || name.equals(FORMAT_DICT)) {
                text = name.equals(FORMAT_TEXT);
                continue;
            }
            int i = ITEMS.indexOf(name);
            if (i < 0 || 1 << i == MessageFacts.PIDFD) {
                throw new IllegalArgumentException("unknown or unsupported metadata item '" + name + "' (known: "
                        + String.join(", ", ITEMS.stream().filter(n -> !n.equals("pidfd")).toList()) + ")");
            }
            items |= 1 << i;
        }
        if (items == 0) {
            throw new IllegalArgumentException("no metadata item in '" + commaList + "' (a format alone is no set)");
        }
        return text ? items | MessageFacts.FORMAT_TEXT : items;
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
        if ((items & MessageFacts.FORMAT_TEXT) != 0) {
            names.add(FORMAT_TEXT);
        }
        if (call.caller().drops() != null) {
            names.add(DROPS);
        }
        out.reply(call.caller(), call.serial(), "as", new MessageBuilder.StringArray(names));
    }
}
