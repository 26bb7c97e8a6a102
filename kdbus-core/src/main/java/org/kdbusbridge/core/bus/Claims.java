package org.kdbusbridge.core.bus;

import java.util.ArrayList;
import java.util.List;

import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.match.MatchIndex;
import org.kdbusbridge.core.match.MatchRule;
import org.kdbusbridge.core.name.NameChange;
import org.kdbusbridge.core.name.NameRegistry;
import org.kdbusbridge.core.name.NameSyntax;

/**
 * What a connection claims: well-known names and match rules. Each operation checks the bus's
 * rules on its arguments, the policy (own rules), the per-connection limit, then the uid's
 * quota, in dbus-daemon's order, before anything changes; a refusal changes nothing.
 *
 * Invariants: every match rule and every well-known name entry (primary or queued) is charged
 * to its connection's credentials uid as it appears and released as it goes, whatever removes
 * it (the registry and the index report each one, to the listeners set here); no connection
 * is taken past max_match_rules_per_connection rules or max_names_per_connection - 1 names
 * (a reload may lower them below what it holds).
 */
final class Claims {
    private static final String DRIVER_NAME = Bus.DRIVER_NAME;

    private final BusState state;
    private final QuotaGate quota;

    Claims(BusState state, QuotaGate quota, ConnectionTable table) {
        this.state = state;
        this.quota = quota;
        UserQuotas quotas = state.quotas();
        state.names().setEntryListener(new NameRegistry.EntryListener() {
            @Override
            public void added(Connection conn, String name) {
                quotas.charge(uidOf(conn), quotas.quota().cost(name));
                table.noteBusNames(conn);
            }

            @Override
            public void removed(Connection conn, String name) {
                quotas.release(uidOf(conn), quotas.quota().cost(name));
            }
        });
        state.matches().setRuleListener(new MatchIndex.RuleListener() {
            @Override
            public void added(Connection owner, MatchRule rule) {
                quotas.charge(uidOf(owner), quotas.quota().cost(rule));
            }

            @Override
            public void removed(Connection owner, MatchRule rule) {
                quotas.release(uidOf(owner), quotas.quota().cost(rule));
            }
        });
    }

    private static long uidOf(Connection c) {
        return QuotaGate.uidOf(c);
    }

    /**
     * AddMatch, after the rule parsed: max_match_rules_per_connection (dbus-daemon's check
     * and text), then the uid's quota; only then is the rule held.
     */
    MatchChange addMatch(Connection c, MatchRule rule) {
        int limit = state.limits().maxMatchRulesPerConnection;
        if (c.matchRuleCount() >= limit) {
            return new MatchChange(Denial.limitsExceeded("Connection \"" + c.uniqueName()
                    + "\" is not allowed to add more match rules "
                    + "(increase limits in configuration file if required; max_match_rules_per_connection=" + limit
                    + ")", false));
        }
        long cost = state.quotas().quota().cost(rule);
        if (!state.quotas().fits(uidOf(c), cost)) {
            return new MatchChange(Denial.limitsExceeded(
                    quota.overQuota(c, cost, "is not allowed to add more match rules", "AddMatch"), true));
        }
        state.matches().add(c, rule);
        assert c.matchRuleCount() <= limit : "max_match_rules_per_connection exceeded";
        return MatchChange.DONE;
    }

    /** RemoveMatch: MatchRuleNotFound if {@code c} has no such rule. */
    MatchChange removeMatch(Connection c, MatchRule rule) {
        if (!state.matches().remove(c, rule)) {
            return new MatchChange(new Denial(Denial.Reason.MATCH_RULE_NOT_FOUND,
                    "The given match rule wasn't found and can't be removed", false));
        }
        return MatchChange.DONE;
    }

    /**
     * RequestName: for a connection inside a filtering endpoint, first its OWN rule (as the proxy
     * in front of the bus); then, in dbus-daemon's order: a valid name, not a unique one, not the
     * bus's own, one the policy lets {@code c} own; then max_names_per_connection, then, if the request
     * would add an entry (primary or queued), the uid's quota; then the registry's change.
     */
    NameOutcome requestName(Connection c, String name, int flags) {
        if (c.endpoint() != null && c.endpoint().filtering() && !c.endpoint().mayOwn(name)) {
            // The endpoint's OWN rule, first: through xdg-dbus-proxy the bus never sees a name the
            // filter refuses, however malformed, reserved or unique it is. The driver's filter
            // refuses it before it gets here; this is the rule itself.
            return NameOutcome.denied(Denial.accessDenied(org.kdbusbridge.core.endpoint.EndpointErrors.ACCESS_DENIED));
        }
        Denial args = nameArgs(name, "Requested", "acquire");
        if (args != null) {
            return NameOutcome.denied(args);
        }
        if (DRIVER_NAME.equals(name)) {
            return NameOutcome.denied(Denial.invalidArgs("Connection \"" + c.uniqueName()
                    + "\" is not allowed to own the service \"" + name + "\"because it is reserved for D-Bus' use only"));
        }
        if (!c.policy().canOwn(name)) {
            return NameOutcome.denied(Denial.accessDenied("Connection \"" + c.uniqueName()
                    + "\" is not allowed to own the service \"" + name
                    + "\" due to security policies in the configuration file"));
        }
        int limit = state.limits().maxNamesPerConnection;
        if (c.ownedNames().size() + 1 >= limit) {
            return NameOutcome.denied(Denial.limitsExceeded("Connection \"" + c.uniqueName()
                    + "\" is not allowed to own more services "
                    + "(increase limits in configuration file if required; max_names_per_connection=" + limit + ")",
                    false));
        }
        long cost = state.quotas().quota().cost(name);
        if (state.names().wouldAddEntry(c, name, flags) && !state.quotas().fits(uidOf(c), cost)) {
            return NameOutcome.denied(Denial.limitsExceeded(
                    quota.overQuota(c, cost, "is not allowed to own more services", "RequestName"), true));
        }
        List<NameChange> changes = new ArrayList<>(1);
        int reply = state.names().request(c, name, flags, changes);
        assert reply != NameRegistry.REPLY_PRIMARY_OWNER || state.names().owner(name) == c : "primary owner not recorded";
        assert c.ownedNames().size() < limit : "max_names_per_connection exceeded";
        return new NameOutcome(reply, changes, null);
    }

    /** ReleaseName: a valid name, not a unique one, not the bus's own; then the registry's change. */
    NameOutcome releaseName(Connection c, String name) {
        Denial args = nameArgs(name, "Given", "release");
        if (args != null) {
            return NameOutcome.denied(args);
        }
        if (DRIVER_NAME.equals(name)) {
            return NameOutcome.denied(Denial.invalidArgs(
                    "Cannot release the " + DRIVER_NAME + " service because it is owned by the bus"));
        }
        List<NameChange> changes = new ArrayList<>(1);
        int reply = state.names().release(c, name, changes);
        assert state.names().owner(name) != c : "released name still owned";
        return new NameOutcome(reply, changes, null);
    }

    /** InvalidArgs for a name that is not a valid bus name or is a unique one; null if neither. */
    private static Denial nameArgs(String name, String given, String verb) {
        if (!NameSyntax.isValidBusName(name)) {
            return Denial.invalidArgs(given + " bus name \"" + name + "\" is not valid");
        }
        if (name.charAt(0) == ':') {
            return Denial.invalidArgs("Cannot " + verb + " a service starting with ':' such as \"" + name + "\"");
        }
        return null;
    }
}
