package org.kdbusbridge.core.match;

import java.util.Arrays;
import java.util.Objects;

import org.kdbusbridge.core.message.ArgSource;
import org.kdbusbridge.core.message.Message;
import org.kdbusbridge.core.name.NameSyntax;

/**
 * A parsed match rule (the AddMatch grammar of the D-Bus specification).
 *
 * Invariants: immutable; every set field has been validated; {@code path} and
 * {@code pathNamespace} are never both set; equality is by content, which is how
 * RemoveMatch finds a rule (dbus-daemon compares parsed rules, not text).
 */
public final class MatchRule {
    public static final int MAX_RULE_LENGTH = 1024;
    public static final int MAX_ARG = 63;
    /** dbus-daemon parses at most this many key=value pairs and ignores any after them. */
    public static final int MAX_RULE_TOKENS = 16;

    private static final int ARG_PLAIN = 0;
    private static final int ARG_PATH = 1;
    private static final int ARG_NAMESPACE = 2;

    final byte type; // 0 = any
    final String sender;
    final String iface;
    final String member;
    final String path;
    final String pathNamespace;
    final String destination;
    final boolean eavesdrop;
    final String[] args; // null or length = highest arg index + 1
    final byte[] argKinds; // null if every arg key is a plain argN, else one kind per args slot

    private MatchRule(int type, String sender, String iface, String member, String path, String pathNamespace,
                      String destination, boolean eavesdrop, String[] args, byte[] argKinds) {
        this.type = (byte) type;
        this.sender = sender;
        this.iface = iface;
        this.member = member;
        this.path = path;
        this.pathNamespace = pathNamespace;
        this.destination = destination;
        this.eavesdrop = eavesdrop;
        this.args = args;
        this.argKinds = argKinds;
    }

    /** Characters of every string the rule keeps (what a quota charges beyond the fixed cost). */
    public int retainedChars() {
        int n = len(sender) + len(iface) + len(member) + len(path) + len(pathNamespace) + len(destination);
        if (args != null) {
            for (String a : args) {
                n += len(a);
            }
        }
        return n;
    }

    /** How many strings the rule keeps. */
    public int stringCount() {
        int n = cnt(sender) + cnt(iface) + cnt(member) + cnt(path) + cnt(pathNamespace) + cnt(destination);
        if (args != null) {
            for (String a : args) {
                n += cnt(a);
            }
        }
        return n;
    }

    private static int len(String s) {
        return s == null ? 0 : s.length();
    }

    private static int cnt(String s) {
        return s == null ? 0 : 1;
    }

    public int type() { return type; }
    public String sender() { return sender; }
    public String iface() { return iface; }
    public String member() { return member; }
    public String path() { return path; }
    public String pathNamespace() { return pathNamespace; }
    public String destination() { return destination; }
    public boolean eavesdrop() { return eavesdrop; }
    public boolean hasArgs() { return args != null; }

    /** Parses a rule string as dbus-daemon does (quotes, the \' escape, unquoted values). */
    public static MatchRule parse(String text) throws MatchRuleException {
        return parse(text, true);
    }

    /**
     * Parses the {@link #toString} text of a rule that was already admitted (a hand-over
     * snapshot): as {@link #parse}, without the 1024-byte limit, which applies to what the client
     * sent; the canonical text can be longer (every value quoted, each ' written as '\'').
     */
    public static MatchRule parseCanonical(String text) throws MatchRuleException {
        return parse(text, false);
    }

