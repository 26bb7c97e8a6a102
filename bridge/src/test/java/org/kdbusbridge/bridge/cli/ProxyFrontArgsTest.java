package org.kdbusbridge.bridge.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.List;

import org.junit.jupiter.api.Test;

/**
 * The proxy front's own reading of a command line the parser accepted: --args=FD blobs spliced
 * back in the parser's order (what the exec fallback passes on), and the options of each
 * ADDRESS PATH pair as AddEndpoint gets them (--fd dropped wherever it stands).
 */
class ProxyFrontArgsTest {
    private static byte[] blob(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    @Test
    void argsBlobsAreSplicedInReadOrderNestedOnesToo() {
        Deque<byte[]> reads = new ArrayDeque<>();
        reads.add(blob("--filter\0--args=7\0--own=org.example.App\0")); // read for --args=5
        reads.add(blob("--talk=org.example.Portal\0"));                 // then the nested --args=7
        reads.add(blob("--see=org.example.Other\0"));                   // then --args=6
        List<String> out = ProxyFront.expand(List.of("--fd=3", "unix:path=/b", "/p", "--args=5", "--args=6"), reads);
        assertEquals(List.of("--fd=3", "unix:path=/b", "/p", "--filter", "--talk=org.example.Portal",
                "--own=org.example.App", "--see=org.example.Other"), out);
    }

    @Test
    void eachPairGetsTheFilterOptionsAfterItWithoutFd() {
        List<ProxyFront.Pair> pairs = ProxyFront.pairs(List.of("--fd=3", "unix:path=/session", "/run/app/bus",
                "--filter", "--fd=4", "--talk=org.freedesktop.portal.*", "unix:path=/system", "/run/app/system",
                "--filter"));
        assertEquals(List.of(
                new ProxyFront.Pair("unix:path=/session", "/run/app/bus", List.of("--filter", "--talk=org.freedesktop.portal.*")),
                new ProxyFront.Pair("unix:path=/system", "/run/app/system", List.of("--filter"))), pairs);
    }
}
