package org.kdbusbridge.bridge.driver;

import java.util.function.Supplier;

import org.kdbusbridge.bridge.protocol.ProtocolException;
import org.kdbusbridge.core.bus.ActivationCompleted;
import org.kdbusbridge.core.bus.Bus;
import org.kdbusbridge.core.bus.Denial;
import org.kdbusbridge.core.bus.MatchChange;
import org.kdbusbridge.core.bus.NameOutcome;
import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.match.MatchRule;
import org.kdbusbridge.core.match.MatchRuleException;
import org.kdbusbridge.core.message.Message;
import org.kdbusbridge.core.name.NameRegistry;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What a connection claims on the bus: RequestName, ReleaseName, AddMatch, RemoveMatch. Each
 * decodes its arguments, calls one core operation and renders its record: a denial as one
 * error, a change as its signals then the reply (the driver's order, see {@link Driver}).
 */
final class ClaimMethods {
    // Logged under the driver's name, as before these methods had a class of their own.
    private static final Logger LOG = LoggerFactory.getLogger(Driver.class);

    private final Bus bus;
    private final DriverEmitter out;
    private final Supplier<ActivationHooks> activation;

    ClaimMethods(Bus bus, DriverEmitter out, Supplier<ActivationHooks> activation) {
        this.bus = bus;
        this.out = out;
        this.activation = activation;
    }

    void requestName(DriverCall call) throws ProtocolException {
        Connection c = call.caller();
        String name = call.body().readString();
        long flags = call.body().readUint32();
        NameOutcome request = bus.requestName(c, name, (int) flags);
        if (request.denied()) {
            deny(call, request.denial());
            return;
        }
        out.emit(request.changes());
        if (request.reply() == NameRegistry.REPLY_PRIMARY_OWNER) {
            // Messages that waited on the activator go first, then the reply (dbus-daemon order).
            ActivationCompleted handed = bus.completeActivation(name);
            for (Message m : handed.refused()) {
                if (m.expectsReply() && m.sender() != null && !m.sender().isClosed()) {
                    out.error(m.sender(), m.serial(), DBusErrors.NOT_SUPPORTED, DBusErrors.FDS_NOT_SUPPORTED_TEXT);
                }
            }
            // Refused by the new owner's names or receive rules: the caller is told, the
            // RequestName still succeeds (dbus-daemon, CVE-2014-3477).
            for (ActivationCompleted.Rejection r : handed.denied()) {
                Message m = r.message();
                if (m.sender() != null && !m.sender().isClosed()) {
                    out.error(m.sender(), m.serial(), DBusErrors.ACCESS_DENIED, r.text());
                }
            }
            activation.get().nameAcquired(name);
        }
        out.replyUint32(c, call.serial(), request.reply());
    }

    void releaseName(DriverCall call) throws ProtocolException {
        Connection c = call.caller();
        NameOutcome release = bus.releaseName(c, call.body().readString());
        if (release.denied()) {
            deny(call, release.denial());
            return;
        }
        out.emit(release.changes());
        out.replyUint32(c, call.serial(), release.reply());
    }

    /** Answers a refused core operation; per-connection limits are logged each time, as dbus-daemon does. */
    private void deny(DriverCall call, Denial d) {
        if (d.shouldLog()) {
            LOG.warn(d.text());
        }
        out.error(call, DBusErrors.of(d.reason()), d.text());
    }


    void addMatch(DriverCall call) throws ProtocolException {
        changeMatch(call, true);
    }

    void removeMatch(DriverCall call) throws ProtocolException {
        changeMatch(call, false);
    }

    /** AddMatch or RemoveMatch: the parsed rule, then the core's change, rendered. */
    private void changeMatch(DriverCall call, boolean add) throws ProtocolException {
        Connection c = call.caller();
        MatchRule rule = parseRule(call);
        if (rule == null) {
            return;
        }
        MatchChange change = add ? bus.addMatch(c, rule) : bus.removeMatch(c, rule);
        if (!change.done()) {
            deny(call, change.denial());
            return;
        }
        out.replyEmpty(c, call.serial());
    }

    /** The call's rule, or null once its MatchRuleInvalid (or LimitsExceeded) error is sent. */
    private MatchRule parseRule(DriverCall call) throws ProtocolException {
        String text = call.body().readString();
        try {
            return MatchRule.parse(text);
        } catch (MatchRuleException e) {
            out.error(call, e.isLimitExceeded() ? DBusErrors.LIMITS_EXCEEDED : DBusErrors.MATCH_RULE_INVALID, e.getMessage());
            return null;
        }
    }
}
