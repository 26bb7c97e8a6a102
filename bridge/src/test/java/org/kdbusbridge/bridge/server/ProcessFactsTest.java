package org.kdbusbridge.bridge.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;

/** /proc gives what the management beans give (the test JVM may load them; the bus does not). */
class ProcessFactsTest {
    @Test
    void openFilesLimitIsTheJvmsView() {
        var os = (com.sun.management.UnixOperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
        assertEquals(os.getMaxFileDescriptorCount(), ProcessFacts.openFilesLimit());
    }

    @Test
    void jvmOptionsIncludeEveryInputArgument() {
        var expected = ManagementFactory.getRuntimeMXBean().getInputArguments();
        var got = ProcessFacts.jvmOptions();
        for (String a : expected) {
            if (!a.startsWith("-Djava.class.path")) { // the launcher's own, not on the command line as such
                assertTrue(got.contains(a), a + " missing from " + got);
            }
        }
    }

    /** The last -XX:MaxDirectMemorySize wins, from the environment's options or the command line. */
    @Test
    void directMemoryLimitFromTheCommandLineAndTheEnvironment() throws Exception {
        assertEquals(List.of(String.valueOf(48L << 20)), probe(List.of("-XX:MaxDirectMemorySize=48m"), Map.of()));
        assertEquals(List.of(String.valueOf(40L << 20)), probe(List.of(), Map.of("JDK_JAVA_OPTIONS", "-XX:MaxDirectMemorySize=40m")));
        assertEquals(List.of(String.valueOf(1L << 30)),
                probe(List.of("-XX:MaxDirectMemorySize=64m", "-XX:MaxDirectMemorySize=1g"), Map.of()));
    }

    private static List<String> probe(List<String> jvmArgs, Map<String, String> env) throws Exception {
        List<String> cmd = new java.util.ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.addAll(jvmArgs);
        cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), DirectLimitProbe.class.getName()));
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.DISCARD);
        pb.environment().remove("JAVA_TOOL_OPTIONS");
        pb.environment().remove("JDK_JAVA_OPTIONS");
        pb.environment().putAll(env);
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        assertEquals(0, p.exitValue(), out);
        String[] f = out.split(" ");
        assertTrue(Long.parseLong(f[1]) > 0, "an fd limit: " + out);
        return List.of(f[0]);
    }
}
