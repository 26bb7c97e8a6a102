package org.kdbusbridge.core.bus;

import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import org.kdbusbridge.core.activation.Activator;
import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.message.Message;
import org.kdbusbridge.core.message.QueuedMessage;

/**
 * The activators: which names can be started, the messages waiting on them, and handing
 * those messages over to the owner that appears (or back to their callers when it does not).
 *
 * Invariants: the pending activation count (max_pending_service_starts) equals the messages
 * waiting on activators plus the StartServiceByName callers the launcher reports through
 * {@link #addWaiters}; a waiting message holds one queue hold ({@link Connection#holdQueued})
 * and its fds' reference until it is moved or returned, and a waiting call keeps its caller's
 * reply budget until then; a message handed to the owner passes the owner's receive rules;
 * each RequestName that makes an owner of an activatable name leaves its activator a summary of
 * exactly what that owner was handed (empty without a start), which only that owner is shown.
 */
final class Activations {
    private final BusState state;
    private final Map<String, Activator> activators = new HashMap<>();
    private final Set<String> listedActivatable = new HashSet<>();
    /**
     * Names whose service file went while a start of theirs was in flight: as dbus-daemon's
     * pending activations, their activator stays (what waits still gets the start's outcome) but
     * takes nothing new, and goes once the start ends. At most one per start in flight.
     */
    private final Set<String> retired = new HashSet<>();
    private final PolicyGate gate;
    private final QuotaGate quota;
    private Bus.ActivationListener listener = name -> { };
    private int entries;

    Activations(BusState state, PolicyGate gate, QuotaGate quota) {
        this.state = state;
        this.gate = gate;
        this.quota = quota;
    }

    /** Messages waiting on activators plus the StartServiceByName callers waiting. */
    int entries() { return entries; }
    void addWaiters(int delta) { entries += delta; }
    boolean limitReached() { return entries >= state.limits().maxPendingServiceStarts; }

    void setListener(Bus.ActivationListener listener) {
        this.listener = listener;
    }

    Activator get(String name) {
        return activators.get(name);
    }

    /** See {@link Bus#lookupActivator}. */
    Activator lookup(String name) {
        if (!name.isEmpty() && name.charAt(0) != ':') {
            listener.activatableLookup(name);
        }
        return retired.contains(name) ? null : activators.get(name);
    }

    Set<String> listed() {
        return Collections.unmodifiableSet(listedActivatable);
    }

    /** Queues {@code m} on {@code a} (with a hold) and starts {@code a} if idle. */
    void enqueue(Activator a, Message m) {
        a.enqueue(m);
        Connection.holdQueued(m);
        entries++;
        if (a.beginActivation()) {
            listener.activationRequested(a.name());
        }
    }

    /** See {@link Bus#setActivatable(Set, Set)}. */
    List<Message> setActivatable(Set<String> names, Set<String> unlisted) {
        List<Message> orphaned = new ArrayList<>();
        activators.entrySet().removeIf(e -> {
            if (names.contains(e.getKey()) || unlisted.contains(e.getKey())) {
                return false;
            }
            if (e.getValue().isStarting()) {
                retired.add(e.getKey());
                return false;
            }
            orphaned.addAll(releaseFds(releaseSlots(drain(e.getValue()))));
            return true;
        });
        for (String n : unlisted) {
            activators.computeIfAbsent(n, Activator::new);
            retired.remove(n);
        }
        for (String n : names) {
            activators.computeIfAbsent(n, Activator::new);
            retired.remove(n);
        }
        listedActivatable.clear();
        listedActivatable.addAll(names);
        return orphaned;
    }

    /** See {@link Bus#activate}. */
    boolean activate(String name) {
        Activator a = activators.get(name);
        if (a == null) {
            return false;
        }
        if (a.beginActivation()) {
            listener.activationRequested(name);
        }
        return true;
    }

