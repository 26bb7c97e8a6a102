package org.kdbusbridge.bridge.transport;

import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.CodeSource;

/**
 * Where our JNI library is: the path given (kdbus.nativeLibrary), or the file next to the jar
 * the class came from (lib/ of the distribution, bridge/target/ of the source tree; for a
 * classes directory, its parent). Null means "use jnr-ffi": none given ("none"), none built,
 * or the class came from somewhere that is not a file (an embedding application's loader).
 */
final class NativeLibrary {
    private NativeLibrary() {
    }

    static Path find(String configured, Class<?> anchor, String fileName) {
        if (configured != null && !configured.isBlank()) {
            if (configured.equals("none")) {
                return null;
            }
            Path p = Path.of(configured);
            return Files.isRegularFile(p) ? p.toAbsolutePath() : null;
        }
        CodeSource source = anchor.getProtectionDomain().getCodeSource();
        if (source == null || source.getLocation() == null || !"file".equals(source.getLocation().getProtocol())) {
            return null;
        }
        try {
            Path from = Path.of(source.getLocation().toURI());
            Path dir = from.getParent();
            Path lib = dir == null ? null : dir.resolve(fileName);
            return lib != null && Files.isRegularFile(lib) ? lib : null;
        } catch (URISyntaxException | IllegalArgumentException e) {
            return null;
        }
    }
}
