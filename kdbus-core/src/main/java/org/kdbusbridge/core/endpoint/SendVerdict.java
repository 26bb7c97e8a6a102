package org.kdbusbridge.core.endpoint;

/**
 * The decision on one message the endpoint's client sends.
 *
 * {@link Outcome#ALLOW}: route it as usual. {@link Outcome#ALLOW_FILTER_NAMES}: let the driver
 * run it (ListNames, ListActivatableNames) and keep in its reply only the names
 * {@link EndpointPolicy#listsName} allows. {@link Outcome#REPLY_FALSE}: do not run it, answer
 * {@code false} (NameHasOwner of a hidden name). {@link Outcome#REFUSE}: do not deliver it,
 * answer {@code errorName} with the single string argument {@code errorText}.
 *
 * {@code hidden}: refused because the name is invisible, so the error is the one the bus gives
 * for a name that does not exist; otherwise an AccessDenied. {@code silent}: the message
 * expects no reply (a signal, or a call with NO_REPLY_EXPECTED), so a refusal or a fake reply is
 * simply dropped, as the proxy does.
 */
public record SendVerdict(Outcome outcome, String errorName, String errorText, boolean hidden, boolean silent) {
    public enum Outcome { ALLOW, ALLOW_FILTER_NAMES, REPLY_FALSE, REFUSE }

    public static final SendVerdict ALLOW = new SendVerdict(Outcome.ALLOW, null, null, false, false);
    public static final SendVerdict ALLOW_FILTER_NAMES = new SendVerdict(Outcome.ALLOW_FILTER_NAMES, null, null, false,
            false);

    private static final SendVerdict[] REFUSALS = {
        refusal(EndpointErrors.ACCESS_DENIED, false, false), refusal(EndpointErrors.ACCESS_DENIED, false, true),
        refusal(EndpointErrors.SERVICE_UNKNOWN, true, false), refusal(EndpointErrors.SERVICE_UNKNOWN, true, true),
        refusal(EndpointErrors.NAME_HAS_NO_OWNER, true, false), refusal(EndpointErrors.NAME_HAS_NO_OWNER, true, true),
    };
    private static final SendVerdict FALSE_ANSWERED = new SendVerdict(Outcome.REPLY_FALSE, null, null, true, false);
    private static final SendVerdict FALSE_SILENT = new SendVerdict(Outcome.REPLY_FALSE, null, null, true, true);

    private static SendVerdict refusal(String error, boolean hidden, boolean silent) {
        return new SendVerdict(Outcome.REFUSE, error, error, hidden, silent);
    }

    static SendVerdict accessDenied(boolean silent) {
        return REFUSALS[silent ? 1 : 0];
    }

    /**
     * The refusal of a message to a name the client may not see: NameHasNoOwner if the name is
     * unique or the message asked not to be auto-started, else ServiceUnknown (flatpak-proxy.c
     * got_buffer_from_client, handle_hide).
     */
    static SendVerdict hidden(boolean uniqueDestination, boolean noAutoStart, boolean silent) {
        int base = uniqueDestination || noAutoStart ? 4 : 2;
        return REFUSALS[base + (silent ? 1 : 0)];
    }

    static SendVerdict nameHasNoOwner(boolean silent) {
        return REFUSALS[silent ? 5 : 4];
    }

    static SendVerdict replyFalse(boolean silent) {
        return silent ? FALSE_SILENT : FALSE_ANSWERED;
    }

    public boolean allowed() {
        return outcome == Outcome.ALLOW || outcome == Outcome.ALLOW_FILTER_NAMES;
    }
}
