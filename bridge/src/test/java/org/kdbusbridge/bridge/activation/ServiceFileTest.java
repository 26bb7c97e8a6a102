package org.kdbusbridge.bridge.activation;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ServiceFileTest {

    private static final Path F = Path.of("/x/org.example.Foo.service");

    private static ServiceFile parse(String text) throws ServiceFileException {
        return ServiceFile.parse(F, text);
    }

    private static ServiceFileException fails(String text) {
        return assertThrows(ServiceFileException.class, () -> parse(text));
    }

    @Test
    void parsesAllKeysCommentsBlanksOtherGroupsAndEscapes() throws Exception {
        ServiceFile f = parse("# a comment\n"
                + "\n"
                + "[Other Group]\n"
                + "Name=org.example.Wrong\n"
                + "   \t\n"
                + "[D-BUS Service]\n"
                + "Name = org.example.Foo\n"
                + "Name[de]=whatever is ignored\n"
                + "Exec=/usr/bin/foo\\s--a\\tb\\\\c --d  \n"
                + "User=nobody\n"
                + "SystemdService=foo.service\n"
                + "AssumedAppArmorLabel=/usr/bin/foo\n"
                + "Exec=/second/is/ignored\n"
                + "[D-BUS Service]\n"
                + "Name=org.example.SecondGroupIgnored\n");
        assertEquals("org.example.Foo", f.name());
        assertEquals("/usr/bin/foo --a\tb\\c --d  ", f.exec(), "value kept verbatim, trailing blanks too");
        assertEquals(Optional.of("nobody"), f.user());
        assertEquals(Optional.of("foo.service"), f.systemdService());
        assertEquals(Optional.of("/usr/bin/foo"), f.assumedAppArmorLabel());
        assertTrue(f.hasExpectedFileName());
        assertEquals(F, f.path());
    }

    @Test
    void crlfAndCrLineEndingsAndMissingOptionals() throws Exception {
        ServiceFile f = parse("[D-BUS Service]\r\nName=org.example.Foo\rExec=/bin/true");
        assertEquals("/bin/true", f.exec());
        assertEquals(Optional.empty(), f.user());
        assertEquals(Optional.empty(), f.systemdService());
        assertEquals(Optional.empty(), f.assumedAppArmorLabel());
    }

    @Test
    void execIsRequiredEvenWithSystemdService() {
        ServiceFileException e = fails("[D-BUS Service]\nName=org.example.Foo\nSystemdService=foo.service\n");
        assertTrue(e.getMessage().startsWith(F.toString() + ": "), e.getMessage());
        assertTrue(e.getMessage().contains("No \"Exec\" key"), e.getMessage());
    }

    @Test
    void missingGroupMeansMissingName() {
        ServiceFileException e = fails("[Desktop Entry]\nName=org.example.Foo\nExec=/bin/true\n");
        assertTrue(e.getMessage().contains("No \"Name\" key"), e.getMessage());
    }

    @Test
    void errorsNameFileAndLine() {
        ServiceFileException e = fails("[D-BUS Service]\nName=org.example.Foo\nExec=/bin/a\\qb\n");
        assertEquals(3, e.line());
        assertEquals(F, e.file());
        assertTrue(e.getMessage().startsWith(F + ":3: "), e.getMessage());
        assertTrue(e.getMessage().contains("invalid escape"), e.getMessage());

        assertEquals(1, fails("Name=org.example.Foo\n[D-BUS Service]\n").line());
        assertEquals(2, fails("\n[D-BUS Service\n").line());
        assertEquals(1, fails("[]\n").line());
        assertEquals(1, fails("[Bad[Name]]\n").line());
        assertTrue(fails("[D-BUS Service]\nNa_me=x\n").detail().contains("Invalid characters in key name"));
        assertTrue(fails("[D-BUS Service]\nName\n").detail().contains("No '='"));
        assertTrue(fails("[D-BUS Service]\n  # indented comment is a syntax error\n").detail().contains("Empty key name"));
        assertTrue(fails("[D-BUS Service]\nExec=/bin/x\\\n").detail().contains("ended in \\"));
        assertTrue(fails("[D-BUS Service]\nExec=/bin/x\u0000y\n").detail().contains("nul"));
    }

    @Test
    void syntaxErrorInAnIgnoredGroupStillFails() {
        ServiceFileException e = fails("[D-BUS Service]\nName=org.example.Foo\nExec=/bin/true\n[Other]\nbroken line\n");
        assertEquals(5, e.line());
        assertTrue(e.detail().contains("Other"), e.detail());
    }

    @Test
    void nameMustBeAWellKnownBusName() {
        assertTrue(fails("[D-BUS Service]\nName=not a name\nExec=/bin/true\n").detail().contains("not a valid"));
        assertTrue(fails("[D-BUS Service]\nName=:1.42\nExec=/bin/true\n").detail().contains("not a valid"));
        assertTrue(fails("[D-BUS Service]\nName=nodots\nExec=/bin/true\n").detail().contains("not a valid"));
    }

    @Test
    void mismatchedFileNameIsParsedButFlagged() throws Exception {
        ServiceFile f = ServiceFile.parse(Path.of("/x/foo.service"), "[D-BUS Service]\nName=org.example.Foo\nExec=\n");
        assertFalse(f.hasExpectedFileName());
        assertEquals("org.example.Foo.service", f.expectedFileName());
        assertEquals("", f.exec(), "an empty Exec is accepted, like dbus-daemon");
    }

    @Test
    void loadRejectsBadUtf8AndHugeFiles(@TempDir Path dir) throws Exception {
        Path bad = dir.resolve("org.example.Bad.service");
        Files.write(bad, new byte[] {'[', 'D', ']', '\n', (byte) 0xff, '\n'});
        ServiceFileException e = assertThrows(ServiceFileException.class, () -> ServiceFile.load(bad));
        assertTrue(e.getMessage().contains("invalid UTF-8") && e.getMessage().contains(bad.toString()));

        Path big = dir.resolve("org.example.Big.service");
        Files.writeString(big, "#" + "x".repeat((int) ServiceFile.MAX_SIZE) + "\n");
        assertTrue(assertThrows(ServiceFileException.class, () -> ServiceFile.load(big)).detail().contains("too large"));

        Path missing = dir.resolve("nope.service");
        assertEquals(missing, assertThrows(ServiceFileException.class, () -> ServiceFile.load(missing)).file());

        Path good = dir.resolve("org.example.Good.service");
        Files.writeString(good, "[D-BUS Service]\nName=org.example.Good\nExec=/bin/true\n");
        assertEquals("org.example.Good", ServiceFile.load(good).name());
    }
}