    private static MatchRule parse(String text, boolean limitLength) throws MatchRuleException {
        // dbus-daemon limits the UTF-8 byte length, not the number of UTF-16 chars.
        int textBytes = !limitLength ? 0 : text.length() > MAX_RULE_LENGTH / 3 ? utf8Length(text) : text.length();
        if (textBytes > MAX_RULE_LENGTH) {
            throw new MatchRuleException("Match rule text is " + textBytes + " bytes, maximum is "
                    + MAX_RULE_LENGTH, true);
        }
        int type = 0;
        boolean typeSet = false;
        String sender = null;
        String iface = null;
        String member = null;
        String path = null;
        String pathNs = null;
        String destination = null;
        boolean eavesdrop = false;
        String[] args = null;
        byte[] kinds = null;

        int pos = 0;
        int n = text.length();
        StringBuilder value = new StringBuilder();
        // dbus-daemon's tokenizer stops after MAX_RULE_TOKENS key=value pairs and silently
        // ignores the rest of the text (bus/signals.c tokenize_rule).
        for (int tokens = 0; pos < n && tokens < MAX_RULE_TOKENS; tokens++) {
            while (pos < n && isWhite(text.charAt(pos))) {
                pos++;
            }
            int keyStart = pos;
            while (pos < n && text.charAt(pos) != '=' && !isWhite(text.charAt(pos))) {
                pos++;
            }
            int keyEnd = pos;
            while (pos < n && isWhite(text.charAt(pos))) {
                pos++;
            }
            if (keyStart == keyEnd) {
                break; // empty rule or trailing white space
            }
            if (pos >= n || text.charAt(pos) != '=') {
                throw new MatchRuleException("Match rule has a key with no subsequent '=' character");
            }
            pos++;
            String key = key(text, keyStart, keyEnd);
            value.setLength(0);
            char quote = 0;
            for (; pos < n; pos++) {
                char c = text.charAt(pos);
                if (quote == 0) {
                    if (c == '\'') {
                        quote = '\'';
                    } else if (c == ',') {
                        pos++;
                        break;
                    } else if (c == '\\') {
                        quote = '\\';
                    } else {
                        value.append(c);
                    }
                } else if (quote == '\\') {
                    if (c != '\'') {
                        value.append('\\');
                    }
                    value.append(c);
                    quote = 0;
                } else if (c == '\'') {
                    quote = 0;
                } else {
                    value.append(c);
                }
            }
            if (quote == '\\') {
                value.append('\\');
            } else if (quote == '\'') {
                throw new MatchRuleException("Unbalanced quotation marks in match rule");
            }
            String v = value.toString();
            switch (key) {
                case "type" -> {
                    if (typeSet) {
                        throw twice(key);
                    }
                    type = switch (v) {
                        case "method_call" -> Message.METHOD_CALL;
                        case "method_return" -> Message.METHOD_RETURN;
                        case "error" -> Message.ERROR;
                        case "signal" -> Message.SIGNAL;
                        default -> throw new MatchRuleException("Invalid message type (" + v + ") in match rule\n");
                    };
                    typeSet = true;
                }
                case "sender" -> {
                    if (sender != null) {
                        throw twice(key);
                    }
                    if (!NameSyntax.isValidBusName(v)) {
                        throw new MatchRuleException("Sender name '" + v + "' is invalid\n");
                    }
                    sender = v;
                }
                case "interface" -> {
                    if (iface != null) {
                        throw twice(key);
                    }
                    if (!NameSyntax.isValidInterface(v)) {
                        throw new MatchRuleException("Interface name '" + v + "' is invalid\n");
                    }
                    iface = v;
                }
                case "member" -> {
                    if (member != null) {
                        throw twice(key);
                    }
                    if (!NameSyntax.isValidMember(v)) {
                        throw new MatchRuleException("Member name '" + v + "' is invalid\n");
                    }
                    member = v;
                }
                case "path", "path_namespace" -> {
                    if (path != null || pathNs != null) {
                        throw new MatchRuleException("path or path_namespace specified twice in match rule");
                    }
                    if (!NameSyntax.isValidObjectPath(v)) {
                        throw new MatchRuleException("Path '" + v + "' is invalid\n");
                    }
                    if (key.equals("path")) {
                        path = v;
                    } else {
                        pathNs = v;
                    }
                }
                case "destination" -> {
                    if (destination != null) {
                        throw twice(key);
                    }
                    if (!NameSyntax.isValidBusName(v)) {
                        throw new MatchRuleException("Destination name '" + v + "' is invalid\n");
                    }
                    destination = v;
                }
                case "eavesdrop" -> {
                    if (v.equals("true")) {
                        eavesdrop = true;
                    } else if (v.equals("false")) {
                        eavesdrop = false;
                    } else {
                        throw new MatchRuleException("eavesdrop='" + v + "' is invalid, it should be 'true' or 'false'\n");
                    }
                }
                default -> {
                    if (!key.startsWith("arg")) {
                        throw new MatchRuleException("Unknown key \"" + key + "\" in match rule");
                    }
                    int end = 3;
                    // ASCII digits only: Character.isDigit (and Integer.parseInt) also take
                    // other scripts' digits, which made "arg\u0663" the key arg3.
                    while (end < key.length() && key.charAt(end) >= '0' && key.charAt(end) <= '9') {
                        end++;
                    }
                    if (end == 3) {
                        throw new MatchRuleException("Key '" + key + "' in match rule starts with 'arg' but lacks an arg number. Should be 'arg0' or 'arg7' for example.");
                    }
                    String digits = key.substring(3, end);
                    int index = digits.length() > 3 ? Integer.MAX_VALUE : Integer.parseInt(digits);
                    String suffix = key.substring(end);
                    byte kind;
                    if (suffix.isEmpty()) {
                        kind = ARG_PLAIN;
                    } else if (suffix.equals("path")) {
                        kind = ARG_PATH;
                    } else if (key.equals("arg0namespace")) {
                        kind = ARG_NAMESPACE;
                        if (!NameSyntax.isValidNamespace(v)) {
                            throw new MatchRuleException("arg0namespace='" + v + "' is not a valid prefix of a bus name");
                        }
                    } else {
                        throw new MatchRuleException("Key '" + key + "' in match rule contains junk after argument number (" + digits + "). Only 'arg" + digits + "path' (for example) or 'arg0namespace' are valid");
                    }
                    if (index > MAX_ARG) {
                        throw new MatchRuleException("Key '" + key + "' in match rule has arg number " + digits + " but the maximum is " + MAX_ARG + ".");
                    }
                    if (args == null || args.length <= index) {
                        int len = index + 1;
                        args = args == null ? new String[len] : Arrays.copyOf(args, len);
                        kinds = kinds == null ? new byte[len] : Arrays.copyOf(kinds, len);
                    }
                    if (args[index] != null) {
                        throw new MatchRuleException("Argument " + key + " matched more than once in match rule");
                    }
                    args[index] = v;
                    kinds[index] = kind;
                }
            }
        }
        if (kinds != null && allPlain(kinds)) {
            kinds = null; // the common case: plain argN only, no second array per rule
        }
        return new MatchRule(type, sender, iface, member, path, pathNs, destination, eavesdrop, args, kinds);
    }

