// Invariants: a pure function of (messages, allow-list, excluded names, options): no clock, no
// randomness, no dependence on the bus that produced the messages; the input list is never
// modified; every message is either rendered into exactly one stream or removed for a reason
// listed in the class comment (never silently).
package org.kdbusbridge.bridge.migration;

import org.kdbusbridge.bridge.client.BusMessage;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.kdbusbridge.bridge.protocol.WireFormat;

/**
 * Turns a bus transcript into something two runs can be compared on. The rules (also in
 * docs/migration.md):
 * <ol>
 * <li><b>Own traffic removed.</b> Messages from or to the tools' connections (the monitor,
 *     the end-of-run marker, given as excluded names), and driver signals naming them, are
 *     dropped. So are driver calls a {@code drop-call} allow-list rule covers, and their replies.</li>
 * <li><b>Unique names</b> become {@code :A, :B, ...} in order of first appearance in the
 *     transcript (sender, destination, then every string in the body, e.g. NameOwnerChanged
 *     arguments and match rules). A Hello without a SENDER field is attributed to the unique
 *     name its reply returns.</li>
 * <li><b>Serials</b> are not shown. Method calls are numbered per sender ({@code c1, c2, ...});
 *     a reply shows the call it answers as {@code re :A.c2}. Signals are not numbered, so a
 *     lost signal shifts nothing else.</li>
 * <li><b>Timestamps</b> never enter a transcript; strings of 32 hex digits (GUIDs, machine
 *     ids) become {@code <guid>}.</li>
 * <li><b>Streams.</b> Order is compared only where a bus guarantees it. A client's messages
 *     form the stream {@code peer :A} (one socket: FIFO on any bus). The driver's messages are
 *     split by what they concern: replies and errors to a peer ({@code driver -> :A}), the
 *     NameOwnerChanged history of one name ({@code driver: owner of NAME}) and NameAcquired /
 *     NameLost of one name at one peer ({@code driver -> :A about NAME}). Signals that two
 *     unrelated peers cause at the same time may interleave differently on two runs (the OS
 *     decides which client the bus reads first); they land in different streams, so they are
 *     grouped, not ordered, against each other.</li>
 * <li><b>Allow-list</b> rules (see {@link AllowList}) mask or remove known differences in what
 *     the driver says; every application is counted and reported.</li>
 * <li>Optionally ({@link #withoutConnectionSetup}) Hello, its reply and the driver's signals
 *     about a unique name appearing are removed: a replayed capture may not contain them.</li>
 * </ol>
 */
public final class Normalizer {
    private static final Pattern UNIQUE = Pattern.compile(":\\d+\\.\\d+");
    private static final Pattern GUID = Pattern.compile("\\b[0-9a-fA-F]{32}\\b");
    private static final String PROPERTIES = "org.freedesktop.DBus.Properties";

    private final AllowList allow;
    private final Set<String> excluded;
    private boolean dropSetup;

    public Normalizer(AllowList allow, Set<String> excludedUniqueNames) {
        this.allow = allow;
        this.excluded = Set.copyOf(excludedUniqueNames);
    }

    /** Also removes connection set-up (Hello and the driver's messages about new unique names). */
    public Normalizer withoutConnectionSetup() {
        this.dropSetup = true;
        return this;
    }

    private record Key(String sender, long serial) { }

