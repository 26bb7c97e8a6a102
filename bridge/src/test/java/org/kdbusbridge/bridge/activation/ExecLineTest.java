package org.kdbusbridge.bridge.activation;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.List;

import org.junit.jupiter.api.Test;

class ExecLineTest {

    private static void splits(String line, String... argv) throws Exception {
        assertEquals(List.of(argv), ExecLine.parse(line), line);
    }

    private static void fails(String line) {
        ExecLine.ParseException e = assertThrows(ExecLine.ParseException.class, () -> ExecLine.parse(line), line);
        assertEquals("org.freedesktop.DBus.Error.InvalidArgs", e.errorName());
        assertEquals("Unclosed quotes in command line", e.getMessage());
    }

    @Test
    void plainWords() throws Exception {
        splits("/usr/bin/foo", "/usr/bin/foo");
        splits("/usr/bin/foo -s --force-shutdown 123", "/usr/bin/foo", "-s", "--force-shutdown", "123");
        splits("a \t  b", "a", "b");
        splits("  leading", "leading");
    }

    @Test
    void quotes() throws Exception {
        splits("cmd \"a string\" 'single $x \\n'", "cmd", "a string", "single $x \\n");
        splits("cmd \"esc \\\" \\\\ \\$ \\` \\q\"", "cmd", "esc \" \\ $ ` \\q");
        splits("cmd ab\"c d\"'e f'g", "cmd", "abc de fg");
        splits("run \"a \n multiline\"", "run", "a \n multiline");
        splits("cmd \"\"", "cmd", "");
    }

    @Test
    void backslashesOutsideQuotes() throws Exception {
        splits("cmd a\\ b \\\"q\\\" \\\\", "cmd", "a b", "\"q\"", "\\");
        splits("cmd a\\\nb", "cmd", "ab");
    }

    @Test
    void noExpansion() throws Exception {
        splits("cmd $HOME ~ *.c ${X}", "cmd", "$HOME", "~", "*.c", "${X}");
    }

    @Test
    void dbusQuirksAreKept() throws Exception {
        splits("cmd a#comment b", "cmd", "a");                  // '#' starts a comment even mid-word
        splits("cmd #c\nd", "cmd", "d");                         // the comment's newline does not delimit
        splits("cmd ", "cmd", "");                               // the last token is always emitted
        splits("", "");
        splits("a\nb", "a", "b");                                // unquoted newline delimits
    }

    @Test
    void desktopEscapesThenSplitting() throws Exception {
        // checked against dbus-daemon 1.14.10: this Exec= line ran with argv [sh, -c, script, a, c, d, ""]
        ServiceFile f = ServiceFile.parse(java.nio.file.Path.of("/x/org.example.Q.service"),
                "[D-BUS Service]\nName=org.example.Q\nExec=/bin/sh -c 'printf x' a c\\sd \n");
        assertEquals(List.of("/bin/sh", "-c", "printf x", "a", "c", "d", ""), ExecLine.parse(f.exec()));
    }

    @Test
    void unbalanced() {
        fails("ls \"a wrong string'");
        fails("ls 'open");
        fails("ls \"open");
        fails("ls \"esc\\\"");
        fails("ls trailing\\");
        fails("ls #");
    }
}
