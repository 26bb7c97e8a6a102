package org.kdbusbridge.bridge.config;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.OptionalLong;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class UsersTest {
    @TempDir
    Path dir;

    @Test
    void groupsArePrimaryThenSupplementaryInFileOrder() throws Exception {
        Path passwd = Files.writeString(dir.resolve("passwd"),
                "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/sh\nbad:x:zz:1::/:/bin/sh\n");
        Path group = Files.writeString(dir.resolve("group"),
                "root:x:0:\nwheel:x:10:alice,bob\nalice:x:1000:\naudio:x:29:bob,alice\nbroken:x:qq:alice\n");
        Users.GroupTable t = Users.GroupTable.load(passwd, group);
        assertArrayEquals(new long[] {1000, 10, 29}, t.groupsOf(1000));
        assertArrayEquals(new long[] {0}, t.groupsOf(0));
        assertArrayEquals(new long[] {}, t.groupsOf(4242));
        long[] copy = t.groupsOf(1000);
        copy[0] = 99;
        assertEquals(1000, t.groupsOf(1000)[0], "the cache hands out copies");
    }

    @Test
    void unreadableFilesGiveAnEmptyTable() {
        Users.GroupTable t = Users.GroupTable.load(dir.resolve("none"), dir.resolve("none2"));
        assertArrayEquals(new long[] {}, t.groupsOf(0));
    }

    @Test
    void namesAndNumbersResolve() throws Exception {
        Path group = Files.writeString(dir.resolve("group"), "wheel:x:10:alice\n");
        assertEquals(OptionalLong.of(10), Users.idOf("wheel", group));
        assertEquals(OptionalLong.of(77), Users.idOf("77", group));
        assertFalse(Users.idOf("staff", group).isPresent());
        assertFalse(Users.idOf("99999999999999999999999", group).isPresent());
        assertEquals(-2, Users.uidOf("no-such-user-kdbus"));
    }
}
