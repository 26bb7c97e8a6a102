package org.kdbusbridge.bridge.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.kdbusbridge.core.bus.BusLimits;

class BusConfigParserTest {
    private static final Path SESSION_CONF = Path.of("/usr/share/dbus-1/session.conf");
    private static final String DOCTYPE = "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
            + " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n";

    @TempDir
    Path dir;

    private Path write(String name, String text) throws IOException {
        Path p = dir.resolve(name);
        Files.createDirectories(p.getParent());
        Files.writeString(p, text);
        return p;
    }

    private static String conf(String body) {
        return "<busconfig>\n" + body + "\n</busconfig>\n";
    }

    // --- the stock session.conf ----------------------------------------------------------

    @Test
    void parsesStockSessionConf() throws Exception {
        assumeTrue(Files.isRegularFile(SESSION_CONF), "no " + SESSION_CONF + " on this machine");
        BusConfig c = assertTimeoutPreemptively(Duration.ofSeconds(10), () -> BusConfigParser.parse(SESSION_CONF));
        assertEquals("session", c.type());
        assertEquals(List.of("unix:tmpdir=/tmp"), c.listen());
        assertEquals(List.of("EXTERNAL"), c.auth());
        assertTrue(c.allowsExternal());
        assertFalse(c.allowsAnonymous());
        assertTrue(c.keepUmask());
        assertFalse(c.fork());
        assertTrue(c.sourceFiles().contains(SESSION_CONF.toString()), c.sourceFiles().toString());

        BusLimits l = c.limits();
        // Set by the file.
        assertEquals(1_000_000_000L, l.maxIncomingBytes);
        assertEquals(250_000_000, l.maxIncomingUnixFds);
        assertEquals(1_000_000_000L, l.maxOutgoingBytes);
        assertEquals(250_000_000, l.maxOutgoingUnixFds);
        assertEquals(1_000_000_000L, l.maxMessageSize);
        assertEquals(120_000, l.serviceStartTimeout);
        assertEquals(240_000, l.authTimeout);
        assertEquals(150_000, l.pendingFdTimeout);
        assertEquals(100_000, l.maxCompletedConnections);
        assertEquals(10_000, l.maxIncompleteConnections);
        assertEquals(100_000, l.maxConnectionsPerUser);
        assertEquals(10_000, l.maxPendingServiceStarts);
        assertEquals(50_000, l.maxNamesPerConnection);
        assertEquals(50_000, l.maxMatchRulesPerConnection);
        assertEquals(50_000, l.maxRepliesPerConnection);
        // Not set by the file: dbus-daemon's defaults.
        assertEquals(16, l.maxMessageUnixFds);
        assertEquals(-1, l.replyTimeout);
    }

    @Test
    void stockSessionConfAllowsOnlyTheBusUser() throws Exception {
        assumeTrue(Files.isRegularFile(SESSION_CONF));
        BusConfig c = BusConfigParser.parse(SESSION_CONF);
        assertTrue(c.isUidAllowed(1000, 1000));
        assertFalse(c.isUidAllowed(1001, 1000));
    }

    @Test
    void defaultsWhenNoLimitsAreGiven() throws Exception {
        BusConfig c = BusConfigParser.parse(write("a.conf", conf("<type>system</type><listen>unix:path=/x</listen>")));
        assertEquals("system", c.type());
        BusLimits d = new BusLimits();
        BusLimits l = c.limits();
        assertEquals(d.maxIncomingBytes, l.maxIncomingBytes);
        assertEquals(127L * 1024 * 1024, l.maxIncomingBytes);
        assertEquals(32L * 1024 * 1024, l.maxMessageSize);
        assertEquals(30_000, l.authTimeout);
        assertEquals(25_000, l.serviceStartTimeout);
        assertEquals(2048, l.maxCompletedConnections);
        assertEquals(64, l.maxIncompleteConnections);
        assertEquals(256, l.maxConnectionsPerUser);
        assertEquals(512, l.maxNamesPerConnection);
        assertEquals(512, l.maxMatchRulesPerConnection);
        assertEquals(128, l.maxRepliesPerConnection);
        assertEquals(-1, l.replyTimeout);
        assertTrue(c.auth().isEmpty());
        assertTrue(c.allowsExternal(), "no <auth> means every mechanism");
    }

    // --- includes -------------------------------------------------------------------------

