package org.kdbusbridge.compat.endpoint;

import java.io.IOException;
import java.time.Duration;
import java.util.List;
import java.util.function.Predicate;

import org.kdbusbridge.compat.harness.Message;
import org.kdbusbridge.compat.harness.RawClient;

/**
 * The sandboxed client: one raw connection through a front's socket, driven by the test thread only
 * (RawClient's pumped mode, every wait with a deadline).
 */
final class Insider implements AutoCloseable {
    static final Duration T = Duration.ofSeconds(10);

    private final RawClient c;

    private Insider(RawClient c) {
        this.c = c;
    }

    /**
     * Connects, says Hello, and settles: xdg-dbus-proxy learns who owns its policy names from
     * GetNameOwner calls of its own, sent right behind the Hello, and judges a message by unique name
     * with what it knows when the message reaches it. A message sent as soon as the Hello reply
     * arrived can beat those answers (a call to an owner's unique name then gets NameHasNoOwner).
     * One round trip after Hello is behind them on the bus, so once it returns the front knows.
     */
    static Insider connect(String frontAddress) throws IOException {
        Insider i = new Insider(RawClient.connectHello(frontAddress, T));
        i.barrier();
        return i;
    }

    String unique() {
        return c.uniqueName();
    }

    /** Sends and waits for the reply (return or error). */
    Message call(Message m) throws IOException {
        return c.call(m, T);
    }

    long send(Message m) throws IOException {
        return c.send(m);
    }

    Message callBus(String member, String sig, Object... args) throws IOException {
        return c.callBus(member, T, sig, args);
    }

    /**
     * Barrier: a GetId round trip through the front and the bus. When it returns, the bus has routed
     * whatever this client sent before, and the front has passed on (or dropped) whatever the bus had
     * queued for this client before the reply.
     */
    void barrier() throws IOException {
        Message r = callBus("GetId", null);
        if (r.type != Message.METHOD_RETURN) {
            throw new IOException("GetId through the front failed: " + r);
        }
        c.forget(m -> m == r);
    }

    /** Waits for a method call from outside; throws at the deadline. */
    Message awaitCall(String member) throws IOException {
        Message m = c.await(x -> x.type == Message.METHOD_CALL && member.equals(x.member), T, false);
        if (m == null) {
            throw new IOException("no call " + member + " reached the sandboxed client within " + T
                    + "; it received:\n" + String.join("\n", c.transcript()));
        }
        return m;
    }

    /** Everything received so far that matches {@code p}. */
    List<Message> received(Predicate<Message> p) {
        return c.messages().stream().filter(p).toList();
    }

    @Override
    public void close() {
        c.close();
    }
}
