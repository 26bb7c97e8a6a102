package org.kdbusbridge.core.match;

/** A match rule string that does not parse; the message is shown to the client. */
public final class MatchRuleException extends Exception {
    private final boolean limitExceeded;

    public MatchRuleException(String message) {
        this(message, false);
    }

    public MatchRuleException(String message, boolean limitExceeded) {
        super(message);
        this.limitExceeded = limitExceeded;
    }

    /** True when the rule was refused for size (LimitsExceeded), not syntax (MatchRuleInvalid). */
    public boolean isLimitExceeded() {
        return limitExceeded;
    }
}