    public NormalizedTranscript normalize(List<BusMessage> in) {
        // Pass 1: who sent each Hello, and every call by (sender, serial).
        Map<Integer, String> helloSender = new HashMap<>();
        for (int i = 0; i < in.size(); i++) {
            BusMessage m = in.get(i);
            if (m.isCall() && m.sender() == null && "Hello".equals(m.member()) && m.toDriver()) {
                for (int j = i + 1; j < in.size(); j++) {
                    BusMessage r = in.get(j);
                    if (r.fromDriver() && r.isReturn() && r.replySerial() == m.serial() && r.stringArg(0) != null
                            && r.stringArg(0).equals(r.destination())) {
                        helloSender.put(i, r.destination());
                        break;
                    }
                }
            }
        }
        Map<Key, BusMessage> calls = new HashMap<>();
        Set<Key> droppedCalls = new HashSet<>();
        Map<AllowList.Rule, Integer> allowances = new LinkedHashMap<>();
        List<BusMessage> kept = new ArrayList<>();
        List<String> senders = new ArrayList<>();
        for (int i = 0; i < in.size(); i++) {
            BusMessage m = in.get(i);
            String sender = m.sender() != null ? m.sender() : helloSender.get(i);
            if (isOwn(m, sender)) continue;
            if (m.isCall()) {
                Key k = new Key(sender, m.serial());
                calls.put(k, m);
                AllowList.Rule r = m.toDriver() ? allow.memberRule(AllowList.Kind.DROP_CALL, m.qualifiedMember()) : null;
                if (r != null) {
                    droppedCalls.add(k);
                    allowances.merge(r, 1, Integer::sum);
                    continue;
                }
                if (dropSetup && m.toDriver() && "Hello".equals(m.member())) {
                    droppedCalls.add(k);
                    continue;
                }
            } else if (m.isReply() && droppedCalls.contains(new Key(m.destination(), m.replySerial()))) {
                continue;
            }
            if (dropSetup && m.fromDriver() && m.isSignal() && isSetupSignal(m)) continue;
            kept.add(m);
            senders.add(sender);
        }

        // Pass 2: labels in order of first appearance.
        Map<String, String> labels = new LinkedHashMap<>();
        for (int i = 0; i < kept.size(); i++) {
            BusMessage m = kept.get(i);
            label(labels, senders.get(i));
            label(labels, m.destination());
            if (m.body() != null) collectNames(m.body(), labels);
        }

        // Pass 3: render into streams.
        Map<String, List<String>> streams = new LinkedHashMap<>();
        List<String> errors = new ArrayList<>();
        Map<String, Integer> callCounter = new HashMap<>();
        Map<Key, String> callIds = new HashMap<>();
        for (int i = 0; i < kept.size(); i++) {
            BusMessage m = kept.get(i);
            String sender = senders.get(i);
            String who = sender == null ? "?" : names(sender, labels);
            StringBuilder line = new StringBuilder(BusMessage.typeName(m.type()));
            BusMessage call = m.isReply() ? calls.get(new Key(m.destination(), m.replySerial())) : null;
            if (m.isCall()) {
                int n = callCounter.merge(who, 1, Integer::sum);
                callIds.put(new Key(sender, m.serial()), who + ".c" + n);
                line.append(" c").append(n);
            }
            if (m.isReply()) {
                String id = callIds.get(new Key(m.destination(), m.replySerial()));
                line.append(" re ").append(id != null ? id : "?");
                if (call != null) line.append(" (").append(call.qualifiedMember()).append(')');
            }
            if ((m.flags() & WireFormat.NO_REPLY_EXPECTED) != 0) line.append(" [no-reply]");
            if ((m.flags() & WireFormat.NO_AUTO_START) != 0) line.append(" [no-auto-start]");
            if ((m.flags() & WireFormat.ALLOW_INTERACTIVE_AUTHORIZATION) != 0) line.append(" [interactive]");
            if (!m.isReply()) {
                line.append(" -> ").append(m.destination() == null ? "*" : names(m.destination(), labels));
                line.append(' ').append(m.path()).append(' ').append(m.qualifiedMember());
            } else if (!m.fromDriver()) {
                line.append(" -> ").append(m.destination() == null ? "*" : names(m.destination(), labels));
            }
            if (m.isError()) line.append(' ').append(m.errorName());
            line.append(" (").append(m.signature()).append(')');
            if (m.unixFds() > 0) line.append(" fds=").append(m.unixFds());
            line.append(' ').append(body(m, call, labels, allowances));
            String stream = streamOf(m, who, labels);
            streams.computeIfAbsent(stream, k -> new ArrayList<>()).add(line.toString());
            if (m.isError()) {
                errors.add(m.errorName() + " to " + names(m.destination(), labels)
                        + (call != null ? " (re " + call.qualifiedMember() + ")" : ""));
            }
        }
        return new NormalizedTranscript(streams, errors, allowances, kept.size());
    }

