// Invariants: immutable; getMessage() always names the file, and the line when one is known
// (line > 0), so a log line alone is enough to find the problem.
package org.kdbusbridge.bridge.activation;

import java.nio.file.Path;

/** A {@code .service} file that can't be read, parsed or accepted. */
public final class ServiceFileException extends Exception {
    private static final long serialVersionUID = 1L;

    private final transient Path file;
    private final int line;
    private final String detail;

    public ServiceFileException(Path file, int line, String detail) {
        super(format(file, line, detail));
        this.file = file;
        this.line = line;
        this.detail = detail;
    }

    private static String format(Path file, int line, String detail) {
        return line > 0 ? file + ":" + line + ": " + detail : file + ": " + detail;
    }

    /** The offending file. */
    public Path file() {
        return file;
    }

    /** 1-based line of the problem, or 0 when it is not about one line (missing key, bad UTF-8...). */
    public int line() {
        return line;
    }

    /** The problem without the file/line prefix. */
    public String detail() {
        return detail;
    }
}
