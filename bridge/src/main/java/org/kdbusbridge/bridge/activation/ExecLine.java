// Invariants: pure and stateless. Splits exactly like dbus-daemon's _dbus_shell_parse_argv
// (dbus/dbus-shell.c): a tokenizer that keeps quotes and escapes inside tokens, then per-token
// unquoting. No expansion of any kind ($VAR, ~, globs stay literal). Faithfully kept quirks:
// an unquoted '#' starts a comment anywhere (even mid-word) and a trailing '#' or '\' is an
// "unclosed quote"; the last token is always emitted, so trailing blanks yield a final "" argument
// and an empty line yields [""] (the exec of "" then fails with ENOENT, as in dbus-daemon).
package org.kdbusbridge.bridge.activation;

import java.util.ArrayList;
import java.util.List;

/** Splits an {@code Exec=} line into argv the way dbus-daemon does. */
public final class ExecLine {

    /** The D-Bus error dbus-daemon returns for an unparsable command line. */
    public static final String ERROR_NAME = "org.freedesktop.DBus.Error.InvalidArgs";

    /** A command line dbus-daemon would refuse; {@link #errorName()} is InvalidArgs. */
    public static final class ParseException extends Exception {
        private static final long serialVersionUID = 1L;

        ParseException(String message) {
            super(message);
        }

        public String errorName() {
            return ERROR_NAME;
        }
    }

    private ExecLine() {
    }

    /** argv for {@code commandLine}; never empty. */
    public static List<String> parse(String commandLine) throws ParseException {
        List<String> tokens = tokenize(commandLine);
        List<String> argv = new ArrayList<>(tokens.size());
        for (String t : tokens) {
            argv.add(unquote(t));
        }
        return List.copyOf(argv);
    }

    private static List<String> tokenize(String s) throws ParseException {
        List<String> out = new ArrayList<>();
        StringBuilder token = new StringBuilder();
        char quote = 0;          // 0, '\'', '"', '\\' (pending escape) or '#' (comment)
        boolean oddBackslashes = false;
        int n = s.length();
        int i = 0;
        while (i < n) {
            char c = s.charAt(i);
            if (quote == '\\') {
                if (c != '\n') {    // backslash-newline vanishes
                    token.append('\\').append(c);
                }
                quote = 0;
            } else if (quote == '#') {
                while (i < n && s.charAt(i) != '\n') {
                    i++;
                }
                quote = 0;
                if (i >= n) {
                    break;
                }
                c = s.charAt(i); // the newline: consumed below WITHOUT ending the token (dbus does so)
            } else if (quote != 0) {
                if (c == quote && !(quote == '"' && oddBackslashes)) {
                    quote = 0;
                }
                token.append(c); // quoted text and the closing quote stay in the token
            } else {
                switch (c) {
                    case '\n':
                        out.add(token.toString());
                        token.setLength(0);
                        break;
                    case ' ':
                    case '\t':
                        if (token.length() > 0) {
                            out.add(token.toString());
                            token.setLength(0);
                        }
                        break;
                    case '\'':
                    case '"':
                        token.append(c);
                        quote = c;
                        break;
                    case '#':
                    case '\\':
                        quote = c;
                        break;
                    default:
                        token.append(c);
                        break;
                }
            }
            oddBackslashes = c == '\\' && !oddBackslashes;
            i++;
        }
        out.add(token.toString());
        if (quote != 0) {
            throw new ParseException("Unclosed quotes in command line");
        }
        return out;
    }

    private static String unquote(String t) throws ParseException {
        StringBuilder out = new StringBuilder(t.length());
        int n = t.length();
        int i = 0;
        while (i < n) {
            char c = t.charAt(i);
            if (c == '\\') {
                i++;
                if (i < n) {
                    if (t.charAt(i) != '\n') {
                        out.append(t.charAt(i));
                    }
                    i++;
                }
            } else if (c == '\'') {
                int end = t.indexOf('\'', i + 1);
                if (end < 0) {
                    throw new ParseException("Unclosed quotes in command line");
                }
                out.append(t, i + 1, end);
                i = end + 1;
            } else if (c == '"') {
                i++;
                boolean closed = false;
                while (i < n) {
                    char d = t.charAt(i);
                    if (d == '"') {
                        i++;
                        closed = true;
                        break;
                    }
                    if (d == '\\' && i + 1 < n) {
                        char e = t.charAt(i + 1);
                        if (e == '"' || e == '\\' || e == '`' || e == '$' || e == '\n') {
                            out.append(e);
                            i += 2;
                            continue;
                        }
                    }
                    out.append(d);  // includes a backslash that escapes nothing
                    i++;
                }
                if (!closed) {
                    throw new ParseException("Unclosed quotes in command line");
                }
            } else {
                out.append(c);
                i++;
            }
        }
        return out.toString();
    }
}
