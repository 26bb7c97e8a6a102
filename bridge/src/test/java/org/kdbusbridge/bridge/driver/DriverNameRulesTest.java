package org.kdbusbridge.bridge.driver;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.kdbusbridge.bridge.protocol.BodyReader;
import org.kdbusbridge.bridge.protocol.BodyWriter;
import org.kdbusbridge.core.bus.Bus;
import org.kdbusbridge.core.bus.BusLimits;
import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.connection.Credentials;
import org.kdbusbridge.core.message.Message;
import org.kdbusbridge.core.message.SealedPayload;
import org.kdbusbridge.core.name.NameRegistry;
import org.kdbusbridge.core.policy.ConnectionPolicy;
import org.kdbusbridge.core.policy.PolicyRuleParser;

/**
 * The name and match rule calls, driven without sockets: the core decides, the driver renders,
 * and the error names and texts are dbus-daemon's, byte for byte.
 */
class DriverNameRulesTest {
    private final BusLimits limits = new BusLimits();
    private Bus bus;
    private Driver driver;
    private long serial;

    @BeforeEach
    void setUp() {
        limits.maxNamesPerConnection = 3;
        limits.maxMatchRulesPerConnection = 1;
        bus = new Bus(limits);
        driver = new Driver(bus, "0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210",
                new Driver.Host() {
                    @Override
                    public String reloadConfig() { return null; }

                    @Override
                    public long busUid() { return 1000; }

                    @Override
                    public long busPid() { return 1; }

                    @Override
                    public void closeWhenFlushed(Connection c) { }
                });
    }

    private Connection client() {
        Connection c = bus.connect(new Credentials(1000, 1000, 1), x -> { });
        bus.hello(c);
        return c;
    }

