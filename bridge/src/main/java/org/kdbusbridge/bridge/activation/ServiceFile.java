// Invariants: an instance is immutable and always valid: name is a well-known bus name, exec is
// present (possibly empty, as dbus-daemon allows), optional keys are null when absent. Parsing
// mirrors dbus-daemon's desktop-file parser (bus/desktop-file.c): the whole file must be
// well-formed, even groups we ignore; the first [D-BUS Service] group and the first occurrence of
// each key win; values are taken verbatim after "=" and leading spaces, with only \s \t \n \r \\
// escapes. Pure: parse() does no I/O, load() does only the read.
package org.kdbusbridge.bridge.activation;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;

import org.kdbusbridge.bridge.protocol.Names;

/**
 * One parsed D-Bus activation file ({@code [D-BUS Service]} with {@code Name}, {@code Exec},
 * {@code User}, {@code SystemdService}, {@code AssumedAppArmorLabel}).
 *
 * <p>Deliberate differences from dbus-daemon 1.14 (documented, tested):
 * <ul>
 *   <li>{@code Name} must be a valid well-known bus name; dbus-daemon loads any string, but a
 *       file with an invalid name could never be activated (it would only show up in
 *       ListActivatableNames).</li>
 * </ul>
 * As in dbus-daemon, {@code Exec} is required even when {@code SystemdService} is set (that is
 * why systemd-activated files carry {@code Exec=/bin/false}).
 */
public final class ServiceFile {

    /** The group dbus-daemon reads. */
    public static final String GROUP = "D-BUS Service";
    public static final String KEY_NAME = "Name";
    public static final String KEY_EXEC = "Exec";
    public static final String KEY_USER = "User";
    public static final String KEY_SYSTEMD_SERVICE = "SystemdService";
    public static final String KEY_ASSUMED_APPARMOR_LABEL = "AssumedAppArmorLabel";
    /** dbus-daemon refuses desktop files larger than 128 KiB. */
    public static final long MAX_SIZE = 128 * 1024;
    /** Only files with this suffix are considered. */
    public static final String SUFFIX = ".service";

    private final Path path;
    private final String name;
    private final String exec;
    private final String user;
    private final String systemdService;
    private final String assumedAppArmorLabel;

    private ServiceFile(Path path, String name, String exec, String user, String systemdService,
                        String assumedAppArmorLabel) {
        this.path = path;
        this.name = name;
        this.exec = exec;
        this.user = user;
        this.systemdService = systemdService;
        this.assumedAppArmorLabel = assumedAppArmorLabel;
    }

