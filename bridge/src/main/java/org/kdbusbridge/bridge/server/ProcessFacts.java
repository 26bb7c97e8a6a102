package org.kdbusbridge.bridge.server;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Facts about this process read from /proc, where the JDK would answer through
 * java.lang.management: its MXBeans load ~56 classes at start for two numbers.
 */
final class ProcessFacts {
    private ProcessFacts() {
    }

    /** The soft RLIMIT_NOFILE (the JVM raises it to the hard limit at start), or 0 if unknown. */
    static long openFilesLimit() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/limits"), StandardCharsets.US_ASCII)) {
                if (line.startsWith("Max open files")) {
                    String[] f = line.substring("Max open files".length()).trim().split("\\s+");
                    return f.length > 0 && !f[0].equals("unlimited") ? Long.parseLong(f[0]) : 0;
                }
            }
        } catch (IOException | RuntimeException e) {
            // unknown: the caller treats 0 as "no fd budget"
        }
        return 0;
    }

    /**
     * The JVM options this process was started with, as the JVM saw them: JAVA_TOOL_OPTIONS and
     * JDK_JAVA_OPTIONS words, then the command line's words before the main class or -jar.
     */
    static List<String> jvmOptions() {
        List<String> out = new ArrayList<>();
        for (String env : new String[] {"JAVA_TOOL_OPTIONS", "JDK_JAVA_OPTIONS"}) {
            String v = System.getenv(env);
            if (v != null && !v.isBlank()) {
                out.addAll(List.of(v.trim().split("\\s+")));
            }
        }
        try {
            String[] argv = new String(Files.readAllBytes(Path.of("/proc/self/cmdline")), StandardCharsets.UTF_8)
                    .split("\0");
            for (int i = 1; i < argv.length; i++) {
                String a = argv[i];
                if (a.equals("-jar") || !a.startsWith("-")) {
                    break; // what follows belongs to the program
                }
                out.add(a);
                if (a.equals("-cp") || a.equals("-classpath") || a.equals("--class-path")) {
                    i++; // its value
                }
            }
        } catch (IOException | RuntimeException e) {
            // only the environment's options then
        }
        return out;
    }
}
