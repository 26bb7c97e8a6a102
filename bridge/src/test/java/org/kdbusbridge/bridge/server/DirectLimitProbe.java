package org.kdbusbridge.bridge.server;

/** Run by ProcessFactsTest in a JVM of its own: prints the direct-memory limit and the fd limit it read. */
public final class DirectLimitProbe {
    private DirectLimitProbe() {
    }

    public static void main(String[] args) {
        System.out.println(DirectBuffers.jvmDirectMemoryLimit() + " " + ProcessFacts.openFilesLimit());
    }
}