    private boolean isOwn(BusMessage m, String sender) {
        if (sender != null && excluded.contains(sender)) return true;
        if (m.destination() != null && excluded.contains(m.destination())) return true;
        if (m.fromDriver() && m.isSignal() && m.body() != null) {
            for (Object o : m.body()) {
                if (o instanceof String s && excluded.contains(s)) return true;
            }
        }
        return false;
    }

    private static boolean isSetupSignal(BusMessage m) {
        String a0 = m.stringArg(0);
        return a0 != null && UNIQUE.matcher(a0).matches()
                && ("NameAcquired".equals(m.member()) || ("NameOwnerChanged".equals(m.member()) && "".equals(m.stringArg(1))));
    }

    private static void label(Map<String, String> labels, String name) {
        if (name == null || !UNIQUE.matcher(name).matches() || labels.containsKey(name)) return;
        labels.put(name, ":" + letters(labels.size()));
    }

    static String letters(int n) {
        StringBuilder sb = new StringBuilder();
        n++;
        while (n > 0) {
            n--;
            sb.insert(0, (char) ('A' + n % 26));
            n /= 26;
        }
        return sb.toString();
    }

    private static void collectNames(Object v, Map<String, String> labels) {
        if (v instanceof String s) {
            Matcher mt = UNIQUE.matcher(s);
            while (mt.find()) label(labels, mt.group());
        } else if (v instanceof List<?> l) {
            for (Object o : l) collectNames(o, labels);
        } else if (v instanceof Map<?, ?> mp) {
            mp.forEach((k, x) -> {
                collectNames(k, labels);
                collectNames(x, labels);
            });
        } else if (v instanceof Object[] a) {
            for (Object o : a) collectNames(o, labels);
        }
    }

    /** Replaces every unique name in {@code s} by its label and every GUID by {@code <guid>}. */
    static String names(String s, Map<String, String> labels) {
        if (s == null) return null;
        Matcher mt = UNIQUE.matcher(s);
        StringBuilder sb = new StringBuilder();
        while (mt.find()) {
            String l = labels.getOrDefault(mt.group(), mt.group());
            mt.appendReplacement(sb, Matcher.quoteReplacement(l));
        }
        mt.appendTail(sb);
        return GUID.matcher(sb).replaceAll("<guid>");
    }

    private String streamOf(BusMessage m, String who, Map<String, String> labels) {
        if (!m.fromDriver()) return "peer " + who;
        String dest = m.destination() == null ? null : names(m.destination(), labels);
        if (m.isReply()) return "driver -> " + dest;
        String a0 = m.stringArg(0);
        if (m.isSignal() && "NameOwnerChanged".equals(m.member()) && a0 != null) {
            return "driver: owner of " + names(a0, labels);
        }
        if (m.isSignal() && dest != null && a0 != null && ("NameAcquired".equals(m.member()) || "NameLost".equals(m.member()))) {
            return "driver -> " + dest + " about " + names(a0, labels);
        }
        return dest == null ? "driver broadcast" : "driver -> " + dest;
    }