    @Test
    void includeRelativePathsResolveAgainstTheIncludingFile() throws Exception {
        write("sub/inner.conf", conf("<limit name=\"auth_timeout\">1234</limit><include>deeper/last.conf</include>"));
        write("sub/deeper/last.conf", conf("<listen>unix:path=/from-last</listen>"));
        Path main = write("main.conf", conf("<type>session</type><listen>unix:path=/from-main</listen>"
                + "<include>sub/inner.conf</include>"));
        BusConfig c = BusConfigParser.parse(main);
        assertEquals(1234, c.limits().authTimeout);
        assertEquals(List.of("unix:path=/from-main", "unix:path=/from-last"), c.listen());
        assertEquals(3, c.sourceFiles().size(), c.sourceFiles().toString());
    }

    @Test
    void laterLimitOverridesEarlierOneAcrossIncludes() throws Exception {
        write("inc.conf", conf("<limit name=\"max_names_per_connection\">7</limit>"));
        Path main = write("main.conf", conf("<limit name=\"max_names_per_connection\">3</limit><include>inc.conf</include>"));
        assertEquals(7, BusConfigParser.parse(main).limits().maxNamesPerConnection);
    }

    @Test
    void maxMessageUnixFdsIsClampedToWhatOneSendmsgCarries() throws Exception {
        Path big = write("big.conf", conf("<limit name=\"max_message_unix_fds\">1000</limit>"));
        assertEquals(253, BusConfigParser.parse(big).limits().maxMessageUnixFds);
        Path small = write("small.conf", conf("<limit name=\"max_message_unix_fds\">253</limit>"));
        assertEquals(253, BusConfigParser.parse(small).limits().maxMessageUnixFds);
        Path usual = write("usual.conf", conf("<limit name=\"max_message_unix_fds\">16</limit>"));
        assertEquals(16, BusConfigParser.parse(usual).limits().maxMessageUnixFds);
    }

    @Test
    void missingIncludeWithIgnoreMissingIsSkipped() throws Exception {
        Path main = write("main.conf", conf("<type>session</type><include ignore_missing=\"yes\">nope.conf</include>"
                + "<include ignore_missing=\"yes\">/nonexistent/dir/nope.conf</include>"));
        BusConfig c = BusConfigParser.parse(main);
        assertEquals("session", c.type());
    }

    @Test
    void missingIncludeWithoutIgnoreMissingIsAnErrorNamingTheFile() throws Exception {
        Path main = write("main.conf", conf("<type>session</type>\n<include>missing-one.conf</include>"));
        ConfigException e = assertThrows(ConfigException.class, () -> BusConfigParser.parse(main));
        assertTrue(e.getMessage().contains(dir.resolve("missing-one.conf").toString()), e.getMessage());
    }

    @Test
    void missingIncludeWithIgnoreMissingNoIsAnError() throws Exception {
        Path main = write("main.conf", conf("<include ignore_missing=\"no\">missing-two.conf</include>"));
        ConfigException e = assertThrows(ConfigException.class, () -> BusConfigParser.parse(main));
        assertTrue(e.getMessage().contains("missing-two.conf"), e.getMessage());
    }

    @Test
    void errorInIncludedFileNamesThatFile() throws Exception {
        Path inc = write("bad.conf", conf("<limit name=\"auth_timeout\">soon</limit>"));
        Path main = write("main.conf", conf("<include>bad.conf</include>"));
        ConfigException e = assertThrows(ConfigException.class, () -> BusConfigParser.parse(main));
        assertTrue(e.getMessage().contains(inc.toString()), e.getMessage());
    }

    @Test
    void circularIncludeIsRefused() throws Exception {
        write("b.conf", conf("<include>a.conf</include>"));
        Path a = write("a.conf", conf("<include>b.conf</include>"));
        ConfigException e = assertTimeoutPreemptively(Duration.ofSeconds(10),
                () -> assertThrows(ConfigException.class, () -> BusConfigParser.parse(a)));
        assertTrue(e.getMessage().contains("circular"), e.getMessage());
    }

    @Test
    void includedirOfMissingDirectoryIsSkipped() throws Exception {
        Path main = write("main.conf", conf("<type>session</type><includedir>no-such.d</includedir>"
                + "<includedir>/nonexistent/kdbus-bridge-test.d</includedir>"));
        BusConfig c = BusConfigParser.parse(main);
        assertEquals("session", c.type());
        assertEquals(1, c.sourceFiles().size());
    }