    /** The keys of the grammar, shared: parsing a rule does not copy its key names. */
    private static final String[] KEYS = {"type", "sender", "interface", "member", "path", "path_namespace",
            "destination", "eavesdrop", "arg0", "arg1", "arg2", "arg0path", "arg0namespace"};

    private static String key(String text, int start, int end) {
        int len = end - start;
        for (String k : KEYS) {
            if (k.length() == len && text.regionMatches(start, k, 0, len)) {
                return k;
            }
        }
        return text.substring(start, end);
    }

    private static boolean allPlain(byte[] kinds) {
        for (byte k : kinds) {
            if (k != ARG_PLAIN) {
                return false;
            }
        }
        return true;
    }

    /** The arg0 value if the rule has a plain {@code arg0=} key (string equality), else null. */
    String plainArg0() {
        return args != null && args[0] != null && kindOf(0) == ARG_PLAIN ? args[0] : null;
    }

    private int kindOf(int i) {
        return argKinds == null ? ARG_PLAIN : argKinds[i];
    }

    private static int utf8Length(String s) {
        int n = 0;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c < 0x80) {
                n += 1;
            } else if (c < 0x800) {
                n += 2;
            } else if (Character.isHighSurrogate(c) && i + 1 < s.length() && Character.isLowSurrogate(s.charAt(i + 1))) {
                n += 4;
                i++;
            } else {
                n += 3;
            }
        }
        return n;
    }

    private static MatchRuleException twice(String key) {
        return new MatchRuleException("Key " + key + " specified twice in match rule\n");
    }

    private static boolean isWhite(char c) {
        return c == ' ' || c == '\t' || c == '\n' || c == '\r';
    }

    /** Checks everything but sender and destination, which need the registry (see MatchIndex). */
    boolean matchesContent(Message m) {
        if (type != 0 && type != m.type()) {
            return false;
        }
        if (iface != null && !iface.equals(m.iface())) {
            return false;
        }
        if (member != null && !member.equals(m.member())) {
            return false;
        }
        if (path != null && !path.equals(m.path())) {
            return false;
        }
        if (pathNamespace != null) {
            String p = m.path();
            if (p == null || !p.startsWith(pathNamespace)) {
                return false;
            }
            int len = pathNamespace.length();
            if (len > 1 && p.length() > len && p.charAt(len) != '/') {
                return false;
            }
        }
        return args == null || argsMatch(m.args());
    }

    private boolean argsMatch(ArgSource src) {
        for (int i = 0; i < args.length; i++) {
            String expected = args[i];
            if (expected == null) {
                continue;
            }
            String actual = src.arg(i);
            if (actual == null) {
                return false;
            }
            switch (kindOf(i)) {
                case ARG_PATH -> {
                    if (!argPathMatches(expected, actual)) {
                        return false;
                    }
                }
                case ARG_NAMESPACE -> {
                    if (src.isObjectPath(i) || !actual.startsWith(expected)) {
                        return false;
                    }
                    if (actual.length() > expected.length() && actual.charAt(expected.length()) != '.') {
                        return false;
                    }
                }
                default -> {
                    if (src.isObjectPath(i) || !expected.equals(actual)) {
                        return false;
                    }
                }
            }
        }
        return true;
    }

    private static boolean argPathMatches(String expected, String actual) {
        int el = expected.length();
        int al = actual.length();
        if (al < el && (al == 0 || actual.charAt(al - 1) != '/')) {
            return false;
        }
        if (el < al && (el == 0 || expected.charAt(el - 1) != '/')) {
            return false;
        }
        int n = Math.min(el, al);
        return expected.regionMatches(0, actual, 0, n);
    }

    @Override
    public boolean equals(Object o) {
        if (!(o instanceof MatchRule r)) {
            return false;
        }
        return type == r.type && eavesdrop == r.eavesdrop && Objects.equals(sender, r.sender)
                && Objects.equals(iface, r.iface) && Objects.equals(member, r.member)
                && Objects.equals(path, r.path) && Objects.equals(pathNamespace, r.pathNamespace)
                && Objects.equals(destination, r.destination) && Arrays.equals(args, r.args)
                && Arrays.equals(argKinds, r.argKinds);
    }

    @Override
    public int hashCode() {
        return Objects.hash(type, sender, iface, member, path, pathNamespace, destination, eavesdrop)
                * 31 + Arrays.hashCode(args);
    }

    /** The canonical text form (used by Debug.Stats GetAllMatchRules). */
    @Override
    public String toString() {
        StringBuilder b = new StringBuilder();
        if (type != 0) {
            append(b, "type", switch (type) {
                case Message.METHOD_CALL -> "method_call";
                case Message.METHOD_RETURN -> "method_return";
                case Message.ERROR -> "error";
                default -> "signal";
            });
        }
        // dbus-daemon's key order (bus/signals.c, match_rule_to_string).
        append(b, "interface", iface);
        append(b, "member", member);
        append(b, "path", path);
        append(b, "path_namespace", pathNamespace);
        append(b, "sender", sender);
        append(b, "destination", destination);
        if (eavesdrop) {
            append(b, "eavesdrop", "true");
        }
        if (args != null) {
            for (int i = 0; i < args.length; i++) {
                if (args[i] != null) {
                    int kind = kindOf(i);
                    String k = "arg" + i + (kind == ARG_PATH ? "path" : kind == ARG_NAMESPACE ? "namespace" : "");
                    append(b, k, args[i]);
                }
            }
        }
        return b.toString();
    }

    private static void append(StringBuilder b, String key, String value) {
        if (value == null) {
            return;
        }
        if (b.length() > 0) {
            b.append(',');
        }
        b.append(key).append("='").append(value.replace("'", "'\\''")).append('\'');
    }
}