    /** A policy that lets the connection receive the driver's answers and own no name. */
    private static ConnectionPolicy receiveOnly() {
        PolicyRuleParser.Principals none = PolicyRuleParser.Principals.NONE;
        try {
            return ConnectionPolicy.compile(List.of(
                    PolicyRuleParser.parse("allow", Map.of("receive_type", "method_return"), none).rule(),
                    PolicyRuleParser.parse("allow", Map.of("receive_type", "error"), none).rule()));
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }

    /** Calls {@code member} with a body of strings and uint32s, as the wire would bring it. */
    private void call(Connection c, String member, String signature, Object... args) {
        BodyWriter w = new BodyWriter();
        for (Object a : args) {
            if (a instanceof String s) {
                w.writeString(s);
            } else {
                w.writeUint32((Long) a);
            }
        }
        byte[] body = w.toByteArray();
        BodyReader r = new BodyReader(ByteBuffer.wrap(body), 0, body.length, ByteOrder.LITTLE_ENDIAN, signature);
        driver.handle(new DriverCall(c, Message.METHOD_CALL, 0, ++serial, DriverTables.PATH, DriverTables.IFACE, member,
                signature, r));
    }

    /** The last message queued for {@code c}, the others dropped. */
    private static Message last(Connection c) {
        Message m;
        Message last = null;
        while ((m = c.pool().pop()) != null) {
            last = m;
        }
        assertNotNull(last, "an answer");
        return last;
    }

    private static byte[] bytes(SealedPayload p) {
        byte[] b = new byte[p.size()];
        for (int i = 0; i < b.length; i++) {
            b[i] = p.byteAt(i);
        }
        return b;
    }

    /** The answer is {@code error} and its one string argument is exactly {@code text}. */
    private static void assertError(Connection c, String error, String text) {
        Message m = last(c);
        assertEquals(Message.ERROR, m.type());
        assertEquals(error, m.errorName());
        byte[] frame = bytes(m.payload());
        byte[] t = text.getBytes(StandardCharsets.UTF_8);
        int end = frame.length - 1; // the string's NUL ends the frame
        assertEquals(0, frame[end]);
        String body = new String(frame, end - t.length, t.length, StandardCharsets.UTF_8);
        assertEquals(text, body);
        int len = ByteBuffer.wrap(frame, end - t.length - 4, 4).order(ByteOrder.LITTLE_ENDIAN).getInt();
        assertEquals(t.length, len, "the string's length");
    }

    private static void assertReplyCode(Connection c, int code) {
        Message m = last(c);
        assertEquals(Message.METHOD_RETURN, m.type());
        byte[] frame = bytes(m.payload());
        assertEquals(code, ByteBuffer.wrap(frame, frame.length - 4, 4).order(ByteOrder.LITTLE_ENDIAN).getInt());
    }

    @Test
    void requestNameRulesComeInDbusDaemonsOrderWithItsTexts() {
        Connection c = client();
        call(c, "RequestName", "su", "not a name", 0L);
        assertError(c, DBusErrors.INVALID_ARGS, "Requested bus name \"not a name\" is not valid");
        call(c, "RequestName", "su", ":1.99", 0L);
        assertError(c, DBusErrors.INVALID_ARGS, "Cannot acquire a service starting with ':' such as \":1.99\"");
        call(c, "RequestName", "su", Bus.DRIVER_NAME, 0L);
        assertError(c, DBusErrors.INVALID_ARGS, "Connection \"" + c.uniqueName() + "\" is not allowed to own the service \""
                + Bus.DRIVER_NAME + "\"because it is reserved for D-Bus' use only");
        c.setPolicy(receiveOnly()); // may own nothing
        call(c, "RequestName", "su", "com.example.A", 0L);
        assertError(c, DBusErrors.ACCESS_DENIED, "Connection \"" + c.uniqueName()
                + "\" is not allowed to own the service \"com.example.A\" due to security policies in the configuration file");
        c.setPolicy(ConnectionPolicy.ALLOW_ALL);
        call(c, "RequestName", "su", "com.example.A", 0L);
        assertReplyCode(c, NameRegistry.REPLY_PRIMARY_OWNER);
        assertSame(c, bus.resolve("com.example.A"));
        call(c, "RequestName", "su", "com.example.B", 0L);
        assertReplyCode(c, NameRegistry.REPLY_PRIMARY_OWNER);
        call(c, "RequestName", "su", "com.example.C", 0L);
        assertError(c, DBusErrors.LIMITS_EXCEEDED, "Connection \"" + c.uniqueName() + "\" is not allowed to own more services "
                + "(increase limits in configuration file if required; max_names_per_connection=3)");
        assertEquals(List.of("com.example.A", "com.example.B"), new ArrayList<>(c.ownedNames()));
    }

    @Test
    void releaseNameRulesAndReplies() {
        Connection c = client();
        call(c, "ReleaseName", "s", "not a name");
        assertError(c, DBusErrors.INVALID_ARGS, "Given bus name \"not a name\" is not valid");
        call(c, "ReleaseName", "s", ":1.99");
        assertError(c, DBusErrors.INVALID_ARGS, "Cannot release a service starting with ':' such as \":1.99\"");
        call(c, "ReleaseName", "s", Bus.DRIVER_NAME);
        assertError(c, DBusErrors.INVALID_ARGS, "Cannot release the " + Bus.DRIVER_NAME
                + " service because it is owned by the bus");
        call(c, "ReleaseName", "s", "com.example.A");
        assertReplyCode(c, NameRegistry.RELEASE_NON_EXISTENT);
        call(c, "RequestName", "su", "com.example.A", 0L);
        call(c, "ReleaseName", "s", "com.example.A");
        assertReplyCode(c, NameRegistry.RELEASE_RELEASED);
        assertEquals(null, bus.resolve("com.example.A"));
    }

    @Test
    void matchRulesKeepTheLimitAndNotFoundTexts() {
        Connection c = client();
        call(c, "AddMatch", "s", "type='signal'");
        assertEquals(Message.METHOD_RETURN, last(c).type());
        call(c, "AddMatch", "s", "type='signal',member='X'");
        assertError(c, DBusErrors.LIMITS_EXCEEDED, "Connection \"" + c.uniqueName() + "\" is not allowed to add more match rules "
                + "(increase limits in configuration file if required; max_match_rules_per_connection=1)");
        call(c, "RemoveMatch", "s", "type='signal',member='X'");
        assertError(c, DBusErrors.MATCH_RULE_NOT_FOUND, "The given match rule wasn't found and can't be removed");
        call(c, "RemoveMatch", "s", "type='signal'");
        assertEquals(Message.METHOD_RETURN, last(c).type());
        assertEquals(0, c.matchRuleCount());
        assertTrue(bus.matches().size() == 0);
    }
}
