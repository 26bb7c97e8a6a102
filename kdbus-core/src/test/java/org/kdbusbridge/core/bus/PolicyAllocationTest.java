package org.kdbusbridge.core.bus;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.kdbusbridge.core.Fixtures;
import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.connection.Credentials;
import org.kdbusbridge.core.match.MatchRule;
import org.kdbusbridge.core.message.Message;
import org.kdbusbridge.core.policy.ConnectionPolicy;
import org.kdbusbridge.core.policy.PolicyRule;
import org.kdbusbridge.core.policy.PolicyRuleParser;

/**
 * An allowed message allocates nothing in the bus, even when the policies are not the all-allowed
 * fast path and every rule is scanned: a unicast call (send and receive rules) and a broadcast
 * signal (the sender's send rules and each receiver's receive rules).
 */
class PolicyAllocationTest {
    private static final String NAME = "com.example.A";
    private static final int ROUNDS = 20_000;

    private static ConnectionPolicy policy(String... elementThenKv) {
        List<PolicyRule> rules = new ArrayList<>();
        PolicyRuleParser.Principals none = PolicyRuleParser.Principals.NONE;
        for (String rule : elementThenKv) {
            String[] w = rule.split(" ");
            Map<String, String> attrs = new LinkedHashMap<>();
            for (int i = 1; i < w.length; i++) {
                String[] kv = w[i].split("=", 2);
                attrs.put(kv[0], kv[1]);
            }
            try {
                rules.add(PolicyRuleParser.parse(w[0], attrs, none).rule());
            } catch (Exception e) {
                throw new AssertionError(e);
            }
        }
        return ConnectionPolicy.compile(rules);
    }

    /** system.conf's shape plus what the test needs: every check scans rules. */
    private static ConnectionPolicy systemLike() {
        return policy("deny send_type=method_call", "allow send_type=signal",
                "allow send_requested_reply=true send_type=method_return",
                "allow send_requested_reply=true send_type=error", "allow send_destination=" + NAME,
                "deny send_interface=com.example.Never", "allow receive_type=method_call",
                "allow receive_type=signal", "deny receive_interface=com.example.Never",
                "allow receive_sender=" + NAME);
    }

    @Test
    void routingAllowedMessagesThroughScannedRulesAllocatesNothing() throws Exception {
        Bus bus = new Bus(new BusLimits());
        List<String> logged = new ArrayList<>();
        bus.setPolicyLog(logged::add);
        Connection service = client(bus);
        Connection caller = client(bus);
        Connection listener = client(bus);
        bus.names().request(service, NAME, 0, new ArrayList<>());
        bus.matches().add(listener, MatchRule.parse("type='signal'"));
        bus.matches().add(service, MatchRule.parse("type='signal',member='S'"));
        assertFalse(caller.policy().allowsAllSends());
        assertFalse(service.policy().allowsAllReceives());

        Message[] calls = new Message[2 * ROUNDS];
        Message[] signals = new Message[2 * ROUNDS];
        for (int i = 0; i < calls.length; i++) {
            calls[i] = Fixtures.call(NAME, i + 1, Message.FLAG_NO_REPLY_EXPECTED, 16);
            signals[i] = Fixtures.signal("S");
        }
        com.sun.management.ThreadMXBean mx =
                (com.sun.management.ThreadMXBean) java.lang.management.ManagementFactory.getThreadMXBean();
        long me = Thread.currentThread().getId();
        long before = 0;
        for (int i = 0; i < calls.length; i++) {
            if (i == ROUNDS) { // the first half is warm-up (JIT, lazy init, queue growth)
                before = mx.getThreadAllocatedBytes(me);
            }
            if (bus.send(caller, calls[i]) != Delivery.OK || bus.send(service, signals[i]) != Delivery.OK) {
                throw new AssertionError("refused at " + i);
            }
            // A popped message is let go; the receivers' queues never grow.
            service.pool().pop();
            service.pool().pop();
            listener.pool().pop();
        }
        long perMessage = (mx.getThreadAllocatedBytes(me) - before) / (2L * ROUNDS);
        // A denial text or a boxed argument list per check costs hundreds of bytes per message; a
        // stray deoptimisation during the run costs a few averaged out.
        assertTrue(perMessage < 16, "routing allocated " + perMessage + " B per message");
        assertTrue(logged.isEmpty(), logged.toString());
        assertEquals(null, service.pool().pop());
        assertEquals(null, listener.pool().pop());
    }

    private static Connection client(Bus bus) {
        Connection c = bus.connect(new Credentials(1000, 1000, 1), x -> { });
        bus.hello(c);
        c.setPolicy(systemLike());
        return c;
    }
}