    /** Reads and parses {@code file} (blocking I/O: never on the event loop). */
    public static ServiceFile load(Path file) throws ServiceFileException {
        byte[] bytes;
        try {
            long size = Files.size(file);
            if (size > MAX_SIZE) {
                throw new ServiceFileException(file, 0, "Desktop file size (" + size + " bytes) is too large");
            }
            bytes = Files.readAllBytes(file);
        } catch (IOException e) {
            throw new ServiceFileException(file, 0, "cannot read: " + e);
        }
        if (bytes.length > MAX_SIZE) {
            throw new ServiceFileException(file, 0, "Desktop file size (" + bytes.length + " bytes) is too large");
        }
        String text;
        try {
            text = StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(bytes)).toString();
        } catch (CharacterCodingException e) {
            throw new ServiceFileException(file, 0, "invalid UTF-8");
        }
        return parse(file, text);
    }

    /** Parses {@code text} as the contents of {@code file} (which is used for messages only). */
    public static ServiceFile parse(Path file, String text) throws ServiceFileException {
        Objects.requireNonNull(file, "file");
        Map<String, String> group = new DesktopParser(file, text).parse();
        if (group == null) {
            group = Map.of();
        }
        String name = required(file, group, KEY_NAME);
        String exec = required(file, group, KEY_EXEC);
        if (!Names.isValidBusName(name) || Names.isUniqueName(name)) {
            throw new ServiceFileException(file, 0, "Name \"" + name + "\" is not a valid well-known bus name");
        }
        return new ServiceFile(file, name, exec, group.get(KEY_USER), group.get(KEY_SYSTEMD_SERVICE),
                group.get(KEY_ASSUMED_APPARMOR_LABEL));
    }

    private static String required(Path file, Map<String, String> group, String key) throws ServiceFileException {
        String v = group.get(key);
        if (v == null) {
            throw new ServiceFileException(file, 0, "No \"" + key + "\" key in .service file");
        }
        return v;
    }

    /** Where it was read from. */
    public Path path() {
        return path;
    }

    /** The file name without directory. */
    public String fileName() {
        return path.getFileName().toString();
    }

    /** The well-known name it provides. */
    public String name() {
        return name;
    }

    /** The raw Exec= line (split it with {@link ExecLine#parse}). */
    public String exec() {
        return exec;
    }

    /** User= (only meaningful on a system bus with a launch helper; ignored on the session bus). */
    public Optional<String> user() {
        return Optional.ofNullable(user);
    }

    public Optional<String> systemdService() {
        return Optional.ofNullable(systemdService);
    }

    public Optional<String> assumedAppArmorLabel() {
        return Optional.ofNullable(assumedAppArmorLabel);
    }

    /** {@code <Name>.service}, the name dbus-daemon expects. */
    public String expectedFileName() {
        return name + SUFFIX;
    }

    /** True if the file is named {@link #expectedFileName()}. */
    public boolean hasExpectedFileName() {
        return expectedFileName().equals(fileName());
    }

    @Override
    public boolean equals(Object o) {
        if (this == o) {
            return true;
        }
        if (!(o instanceof ServiceFile)) {
            return false;
        }
        ServiceFile f = (ServiceFile) o;
        return path.equals(f.path) && name.equals(f.name) && exec.equals(f.exec)
                && Objects.equals(user, f.user) && Objects.equals(systemdService, f.systemdService)
                && Objects.equals(assumedAppArmorLabel, f.assumedAppArmorLabel);
    }

    @Override
    public int hashCode() {
        return Objects.hash(path, name, exec, user, systemdService, assumedAppArmorLabel);
    }

    @Override
    public String toString() {
        return "ServiceFile[" + name + " from " + path + ", Exec=" + exec
                + (user != null ? ", User=" + user : "")
                + (systemdService != null ? ", SystemdService=" + systemdService : "")
                + (assumedAppArmorLabel != null ? ", AssumedAppArmorLabel=" + assumedAppArmorLabel : "") + "]";
    }

    // ------------------------------------------------------------------ parser

    /** The desktop-file grammar as dbus-daemon accepts it; returns the first [D-BUS Service] group. */
    private static final class DesktopParser {
        private final Path file;
        private final String text;
        private String section;
        private Map<String, String> serviceGroup;
        private boolean inServiceGroup;

        DesktopParser(Path file, String text) {
            this.file = file;
            this.text = text;
        }

        Map<String, String> parse() throws ServiceFileException {
            List<String> lines = splitLines(text);
            for (int i = 0; i < lines.size(); i++) {
                String line = lines.get(i);
                int lineNo = i + 1;
                if (line.startsWith("[")) {
                    sectionStart(line, lineNo);
                } else if (isBlank(line) || line.startsWith("#")) {
                    continue;
                } else if (section == null) {
                    throw new ServiceFileException(file, lineNo,
                            "invalid service file: key=value before [Section]");
                } else {
                    keyValue(line, lineNo);
                }
            }
            return serviceGroup;
        }

        /** Splits at \r\n, \n or \r (dbus' find_eol); a final line without EOL still counts. */
        private static List<String> splitLines(String s) {
            List<String> out = new ArrayList<>();
            int start = 0;
            int n = s.length();
            int i = 0;
            while (i < n) {
                char c = s.charAt(i);
                if (c == '\n' || c == '\r') {
                    out.add(s.substring(start, i));
                    i += (c == '\r' && i + 1 < n && s.charAt(i + 1) == '\n') ? 2 : 1;
                    start = i;
                } else {
                    i++;
                }
            }
            if (start < n) {
                out.add(s.substring(start));
            }
            return out;
        }

        private static boolean isBlank(String line) {
            for (int i = 0; i < line.length(); i++) {
                char c = line.charAt(i);
                if (c != ' ' && c != '\t' && c != '\r' && c != '\f') {
                    return false;
                }
            }
            return true;
        }

        private ServiceFileException error(int lineNo, String message) {
            return new ServiceFileException(file, lineNo,
                    section != null ? "Error in section " + section + ": " + message : message);
        }

        private void sectionStart(String line, int lineNo) throws ServiceFileException {
            if (line.length() <= 2 || line.charAt(line.length() - 1) != ']') {
                throw error(lineNo, "Invalid syntax for section header");
            }
            String name = line.substring(1, line.length() - 1);
            for (int i = 0; i < name.length(); i++) {
                char c = name.charAt(i);
                if (c <= 0x1f || c >= 0x7f || c == '[' || c == ']') {
                    throw error(lineNo, "Invalid characters in section name");
                }
            }
            section = name;
            // like dbus-daemon, only the FIRST group with this name is consulted
            inServiceGroup = GROUP.equals(name) && serviceGroup == null;
            if (inServiceGroup) {
                serviceGroup = new HashMap<>();
            }
        }

        private static boolean isKeyChar(char c) {
            return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
        }

        private void keyValue(String line, int lineNo) throws ServiceFileException {
            int n = line.length();
            int p = 0;
            while (p < n && isKeyChar(line.charAt(p))) {
                p++;
            }
            int keyEnd = p;
            if (keyEnd == 0) {
                throw error(lineNo, "Empty key name");
            }
            if (p < n && line.charAt(p) == '[') {
                return; // localised key: ignored, as dbus-daemon does
            }
            while (p < n && line.charAt(p) == ' ') {
                p++;
            }
            if (p < n && line.charAt(p) != '=') {
                throw error(lineNo, "Invalid characters in key name");
            }
            if (p == n) {
                throw error(lineNo, "No '=' in key/value pair");
            }
            p++;
            while (p < n && line.charAt(p) == ' ') {
                p++;
            }
            String value = unescape(line, p, lineNo);
            if (inServiceGroup) {
                serviceGroup.putIfAbsent(line.substring(0, keyEnd), value); // first occurrence wins
            }
        }

        private String unescape(String s, int from, int lineNo) throws ServiceFileException {
            StringBuilder b = new StringBuilder(s.length() - from);
            for (int i = from; i < s.length(); i++) {
                char c = s.charAt(i);
                if (c == 0) {
                    throw error(lineNo, "Text to be unescaped contains embedded nul");
                }
                if (c != '\\') {
                    b.append(c);
                    continue;
                }
                if (++i >= s.length()) {
                    throw error(lineNo, "Text to be unescaped ended in \\");
                }
                switch (s.charAt(i)) {
                    case 's': b.append(' '); break;
                    case 't': b.append('\t'); break;
                    case 'n': b.append('\n'); break;
                    case 'r': b.append('\r'); break;
                    case '\\': b.append('\\'); break;
                    default: throw error(lineNo, "Text to be unescaped had invalid escape sequence");
                }
            }
            return b.toString();
        }
    }
}