    /** See {@link Bus#completeActivation}. */
    ActivationCompleted completeActivation(String name) {
        Activator a = activators.get(name);
        Connection owner = state.names().owner(name);
        if (a == null || owner == null) {
            return ActivationCompleted.NONE;
        }
        if (a.queued() == 0 && !a.isStarting()) {
            a.recordHandOver(owner.id(), List.of()); // an owner without a start: nothing caused it
            return ActivationCompleted.NONE;
        }
        List<Message> moved = a.drain();
        List<QueuedMessage> given = new ArrayList<>(moved.size());
        entries -= moved.size();
        assert entries >= 0 : "pending activation count went negative";
        List<Message> refused = new ArrayList<>(0);
        List<ActivationCompleted.Rejection> denied = new ArrayList<>(0);
        for (Message m : moved) {
            // The bus's own messages (sender null) meet the owner's receive rules only.
            if (!gate.allowed(m.sender(), owner, owner, m, false)) {
                if (m.expectsReply() && m.sender() != null) {
                    quota.replyNoLongerExpected(m.sender(), 1);
                }
                // The text first, while the message is still whole.
                denied.add(new ActivationCompleted.Rejection(m, gate.denial(m.sender(), owner, owner, m, false)));
                if (m.fds() != null) {
                    m.fds().release();
                }
                Connection.releaseQueued(m); // the activator's hold (its sender's incoming charge)
                continue;
            }
            if (m.fds() != null && !owner.acceptsUnixFds()) {
                // Can't be written to this owner; its caller's reply budget comes back.
                if (m.expectsReply() && m.sender() != null) {
                    quota.replyNoLongerExpected(m.sender(), 1);
                }
                m.fds().release();
                Connection.releaseQueued(m);
                refused.add(m);
                continue;
            }
            if (m.expectsReply() && m.sender() != null
                    && (m.sender().isClosed() || !state.replySlots().open(owner, m.sender(), m.serial()))) {
                // Its caller left while it waited, or a call with its serial is open already:
                // nobody is owed a reply, so the reply budget and the charge come back.
                quota.replyNoLongerExpected(m.sender(), 1);
            }
            owner.push(m);
            if (owner.endpointState() != null && m.sender() != null && m.sender().uniqueName() != null) {
                owner.endpointState().delivered(m.sender().uniqueName()); // its caller becomes visible, as in route
            }
            given.add(QueuedMessage.of(m)); // only what the owner may see: refused ones are not shown
            Connection.releaseQueued(m); // the activator's hold; the owner's pool holds its own
            if (m.fds() != null) {
                m.fds().release(); // the activator's reference; the owner's pool holds its own
            }
        }
        a.recordHandOver(owner.id(), given);
        forgetIfRetired(name);
        return new ActivationCompleted(moved.size(), refused, denied);
    }

    /**
     * PeekActivationQueue: what {@code c} was handed when it got {@code name} at the end of a
     * start, while it is still the name's primary owner; refused for anyone else, so a peer
     * learns only about calls that were addressed to a name it owns.
     */
    HandOverPeek handedOver(Connection c, String name) {
        if (!org.kdbusbridge.core.name.NameSyntax.isValidBusName(name) || name.charAt(0) == ':') {
            return HandOverPeek.denied(Denial.invalidArgs("Not a valid well-known bus name: '" + name + "'"));
        }
        if (state.names().owner(name) != c) {
            return HandOverPeek.denied(Denial.accessDenied("Connection " + c.uniqueName()
                    + " is not the primary owner of " + name));
        }
        if (c.peekAnswerAt() >= 0 && c.pool().stillQueued(c.peekAnswerAt())) {
            return HandOverPeek.denied(Denial.limitsExceeded(QueueViews.PEEK_PENDING, false));
        }
        c.setPeekAnswerAt(c.pool().pushedCount()); // the answer is queued next, in the same step
        Activator a = activators.get(name);
        return new HandOverPeek(a == null ? List.of() : a.handedOver(c.id()), null);
    }

    /**
     * The activation of {@code name} failed (exec failure, exit, timeout): every waiting
     * message is returned so the bridge can send each caller the error.
     */
    List<Message> failActivation(String name) {
        Activator a = activators.get(name);
        if (a == null) {
            return List.of();
        }
        List<Message> waiting = releaseFds(releaseSlots(drain(a)));
        forgetIfRetired(name);
        return waiting;
    }

    /** A retired name's start has ended: its activator goes (see {@link #retired}). */
    private void forgetIfRetired(String name) {
        if (retired.remove(name)) {
            activators.remove(name);
        }
        assert retired.stream().allMatch(n -> activators.get(n) != null && activators.get(n).isStarting())
                : "a retired activator outlived its start";
    }

    /** Drops the activator's fd references of messages that will only get an error reply. */
    private static List<Message> releaseFds(List<Message> waiting) {
        for (Message m : waiting) {
            if (m.fds() != null) {
                m.fds().release();
            }
        }
        return waiting;
    }

    /** Gives back the reply budget (and its charge) that waiting calls were holding. */
    private List<Message> releaseSlots(List<Message> waiting) {
        for (Message m : waiting) {
            if (m.expectsReply() && m.sender() != null) {
                quota.replyNoLongerExpected(m.sender(), 1);
            }
        }
        return waiting;
    }


    private List<Message> drain(Activator a) {
        List<Message> out = a.drain();
        entries -= out.size();
        for (Message m : out) {
            Connection.releaseQueued(m);
        }
        return out;
    }
}
