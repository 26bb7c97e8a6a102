package org.kdbusbridge.core;

import java.util.ArrayList;
import java.util.List;

import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.connection.ConnectionSink;
import org.kdbusbridge.core.connection.Credentials;
import org.kdbusbridge.core.connection.ReceivePool;
import org.kdbusbridge.core.message.ArgSource;
import org.kdbusbridge.core.message.Message;
import org.kdbusbridge.core.message.SealedPayload;

/** Shared test helpers: a recording sink, an array-backed ArgSource and message builders. */
public final class Fixtures {
    private Fixtures() { }

    public static final String IFACE = "org.example.Iface";
    public static final String PATH = "/org/example/Obj";

    /** Records every onQueued call, in order. */
    public static final class RecordingSink implements ConnectionSink {
        public final List<Connection> queued = new ArrayList<>();

        @Override
        public void onQueued(Connection connection) {
            queued.add(connection);
        }
    }

    /** Array-backed arguments: a STRING, an OBJECT_PATH, or something else (null). */
    public static final class Args implements ArgSource {
        private final List<String> values = new ArrayList<>();
        private final List<Boolean> paths = new ArrayList<>();

        public static Args of(String... strings) {
            Args a = new Args();
            for (String s : strings) {
                a.str(s);
            }
            return a;
        }

        public Args str(String s) {
            values.add(s);
            paths.add(false);
            return this;
        }

        public Args path(String p) {
            values.add(p);
            paths.add(true);
            return this;
        }

        /** An argument that is neither a string nor an object path (e.g. an int32). */
        public Args other() {
            values.add(null);
            paths.add(false);
            return this;
        }

        @Override
        public String arg(int index) {
            return index < values.size() ? values.get(index) : null;
        }

        @Override
        public boolean isObjectPath(int index) {
            return index < paths.size() && paths.get(index);
        }
    }

    /** A stand-alone connection (not registered with any bus), with unique name ":1.{id}". */
    public static Connection conn(long id) {
        Connection c = new Connection(id, Credentials.UNKNOWN, x -> { }, new ReceivePool(Long.MAX_VALUE, Integer.MAX_VALUE));
        c.setUniqueNameOnce(":1." + id);
        return c;
    }

    public static Message msg(int type, int flags, long serial, long replySerial, String dest, String path,
                              String iface, String member, String errorName, int size, ArgSource args) {
        return new Message(type, flags, serial, replySerial, dest, path, iface, member, errorName,
                new SealedPayload(new byte[size]), args);
    }

    public static Message signal(String path, String iface, String member, ArgSource args) {
        return msg(Message.SIGNAL, Message.FLAG_NO_REPLY_EXPECTED, 1, Message.NO_REPLY_SERIAL, null, path, iface,
                member, null, 16, args);
    }

    public static Message signal(String member) {
        return signal(PATH, IFACE, member, null);
    }

    public static Message signalTo(String dest, String member) {
        return msg(Message.SIGNAL, Message.FLAG_NO_REPLY_EXPECTED, 1, Message.NO_REPLY_SERIAL, dest, PATH, IFACE,
                member, null, 16, null);
    }

    public static Message call(String dest, long serial) {
        return msg(Message.METHOD_CALL, 0, serial, Message.NO_REPLY_SERIAL, dest, PATH, IFACE, "Call", null, 16, null);
    }

    public static Message call(String dest, long serial, int flags, int size) {
        return msg(Message.METHOD_CALL, flags, serial, Message.NO_REPLY_SERIAL, dest, PATH, IFACE, "Call", null,
                size, null);
    }

    public static Message reply(String dest, long replySerial) {
        return msg(Message.METHOD_RETURN, Message.FLAG_NO_REPLY_EXPECTED, 1000 + replySerial, replySerial, dest, null,
                null, null, null, 8, null);
    }

    public static Message error(String dest, long replySerial) {
        return msg(Message.ERROR, Message.FLAG_NO_REPLY_EXPECTED, 2000 + replySerial, replySerial, dest, null, null,
                null, "org.example.Error.Failed", 8, null);
    }

    /** Everything in the pool, popped in order. */
    public static List<Message> drain(Connection c) {
        List<Message> out = new ArrayList<>();
        Message m;
        while ((m = c.pool().pop()) != null) {
            out.add(m);
        }
        return out;
    }
}
