package org.kdbusbridge.bridge.protocol;

import java.nio.ByteBuffer;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;

import org.kdbusbridge.bridge.driver.DriverEmitter;
import org.kdbusbridge.core.bus.Bus;
import org.kdbusbridge.core.bus.BusLimits;
import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.connection.Credentials;
import org.kdbusbridge.core.match.MatchRule;
import org.kdbusbridge.core.message.Message;

/**
 * A fixed set of bus-originated messages built only through API that existed before the
 * single-array encoding (issue 14), so the same source compiled against the old build printed
 * the digests {@link EncodingCorpusTest} expects ({@code main} prints them).
 */
public final class EncodingCorpus {
    private EncodingCorpus() { }

    public static List<byte[]> messages() throws Exception {
        List<byte[]> out = new ArrayList<>();
        // MessageBuilder directly: small and large bodies, every header field, no body.
        BodyWriter dict = new BodyWriter();
        dict.beginArray('{');
        for (int i = 0; i < 3; i++) {
            dict.beginDictEntry().writeString("k" + i).writeVariant("x").writeInt64(i * 1_000_000_007L).endDictEntry();
        }
        dict.endArray();
        out.add(MessageBuilder.encode(2, 1, 42, null, null, null, null, 7, ":1.5", "org.freedesktop.DBus",
                "a{sx}", dict.toByteArray()));
        out.add(MessageBuilder.methodCall(9, 0, "org.example", "/a/b", "org.example.I", "M", ":1.2", null, null));
        out.add(MessageBuilder.signal(3, "/p", "org.example.I", "S", null, ":1.9", "s",
                new BodyWriter().writeString("h\u00e9llo \ud83d\ude00 \ud800 x").toByteArray()));
        out.add(MessageBuilder.error(5, 0xFFFFFFFFL, ":1.1", "org.freedesktop.DBus", "org.example.Err", "t\u00e8xt"));
        out.add(MessageBuilder.error(6, 3, ":1.1", "org.freedesktop.DBus", "org.example.Err", null));
        out.add(MessageBuilder.encode(2, 1, 43, null, null, null, null, 8, ":1.5", "org.freedesktop.DBus",
                "h", new BodyWriter().writeUnixFd(0).toByteArray(), 1));
        byte[] big = new byte[70_000];
        for (int i = 0; i < big.length; i++) {
            big[i] = (byte) (i * 31);
        }
        out.add(MessageBuilder.methodReturn(11, 10, ":1.3", "org.freedesktop.DBus", "ay",
                new BodyWriter().writeByteArray(big).toByteArray()));

        // The driver's emitter, through a bus, as a client receives them.
        Bus bus = new Bus(new BusLimits());
        Connection c = bus.connect(new Credentials(0, 0, 1), x -> { });
        bus.hello(c);
        bus.matches().add(c, MatchRule.parse("type='signal'"));
        DriverEmitter e = new DriverEmitter(bus);
        List<String> names = new ArrayList<>();
        for (int i = 0; i < 100_000; i++) {
            names.add(i % 3 == 0 ? ":1." + i : "org.example.Service" + i);
        }
        e.replyStrings(c, 1, names);
        e.replyStrings(c, 2, List.of());
        e.replyStrings(c, 3, List.of("org.freedesktop.DBus", "n\u00e4me"));
        e.replyString(c, 4, ":1.77");
        e.replyUint32(c, 5, 0xFFFFFFFEL);
        e.replyBoolean(c, 6, true);
        e.replyEmpty(c, 7);
        e.reply(c, 8, "a{sx}", dict.toByteArray());
        e.error(c, 9, "org.freedesktop.DBus.Error.NameHasNoOwner", "Could not get owner of name 'x': no such name");
        e.unaddressedAnswer(c, 10, null, "s", new BodyWriter().writeString("machine").toByteArray());
        e.unaddressedAnswer(c, 11, "org.freedesktop.DBus.Error.UnknownMethod", null, null);
        e.unicastSignal(c, "NameAcquired", "org.example.Name");
        e.callFromBus(c, null, "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager", "SetEnvironment",
                List.of("A=1", "B=\u00fc"));
        e.signal("ActivatableServicesChanged");
        e.nameOwnerChanged("org.example.Name", "", ":1.77");
        Message m;
        while ((m = c.pool().pop()) != null) {
            ByteBuffer v = m.payload().view();
            byte[] b = new byte[v.remaining()];
            v.get(b);
            out.add(b);
        }
        return out;
    }

    public static List<String> digests() throws Exception {
        List<String> d = new ArrayList<>();
        for (byte[] b : messages()) {
            d.add(b.length + ":" + HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b), 0, 8));
        }
        return d;
    }

    public static void main(String[] args) throws Exception {
        for (String d : digests()) {
            System.out.println(d);
        }
    }
}