    @Test
    void includedirReadsConfFilesInNameOrder() throws Exception {
        write("conf.d/20-b.conf", conf("<limit name=\"max_replies_per_connection\">20</limit>"));
        write("conf.d/10-a.conf", conf("<limit name=\"max_replies_per_connection\">10</limit>"
                + "<limit name=\"max_names_per_connection\">10</limit>"));
        write("conf.d/30-c.txt", conf("<limit name=\"max_names_per_connection\">30</limit>"));
        Path main = write("main.conf", conf("<includedir>conf.d</includedir>"));
        BusConfig c = BusConfigParser.parse(main);
        assertEquals(20, c.limits().maxRepliesPerConnection, "20-b.conf is read after 10-a.conf");
        assertEquals(10, c.limits().maxNamesPerConnection, "non-.conf files are ignored");
    }

    // --- errors ---------------------------------------------------------------------------

    @Test
    void malformedXmlNamesFileAndLine() throws Exception {
        Path p = write("broken.conf", "<busconfig>\n  <type>session</type>\n  <listen>unix:path=/x</lisen>\n</busconfig>\n");
        ConfigException e = assertThrows(ConfigException.class, () -> BusConfigParser.parse(p));
        assertTrue(e.getMessage().contains(p.toString()), e.getMessage());
        assertTrue(e.getMessage().contains(p + ":3:"), e.getMessage());
    }

    @Test
    void truncatedXmlIsAnError() throws Exception {
        Path p = write("trunc.conf", "<busconfig>\n<type>session</type>\n");
        ConfigException e = assertThrows(ConfigException.class, () -> BusConfigParser.parse(p));
        assertTrue(e.getMessage().contains(p.toString()), e.getMessage());
    }

    @Test
    void unknownElementIsAnError() throws Exception {
        Path p = write("unknown.conf", "<busconfig>\n<type>session</type>\n<frobnicate/>\n</busconfig>\n");
        ConfigException e = assertThrows(ConfigException.class, () -> BusConfigParser.parse(p));
        assertTrue(e.getMessage().contains("frobnicate"), e.getMessage());
        assertTrue(e.getMessage().contains(p + ":3:"), e.getMessage());
    }

    @Test
    void wrongRootElementIsAnError() throws Exception {
        Path p = write("root.conf", "<notbusconfig><type>session</type></notbusconfig>\n");
        ConfigException e = assertThrows(ConfigException.class, () -> BusConfigParser.parse(p));
        assertTrue(e.getMessage().contains("notbusconfig"), e.getMessage());
    }

    @Test
    void nonNumericLimitIsAnError() throws Exception {
        Path p = write("limit.conf", conf("<limit name=\"max_message_size\">lots</limit>"));
        ConfigException e = assertThrows(ConfigException.class, () -> BusConfigParser.parse(p));
        assertTrue(e.getMessage().contains("lots"), e.getMessage());
        assertTrue(e.getMessage().contains(p.toString()), e.getMessage());
    }

    @Test
    void containersLimitsAreReadAndLoweredEach() throws Exception {
        BusLimits d = BusConfigParser.parse(write("d.conf", conf("<type>session</type>"))).limits();
        assertEquals(512, d.maxContainers);
        assertEquals(16, d.maxContainersPerUser);
        assertEquals(4096, d.maxContainerMetadataBytes);
        assertEquals(8, d.maxConnectionsPerContainer);
        assertEquals(64, d.maxConnectionsPerEndpoint);
        assertEquals(16, d.maxEndpointsPerConnection);
        BusLimits l = BusConfigParser.parse(write("c.conf", conf("<limit name=\"max_containers\">5</limit>"
                + "<limit name=\"max_containers_per_user\">3</limit>"
                + "<limit name=\"max_container_metadata_bytes\">100</limit>"
                + "<limit name=\"max_connections_per_container\">2</limit>"
                + "<limit name=\"max_connections_per_endpoint\">4</limit>"
                + "<limit name=\"max_endpoints_per_connection\">1</limit>"))).limits();
        assertEquals(5, l.maxContainers);
        assertEquals(3, l.maxContainersPerUser);
        assertEquals(100, l.maxContainerMetadataBytes);
        assertEquals(2, l.maxConnectionsPerContainer);
        assertEquals(4, l.maxConnectionsPerEndpoint);
        assertEquals(1, l.maxEndpointsPerConnection);
        BusLimits copy = new BusLimits();
        copy.copyFrom(l); // a reload takes them too
        assertEquals(5, copy.maxContainers);
        assertEquals(3, copy.maxContainersPerUser);
        assertEquals(100, copy.maxContainerMetadataBytes);
        assertEquals(2, copy.maxConnectionsPerContainer);
        assertEquals(4, copy.maxConnectionsPerEndpoint);
        assertEquals(1, copy.maxEndpointsPerConnection);
    }

