package org.kdbusbridge.core.endpoint;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * The whole rule set of one endpoint, with its metadata: an immutable value built from values
 * (the command-line syntax is parsed in the bridge). {@code filtering} false is
 * xdg-dbus-proxy without --filter: the rules are kept but nothing is filtered.
 * {@code sloppyNames}: every unique name's NameOwnerChanged is shown (the a11y bus).
 * {@code logMessages}: --log, for whoever renders a log; it changes no decision.
 * {@code appId} and {@code instanceId} may be null (the proxy front knows neither).
 */
public record EndpointFilter(String endpointId, String appId, String instanceId, boolean filtering,
        boolean sloppyNames, boolean logMessages, List<NameRule> nameRules, List<CallRule> callRules,
        List<CallRule> broadcastRules) {

    public EndpointFilter {
        Objects.requireNonNull(endpointId, "endpointId");
        nameRules = List.copyOf(nameRules);
        callRules = List.copyOf(callRules);
        broadcastRules = List.copyOf(broadcastRules);
    }

    /** The same rules with this app id and instance id (either may be null). */
    public EndpointFilter withIdentity(String app, String instance) {
        return new EndpointFilter(endpointId, app, instance, filtering, sloppyNames, logMessages, nameRules, callRules,
                broadcastRules);
    }

    public static Builder builder(String endpointId) {
        return new Builder(endpointId);
    }

    /** Collects rules in order; {@link #build} makes the value. */
    public static final class Builder {
        private final String endpointId;
        private String appId;
        private String instanceId;
        private boolean filtering;
        private boolean sloppyNames;
        private boolean logMessages;
        private final List<NameRule> names = new ArrayList<>();
        private final List<CallRule> calls = new ArrayList<>();
        private final List<CallRule> broadcasts = new ArrayList<>();

        private Builder(String endpointId) {
            this.endpointId = endpointId;
        }

        public Builder appId(String id) {
            this.appId = id;
            return this;
        }

        public Builder instanceId(String id) {
            this.instanceId = id;
            return this;
        }

        public Builder filtering(boolean on) {
            this.filtering = on;
            return this;
        }

        public Builder sloppyNames(boolean on) {
            this.sloppyNames = on;
            return this;
        }

        public Builder logMessages(boolean on) {
            this.logMessages = on;
            return this;
        }

        public Builder name(NameRule rule) {
            names.add(Objects.requireNonNull(rule));
            return this;
        }

        public Builder see(String pattern) {
            return name(NameRule.see(parsePattern(pattern)));
        }

        public Builder talk(String pattern) {
            return name(NameRule.talk(parsePattern(pattern)));
        }

        public Builder own(String pattern) {
            return name(NameRule.own(parsePattern(pattern)));
        }

        public Builder call(CallRule rule) {
            calls.add(Objects.requireNonNull(rule));
            return this;
        }

        public Builder broadcast(CallRule rule) {
            broadcasts.add(Objects.requireNonNull(rule));
            return this;
        }

        public EndpointFilter build() {
            return new EndpointFilter(endpointId, appId, instanceId, filtering, sloppyNames, logMessages, names, calls,
                    broadcasts);
        }

        /** "org.foo.*" is a subtree, anything else exact; a convenience for callers and tests. */
        private static NamePattern parsePattern(String p) {
            return p.endsWith(".*") ? NamePattern.subtreeOf(p.substring(0, p.length() - 2)) : NamePattern.exact(p);
        }
    }
}
