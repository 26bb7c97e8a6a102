package org.kdbusbridge.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.kdbusbridge.compat.harness.BusKind;
import org.kdbusbridge.compat.harness.BusUnderTest;
import org.kdbusbridge.compat.harness.Cmd;

/**
 * The python-gi AttachMetadata snippet of docs/extensions.md ("Per-message metadata", GDBus),
 * taken from the page and run as written against our bus: the filter it adds prints the
 * metadata of a signal that another connection of the same process, owning a name, sent it.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class MetadataSnippetTest {
    @TempDir
    Path tmp;

    /** The indented code block after "Python (python-gi)" in the metadata section, de-indented. */
    static String snippet() throws Exception {
        Path doc = Path.of("..", "docs", "extensions.md");
        List<String> lines = Files.readAllLines(doc);
        int section = indexOf(lines, 0, "## Per-message metadata");
        int python = indexOf(lines, section, "Python (python-gi)");
        int start = indexOf(lines, python, "    import ctypes");
        List<String> code = new ArrayList<>();
        for (int i = start; i < lines.size(); i++) {
            String l = lines.get(i);
            if (!l.isBlank() && !l.startsWith("    ")) {
                break;
            }
            code.add(l.isBlank() ? "" : l.substring(4));
        }
        return String.join("\n", code).strip() + "\n";
    }

    private static int indexOf(List<String> lines, int from, String prefix) {
        for (int i = from; i < lines.size(); i++) {
            if (lines.get(i).startsWith(prefix)) {
                return i;
            }
        }
        throw new AssertionError("docs/extensions.md has no line starting '" + prefix + "' after line " + from);
    }

    @Test
    void docsPythonGiSnippetPrintsTheSendersMetadata() throws Exception {
        String code = snippet();
        assertTrue(code.contains("conn.add_filter(on_message)") && code.contains("AttachMetadata"), code);
        String harness;
        try (InputStream in = MetadataSnippetTest.class.getResourceAsStream("metadata_snippet_gi.py")) {
            assertNotNull(in);
            harness = new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
        Path script = tmp.resolve("snippet.py");
        Files.writeString(script, harness.replace("# SNIPPET\n", code));
        try (BusUnderTest bus = BusKind.KDBUS_BRIDGE.start()) {
            Cmd.Result r = Cmd.run(List.of(DbusPythonTest.PYTHON, script.toString()),
                    Map.of("DBUS_SESSION_BUS_ADDRESS", bus.address()), Duration.ofSeconds(60));
            assertEquals(0, r.exitCode(), r.describe());
            List<String> out = r.stdout().lines().toList();
            assertTrue(out.contains("done"), r.describe());
            String pid = out.get(0).substring("pid ".length());
            String hi = out.stream().filter(l -> l.startsWith("Hi {")).findFirst().orElse(null);
            assertNotNull(hi, "the snippet's filter printed the signal's metadata\n" + r.describe());
            Matcher m = Pattern.compile("'pid': (\\d+)").matcher(hi);
            assertTrue(m.find(), hi);
            assertEquals(pid, m.group(1), "the sending process: " + hi);
            assertTrue(hi.contains("'names': ['org.kdbusbridge.SnippetSender']"), hi);
            assertTrue(hi.matches(".*'seq': \\d+.*"), hi);
            assertTrue(hi.contains("'creds-at-send': True"), hi);
        }
    }
}