    @Test
    void limitWithoutNameIsAnError() throws Exception {
        Path p = write("limit.conf", conf("<limit>5</limit>"));
        assertThrows(ConfigException.class, () -> BusConfigParser.parse(p));
    }

    @Test
    void unknownLimitNameIsOnlyAWarning() throws Exception {
        Path p = write("limit.conf", conf("<limit name=\"no_such_limit\">5</limit><type>session</type>"));
        assertEquals("session", BusConfigParser.parse(p).type());
    }

    @Test
    void missingTopLevelFileIsAnErrorNamingIt() {
        Path p = dir.resolve("absent.conf");
        ConfigException e = assertThrows(ConfigException.class, () -> BusConfigParser.parse(p));
        assertTrue(e.getMessage().contains(p.toString()), e.getMessage());
    }

    // --- user rules -----------------------------------------------------------------------

    @Test
    void allowUserStarInDefaultPolicyAllowsAnyUid() throws Exception {
        Path p = write("users.conf", conf("<policy context=\"default\"><allow user=\"*\"/></policy>"));
        BusConfig c = BusConfigParser.parse(p);
        for (long uid : new long[] {0, 1, 1000, 65534, 4_000_000_000L}) {
            assertTrue(c.isUidAllowed(uid, 1000), "uid " + uid);
        }
    }

    @Test
    void withoutUserRulesOnlyTheBusUidIsAllowed() throws Exception {
        Path p = write("users.conf", conf("<policy context=\"default\"><allow own=\"*\"/></policy>"));
        BusConfig c = BusConfigParser.parse(p);
        assertTrue(c.isUidAllowed(1000, 1000));
        assertFalse(c.isUidAllowed(0, 1000));
        assertFalse(c.isUidAllowed(1001, 1000));
    }

    @Test
    void laterUserRuleWins() throws Exception {
        Path p = write("users.conf", conf("<policy context=\"default\"><allow user=\"*\"/><deny user=\"1234\"/></policy>"));
        BusConfig c = BusConfigParser.parse(p);
        assertFalse(c.isUidAllowed(1234, 1000));
        assertTrue(c.isUidAllowed(1235, 1000));
    }

    @Test
    void userRulesOutsideDefaultOrMandatoryContextDoNotGrantConnect() throws Exception {
        Path p = write("users.conf", conf("<policy at_console=\"true\"><allow user=\"*\"/></policy>"));
        BusConfig c = BusConfigParser.parse(p);
        assertFalse(c.isUidAllowed(4242, 1000));
    }

    @Test
    void userRulesInsidePerUserPolicyAreAnError() throws Exception {
        Path p = write("users.conf", conf("<policy user=\"root\">\n<allow user=\"*\"/></policy>"));
        ConfigException e = assertThrows(ConfigException.class, () -> BusConfigParser.parse(p));
        assertTrue(e.getMessage().contains(p + ":3:"), e.getMessage());
    }

    // --- no network -----------------------------------------------------------------------

    @Test
    void doctypeDtdIsNotFetched() throws Exception {
        Path p = write("doctype.conf", DOCTYPE + conf("<type>session</type>"));
        BusConfig c = assertTimeoutPreemptively(Duration.ofSeconds(5), () -> BusConfigParser.parse(p));
        assertEquals("session", c.type());
    }

    @Test
    void doctypePointingAtALocalBrokenDtdIsNotRead() throws Exception {
        Path dtd = write("broken.dtd", "this is <<< not a DTD at all");
        Path p = write("doctype.conf", "<!DOCTYPE busconfig SYSTEM \"" + dtd.toUri() + "\">\n" + conf("<type>session</type>"));
        assertEquals("session", BusConfigParser.parse(p).type());
    }

    @Test
    void externalEntitiesAreNotExpanded() throws Exception {
        Path secret = write("secret.txt", "SECRET-CONTENT");
        Path p = write("xxe.conf", "<!DOCTYPE busconfig [ <!ENTITY x SYSTEM \"" + secret.toUri() + "\"> ]>\n"
                + conf("<type>session&x;</type>"));
        String type;
        try {
            type = BusConfigParser.parse(p).type();
        } catch (ConfigException refused) {
            return; // refusing the file outright is fine too
        }
        assertNotEquals("sessionSECRET-CONTENT", type);
        assertFalse(type.contains("SECRET"), type);
    }
}
