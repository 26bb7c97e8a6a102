package org.kdbusbridge.bridge.embedded;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.regex.Pattern;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

@Timeout(120)
@ExtendWith(KdbusBridgeExtension.class)
class KdbusBridgeExtensionTest {
    private static EmbeddedBus classBus;
    private static String classAddress;
    private static EmbeddedBus nestedBus;

    @BeforeAll
    static void recordBus(EmbeddedBus bus, @BusAddress String address) {
        assertTrue(bus.isRunning(), "the bus is up before @BeforeAll methods");
        classBus = bus;
        classAddress = address;
    }

    @AfterAll
    static void busStillUpInAfterAll(EmbeddedBus bus) {
        assertSame(classBus, bus);
        assertTrue(bus.isRunning(), "the extension closes the bus after @AfterAll methods");
        // The @Nested class has finished by now, and the extension closed its bus in afterAll.
        if (nestedBus != null) {
            assertFalse(nestedBus.isRunning(), "the nested class's bus was closed after that class");
            assertFalse(Files.exists(nestedBus.directory().orElseThrow()), "and its directory deleted");
        }
    }

    @Test
    void everyMethodSeesTheClassBus(EmbeddedBus bus, @BusAddress String address) {
        assertSame(classBus, bus);
        assertEquals(classAddress, address);
        assertEquals(bus.address(), address);
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 2})
    void parameterizedInvocationsShareIt(int round, @BusAddress String address) {
        assertTrue(round > 0);
        assertEquals(classAddress, address);
    }

    @Test
    void rawSocketClientAuthenticatesAndSaysHello(@BusAddress String address) throws Exception {
        try (HelloClient c = HelloClient.connect(address)) {
            assertTrue(address.endsWith(",guid=" + c.serverGuid), address + " vs " + c.serverGuid);
            assertTrue(c.uniqueName.matches(":1\\.\\d+"), c.uniqueName);
        }
    }

    @Test
    void dbusSendListNames(@BusAddress String address) throws Exception {
        Cmd.Result r = Cmd.listNames(address);
        assertTrue(r.ok(), r.describe());
        assertTrue(r.stdout().contains("\"org.freedesktop.DBus\""), r.describe());
    }

    @Test
    void gdbusCallListNames(@BusAddress String address) throws Exception {
        // GDBus is the client dbus-java's EmbeddedDBusDaemon does not serve.
        Cmd.Result r = Cmd.run(List.of("gdbus", "call", "--address", address, "--dest", "org.freedesktop.DBus",
                "--object-path", "/org/freedesktop/DBus", "--method", "org.freedesktop.DBus.ListNames"));
        assertTrue(r.ok(), r.describe());
        // e.g. (['org.freedesktop.DBus', ':1.3'],)
        assertTrue(Pattern.compile("^\\(\\[.*'org\\.freedesktop\\.DBus'.*\\],\\)\\s*$", Pattern.DOTALL)
                .matcher(r.stdout()).matches(), r.describe());
        assertTrue(Pattern.compile("':1\\.\\d+'").matcher(r.stdout()).find(), "gdbus's own name\n" + r.describe());
    }

    @Test
    void busctlList(@BusAddress String address) throws Exception {
        Cmd.Result r = Cmd.run(List.of("busctl", "--address=" + address, "--no-pager", "--no-legend", "list"));
        assertTrue(r.ok(), r.describe());
        assertTrue(r.stdout().contains("org.freedesktop.DBus"), r.describe());
    }

    @Nested
    class NestedClass {
        private EmbeddedBus seenInBeforeEach;

        @BeforeEach
        void before(EmbeddedBus bus) {
            seenInBeforeEach = bus;
        }

        @Test
        void getsItsOwnBus(EmbeddedBus bus, @BusAddress String address) throws Exception {
            nestedBus = bus;
            assertSame(seenInBeforeEach, bus);
            assertNotSame(classBus, bus);
            assertTrue(classBus.isRunning(), "the outer class's bus is still up");
            assertEquals(bus.address(), address);
            Cmd.Result r = Cmd.listNames(address);
            assertTrue(r.ok(), r.describe());
        }
    }

    @Nested
    @TestInstance(TestInstance.Lifecycle.PER_CLASS)
    class PerClassConstructorInjection {
        private final EmbeddedBus bus;
        private final String address;

        PerClassConstructorInjection(EmbeddedBus bus, @BusAddress String address) {
            this.bus = bus;
            this.address = address;
        }

        @Test
        void constructorGotTheBusOfThisClass(EmbeddedBus methodBus) throws Exception {
            assertNotNull(bus);
            assertSame(bus, methodBus);
            assertEquals(bus.address(), address);
            Path dir = bus.directory().orElseThrow();
            assertTrue(Files.isDirectory(dir));
            try (HelloClient c = HelloClient.connect(address)) {
                assertEquals(":1.0", c.uniqueName, "a fresh bus: this is its first connection");
            }
        }
    }
}
