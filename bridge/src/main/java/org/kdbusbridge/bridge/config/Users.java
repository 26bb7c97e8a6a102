package org.kdbusbridge.bridge.config;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * User name to uid, read from /etc/passwd at config time only (never on the message path,
 * which must not do NSS look-ups).
 */
final class Users {
    private Users() { }

    /** The uid, or -2 if unknown. Numeric names are taken as uids. */
    static long uidOf(String name) {
        if (name.chars().allMatch(Character::isDigit) && !name.isEmpty()) {
            return Long.parseLong(name);
        }
        try {
            for (String line : Files.readAllLines(Path.of("/etc/passwd"))) {
                String[] f = line.split(":");
                if (f.length > 2 && f[0].equals(name)) {
                    return Long.parseLong(f[2]);
                }
            }
        } catch (IOException | NumberFormatException e) {
            return -2;
        }
        return -2;
    }
}
