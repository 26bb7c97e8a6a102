package org.kdbusbridge.bridge.migration;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;

import org.junit.jupiter.api.Test;

/** Our bus under the diff tool gets the tool's JVM options, less what belongs to the tool's own JVM. */
class BusLauncherTest {
    @Test
    void childJvmOptionsKeepTheShippedFlagsAndDropArchivesAgentsAndLogging() {
        List<String> parent = List.of("-XX:+UseSerialGC", "-Xmx512m", "-XX:TieredStopAtLevel=1",
                "-XX:SharedArchiveFile=/c/a.jsa", "-XX:AOTCache=/c/a.aot", "-Xshare:auto",
                "-javaagent:/x/agent.jar", "-Xlog:gc", "-Dkdbus.cacheDir=/c");
        assertEquals(List.of("-XX:+UseSerialGC", "-Xmx512m", "-XX:TieredStopAtLevel=1", "-Dkdbus.cacheDir=/c"),
                BusLauncher.childJvmOptions(parent, 17));
        assertEquals(List.of("-Xmx512m", "--enable-native-access=ALL-UNNAMED"),
                BusLauncher.childJvmOptions(List.of("-Xmx512m"), 25), "JDK 22+: the grant -jar would give");
        assertEquals(List.of("--enable-native-access=ALL-UNNAMED"),
                BusLauncher.childJvmOptions(List.of("--enable-native-access=ALL-UNNAMED"), 25), "not twice");
    }
}