    private String body(BusMessage m, BusMessage call, Map<String, String> labels, Map<AllowList.Rule, Integer> allowances) {
        if (m.body() == null) return "<undecodable body: " + m.bodyError() + ">";
        boolean driverReply = m.fromDriver() && m.isReply() && call != null;
        if (driverReply && m.isReturn()) {
            AllowList.Rule r = allow.memberRule(AllowList.Kind.MASK_REPLY, call.qualifiedMember());
            if (r != null) {
                allowances.merge(r, 1, Integer::sum);
                return "<masked>";
            }
            if ((PROPERTIES + ".Get").equals(call.qualifiedMember()) && call.stringArg(1) != null) {
                for (AllowList.Rule p : allow.ofKind(AllowList.Kind.MASK_PROPERTY)) {
                    if (p.argument().equals(call.stringArg(1))) {
                        allowances.merge(p, 1, Integer::sum);
                        return "<masked>";
                    }
                }
            }
        }
        List<Object> body = m.body();
        if (m.fromDriver() && m.isReturn()) {
            Object[] holder = {body};
            for (AllowList.Rule p : allow.ofKind(AllowList.Kind.MASK_PROPERTY)) {
                if (maskProperty(holder, p.argument())) allowances.merge(p, 1, Integer::sum);
            }
            for (AllowList.Rule d : allow.ofKind(AllowList.Kind.DROP_STRING)) {
                if (dropString(holder, d.argument())) allowances.merge(d, 1, Integer::sum);
            }
            AllowList.Rule sort = call != null ? allow.memberRule(AllowList.Kind.SORT_REPLY, call.qualifiedMember()) : null;
            if (sort != null && sortArrays(holder)) allowances.merge(sort, 1, Integer::sum);
            @SuppressWarnings("unchecked")
            List<Object> b = (List<Object>) holder[0];
            body = b;
        }
        return names(BusMessage.render(body), labels);
    }

    /** Replaces holder[0] by a copy with map entries named {@code key} masked; true if any. */
    private static boolean maskProperty(Object[] holder, String key) {
        boolean[] changed = {false};
        holder[0] = transform(holder[0], v -> v, (k, v) -> {
            if (key.equals(k)) {
                changed[0] = true;
                return "<masked>";
            }
            return v;
        });
        return changed[0];
    }

    /** Replaces holder[0] by a copy with every array of strings sorted; true if the order changed. */
    private static boolean sortArrays(Object[] holder) {
        boolean[] changed = {false};
        List<Object> args = new ArrayList<>();
        for (Object arg : (List<?>) holder[0]) { // each argument, never the argument list itself
            args.add(transform(arg, v -> {
            if (v instanceof List<?> l && !l.isEmpty() && l.stream().allMatch(String.class::isInstance)) {
                List<String> c = new ArrayList<>();
                l.forEach(o -> c.add((String) o));
                c.sort(null);
                if (!c.equals(l)) changed[0] = true;
                return new ArrayList<Object>(c);
            }
            return v;
            }, (k, v) -> v));
        }
        holder[0] = args;
        return changed[0];
    }

    /** Replaces holder[0] by a copy with {@code value} removed from every array; true if any. */
    private static boolean dropString(Object[] holder, String value) {
        boolean[] changed = {false};
        holder[0] = transform(holder[0], v -> {
            if (v instanceof List<?> l && l.contains(value)) {
                changed[0] = true;
                List<Object> c = new ArrayList<>(l);
                c.removeIf(value::equals);
                return c;
            }
            return v;
        }, (k, v) -> v);
        return changed[0];
    }

    private static Object transform(Object v, java.util.function.UnaryOperator<Object> onValue,
                                    java.util.function.BinaryOperator<Object> onEntry) {
        if (v instanceof List<?> l) {
            List<Object> c = new ArrayList<>(l.size());
            for (Object o : l) c.add(transform(o, onValue, onEntry));
            return onValue.apply(c);
        }
        if (v instanceof Map<?, ?> mp) {
            Map<Object, Object> c = new LinkedHashMap<>();
            mp.forEach((k, x) -> c.put(k, onEntry.apply(k, transform(x, onValue, onEntry))));
            return onValue.apply(c);
        }
        if (v instanceof Object[] a) {
            Object[] c = new Object[a.length];
            for (int i = 0; i < a.length; i++) c[i] = transform(a[i], onValue, onEntry);
            return onValue.apply(c);
        }
        return onValue.apply(v);
    }
}
