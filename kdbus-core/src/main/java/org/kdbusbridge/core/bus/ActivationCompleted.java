package org.kdbusbridge.core.bus;

import java.util.List;

import org.kdbusbridge.core.message.Message;

/**
 * What handing an activator's waiting messages to the name's new owner did: {@code drained}
 * messages left the activator; those not in {@code refused} or {@code denied} are now queued
 * on the owner, with their reply slots. {@code refused}: messages with fds the owner cannot
 * take (their callers get NotSupported); {@code denied}: messages the owner's names or receive
 * rules refuse (their callers get AccessDenied with the text). Reply budgets and fds of both
 * are already given back.
 */
public record ActivationCompleted(int drained, List<Message> refused, List<Rejection> denied) {
    static final ActivationCompleted NONE = new ActivationCompleted(0, List.of(), List.of());

    /** A waiting message the policy refused at hand-over, with its AccessDenied text. */
    public record Rejection(Message message, String text) { }
}
