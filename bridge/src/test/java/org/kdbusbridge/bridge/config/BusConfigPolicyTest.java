package org.kdbusbridge.bridge.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.kdbusbridge.core.policy.MessageKind;
import org.kdbusbridge.core.policy.PolicyDatabase;
import org.kdbusbridge.core.policy.PolicyQuery;
import org.kdbusbridge.core.policy.PolicyRule;

/** The {@code <policy>} database and the elements beyond the basics, as BusConfigParser reads them. */
class BusConfigPolicyTest {
    private static final Path SESSION_CONF = Path.of("/usr/share/dbus-1/session.conf");
    private static final Path SYSTEM_CONF = Path.of("/usr/share/dbus-1/system.conf");
    private static final long[] NO_GROUPS = {};

    @TempDir
    Path dir;

    private Path write(String name, String text) throws IOException {
        Path p = dir.resolve(name);
        Files.createDirectories(p.getParent());
        Files.writeString(p, text);
        return p;
    }

    private BusConfig parse(String body) throws Exception {
        return BusConfigParser.parse(write("t.conf", "<busconfig>\n" + body + "\n</busconfig>\n"));
    }

    /** Parses a config whose line 2 holds {@code body}; asserts the error names file and line 2. */
    private String refused(String body) throws IOException {
        Path p = write("bad.conf", "<busconfig>\n" + body + "\n</busconfig>\n");
        ConfigException e = assertThrows(ConfigException.class, () -> BusConfigParser.parse(p));
        assertTrue(e.getMessage().startsWith(p + ":2:"), e.getMessage());
        return e.getMessage();
    }

    // --- the stock files ----------------------------------------------------------------

    @Test
    void stockSessionConfBuildsItsPolicy() throws Exception {
        assumeTrue(Files.isRegularFile(SESSION_CONF));
        BusConfig c = BusConfigParser.parse(SESSION_CONF);
        PolicyDatabase db = c.policy();
        assertEquals(3, db.defaultRules().size(), db.defaultRules().toString());
        PolicyRule.Send send = assertInstanceOf(PolicyRule.Send.class, db.defaultRules().get(0));
        assertNull(send.destination());
        assertTrue(send.eavesdrop());
        PolicyRule.Receive recv = assertInstanceOf(PolicyRule.Receive.class, db.defaultRules().get(1));
        assertTrue(recv.eavesdrop());
        assertEquals(new PolicyRule.Own(true, null, false), db.defaultRules().get(2));
        assertTrue(db.canOwn(1000, NO_GROUPS, "org.example.Anything"));
        assertTrue(c.serviceDirs().contains("/usr/share/dbus-1/services"), c.serviceDirs().toString());
        assertTrue(c.serviceDirs().contains("/usr/local/share/dbus-1/services"), c.serviceDirs().toString());
    }

    @Test
    void stockSessionConfCompilesToTheAllAllowedFastPath() throws Exception {
        assumeTrue(Files.isRegularFile(SESSION_CONF));
        org.kdbusbridge.core.policy.ConnectionPolicy p = BusConfigParser.parse(SESSION_CONF).compilePolicy(1000);
        assertTrue(p.allowsAllSends(), p.toString());
        assertTrue(p.allowsAllReceives(), p.toString());
    }

    @Test
    void stockSystemConfDeniesCallsButLetsRequestedRepliesThrough() throws Exception {
        assumeTrue(Files.isRegularFile(SYSTEM_CONF));
        org.kdbusbridge.core.policy.ConnectionPolicy p = BusConfigParser.parse(SYSTEM_CONF).compilePolicy(4242);
        assertFalse(p.allowsAllSends(), p.toString());
        assertFalse(p.canSend(new PolicyQuery().type(1).path("/x").iface("com.example.I").member("M")
                .destination("com.example.Nobody")));
        assertTrue(p.canSend(new PolicyQuery().type(2).hasReplySerial(true).requestedReply(true)
                .destination(":1.7")), "a requested reply");
        assertFalse(p.canSend(new PolicyQuery().type(2).hasReplySerial(true)
                .destination(":1.7")), "an unrequested reply");
        assertTrue(p.canSend(new PolicyQuery().type(1).path("/org/freedesktop/DBus").iface("org.freedesktop.DBus")
                .member("GetId").destination("org.freedesktop.DBus")));
        assertFalse(p.canSend(new PolicyQuery().type(1).path("/org/freedesktop/DBus").iface("org.freedesktop.DBus")
                .member("UpdateActivationEnvironment").destination("org.freedesktop.DBus")));
        assertTrue(p.canReceive(new PolicyQuery().type(4).path("/x").iface("a.b").member("S")));
        assertFalse(p.canOwn("com.example.Anything"));
    }

    @Test
    void stockSystemConfLoadsWithEveryFragment() throws Exception {
        assumeTrue(Files.isRegularFile(SYSTEM_CONF));
        BusConfig c = BusConfigParser.parse(SYSTEM_CONF);
        assertEquals("system", c.type());
        assertEquals("messagebus", c.user());
        assertTrue(c.fork());
        assertTrue(c.syslog());
        assertFalse(c.keepUmask());
        assertEquals("/run/dbus/pid", c.pidfile());
        assertEquals("/usr/lib/dbus-1.0/dbus-daemon-launch-helper", c.servicehelper());
        assertEquals(List.of("unix:path=/run/dbus/system_bus_socket"), c.listen());
        assertEquals(List.of("EXTERNAL"), c.auth());
        assertEquals(List.of("/usr/local/share/dbus-1/system-services", "/usr/share/dbus-1/system-services",
                "/lib/dbus-1/system-services"), c.serviceDirs());

        // Every .conf in both system.d directories was read, none skipped as broken.
        long fragments = 0;
        for (Path d : List.of(Path.of("/usr/share/dbus-1/system.d"), Path.of("/etc/dbus-1/system.d"))) {
            if (Files.isDirectory(d)) {
                try (Stream<Path> s = Files.list(d)) {
                    fragments += s.filter(p -> p.toString().endsWith(".conf")).count();
                }
            }
        }
        assertEquals(1 + fragments, c.sourceFiles().size(), c.sourceFiles().toString());

        PolicyDatabase db = c.policy();
        assertTrue(c.isUidAllowed(4242, 100), "<allow user=\"*\"/>");
        assertTrue(c.isUidAllowed(0, 100));
        assertFalse(db.canOwn(4242, NO_GROUPS, "org.example.Nobody"), "<deny own=\"*\"/>");
        assertTrue(db.userRules(0).size() >= 3, db.userRules(0).toString());
        PolicyRule.Send methodCalls = assertInstanceOf(PolicyRule.Send.class, db.defaultRules().get(2));
        assertFalse(methodCalls.allow());
        assertEquals(MessageKind.METHOD_CALL, methodCalls.type());
        assertTrue(db.defaultRules().stream().anyMatch(r -> r instanceof PolicyRule.Send s && s.allow()
                && s.type() == MessageKind.METHOD_RETURN && s.requestedReply()));
    }

    // --- policy contexts ---------------------------------------------------------------

    @Test
    void everyContextIsKeptInFileOrder() throws Exception {
        BusConfig c = parse("<policy context=\"default\"><allow own=\"a.one\"/></policy>"
                + "<policy user=\"0\"><allow own=\"a.user\"/></policy>"
                + "<policy group=\"0\"><deny own=\"a.group\"/></policy>"
                + "<policy at_console=\"true\"><allow own=\"a.con\"/></policy>"
                + "<policy at_console=\"false\"><deny own=\"a.nocon\"/></policy>"
                + "<policy context=\"mandatory\"><deny own=\"a.one\"/></policy>"
                + "<policy context=\"default\"><allow own=\"a.two\"/></policy>"
                + "<policy user=\"root\"><allow own=\"a.user2\"/></policy>");
        PolicyDatabase db = c.policy();
        assertEquals(List.of(new PolicyRule.Own(true, "a.one", false), new PolicyRule.Own(true, "a.two", false)),
                db.defaultRules());
        assertEquals(List.of(new PolicyRule.Own(true, "a.user", false), new PolicyRule.Own(true, "a.user2", false)),
                db.userRules(0));
        assertEquals(List.of(new PolicyRule.Own(false, "a.group", false)), db.groupRules(0));
        assertEquals(1, db.consoleRules(true).size());
        assertEquals(1, db.consoleRules(false).size());
        assertEquals(1, db.mandatoryRules().size());
        assertEquals(8, db.size());
        assertFalse(db.canOwn(5, NO_GROUPS, "a.one"), "mandatory wins");
    }

    @Test
    void policyInAnIncludedFileLandsWhereTheIncludeIs() throws Exception {
        write("inc.conf", "<busconfig><policy context=\"default\"><deny own=\"a.b\"/></policy></busconfig>");
        BusConfig c = parse("<policy context=\"default\"><allow own=\"a.b\"/></policy><include>inc.conf</include>"
                + "<policy context=\"default\"><allow own=\"c.d\"/></policy>");
        assertEquals(3, c.policy().defaultRules().size());
        assertFalse(c.policy().canOwn(1, NO_GROUPS, "a.b"));
        assertTrue(c.policy().canOwn(1, NO_GROUPS, "c.d"));
    }

    @Test
    void brokenIncludedirFragmentContributesNothing() throws Exception {
        write("d/10-good.conf", "<busconfig><policy context=\"default\"><allow own=\"a.good\"/></policy></busconfig>");
        write("d/20-bad.conf", "<busconfig><listen>unix:path=/bad</listen><policy context=\"default\">"
                + "<allow own=\"a.bad\"/><allow send_type=\"bogus\"/></policy></busconfig>");
        BusConfig c = parse("<listen>unix:path=/good</listen><includedir>d</includedir>");
        assertTrue(c.policy().canOwn(1, NO_GROUPS, "a.good"));
        assertFalse(c.policy().canOwn(1, NO_GROUPS, "a.bad"));
        assertEquals(1, c.policy().size());
        assertEquals(List.of("unix:path=/good"), c.listen());
        assertEquals(2, c.sourceFiles().size(), c.sourceFiles().toString());
    }

    @Test
    void unknownUserOrGroupPolicyIsIgnoredButStillChecked() throws Exception {
        BusConfig c = parse("<policy user=\"no-such-user-kdbus\"><allow own=\"a.b\"/></policy>"
                + "<policy group=\"no-such-group-kdbus\"><allow own=\"a.b\"/></policy>"
                + "<policy context=\"default\"><allow user=\"no-such-user-kdbus\"/><allow group=\"no-such-group-kdbus\"/>"
                + "</policy>");
        assertEquals(0, c.policy().size());
        refused("<policy user=\"no-such-user-kdbus\"><allow send_type=\"nope\"/></policy>");
    }

    @Test
    void groupRulesUseTheGroupsOfTheUid() throws Exception {
        assumeTrue(Users.uidOf("root") == 0, "no root in /etc/passwd");
        BusConfig c = parse("<policy context=\"default\"><allow group=\"0\"/></policy>");
        assertTrue(c.isUidAllowed(0, 1000), "root's primary group is 0");
        assertFalse(c.isUidAllowed(4_000_000_000L, 1000), "a uid without passwd entry has no groups");
        assertEquals(c.groupsOf(0)[0], 0L);
    }

    @Test
    void mandatoryUserRulesOverrideDefaultOnes() throws Exception {
        BusConfig c = parse("<policy context=\"mandatory\"><deny user=\"77\"/></policy>"
                + "<policy context=\"default\"><allow user=\"*\"/></policy>");
        assertFalse(c.isUidAllowed(77, 1000));
        assertTrue(c.isUidAllowed(78, 1000));
    }

    @ParameterizedTest
    @ValueSource(strings = {
        "<policy context=\"default\"><allow send_destination=\"a\" receive_sender=\"b\"/></policy>",
        "<policy context=\"default\"><allow frobnicate=\"a\"/></policy>",
        "<policy context=\"default\"><allow send_type=\"method\"/></policy>",
        "<policy context=\"default\"><allow receive_type=\"sig\"/></policy>",
        "<policy context=\"default\"><allow send_member=\"M\"/></policy>",
        "<policy context=\"default\"><allow send_error=\"a.E\" send_interface=\"a.I\"/></policy>",
        "<policy context=\"default\"><allow send_destination=\"a.b\" send_broadcast=\"true\"/></policy>",
        "<policy context=\"default\"><allow send_type=\"signal\" eavesdrop=\"yes\"/></policy>",
        "<policy context=\"default\"><allow send_type=\"signal\" max_fds=\"-1\"/></policy>",
        "<policy context=\"default\"><allow own=\"a\" user=\"*\"/></policy>",
        "<policy context=\"default\"><allow/></policy>",
        "<policy context=\"default\"><allow own=\"a\"><deny own=\"b\"/></allow></policy>",
        "<policy context=\"sometimes\"><allow own=\"a\"/></policy>",
        "<policy context=\"default\" user=\"root\"><allow own=\"a\"/></policy>",
        "<policy><allow own=\"a\"/></policy>",
        "<policy at_console=\"maybe\"><allow own=\"a\"/></policy>",
        "<policy group=\"0\"><allow group=\"*\"/></policy>",
        "<policy context=\"default\" flavour=\"x\"><allow own=\"a\"/></policy>",
        "<allow own=\"a\"/>",
        "<policy context=\"default\"><listen>x</listen></policy>",
        "<policy context=\"default\">text<allow own=\"a\"/></policy>",
    })
    void malformedPolicyIsAnErrorNamingFileAndLine(String body) throws Exception {
        refused(body);
    }

    @Test
    void errorMessagesSayWhatIsWrong() throws Exception {
        assertTrue(refused("<policy context=\"default\"><allow frobnicate=\"a\"/></policy>").contains("frobnicate"));
        assertTrue(refused("<policy context=\"default\"><deny send_type=\"sgnal\"/></policy>").contains("sgnal"));
    }

    // --- the other elements ------------------------------------------------------------

    @Test
    void apparmorModeIsKept() throws Exception {
        assertNull(parse("<type>session</type>").apparmorMode());
        assertEquals("required", parse("<apparmor mode=\"required\"/>").apparmorMode());
        assertEquals("disabled", parse("<apparmor mode=\"enabled\"/><apparmor mode=\"disabled\"/>").apparmorMode());
        assertNull(parse("<apparmor/>").apparmorMode());
        assertTrue(refused("<apparmor mode=\"on\"/>").contains("on"));
        refused("<apparmor level=\"enabled\"/>");
    }

    @Test
    void selinuxAssociationsAreKept() throws Exception {
        BusConfig c = parse("<selinux><associate own=\"org.a\" context=\"system_u:object_r:a_t\"/>"
                + "<associate own=\"org.b\" context=\"b_t\"/><associate own=\"org.a\" context=\"a2_t\"/></selinux>");
        assertEquals(Map.of("org.a", "a2_t", "org.b", "b_t"), c.selinuxContexts());
        refused("<selinux><associate own=\"org.a\"/></selinux>");
        refused("<selinux><associate context=\"x\"/></selinux>");
        refused("<selinux><associate own=\"a\" context=\"x\" extra=\"1\"/></selinux>");
        refused("<selinux mode=\"x\"/>");
        refused("<selinux><allow own=\"a\"/></selinux>");
    }

    @Test
    void daemonElements() throws Exception {
        BusConfig c = parse("<user>messagebus</user><pidfile>/run/x.pid</pidfile><keep_umask/><syslog/><fork/>"
                + "<servicehelper>helper/bin</servicehelper>"
                + "<listen>unix:path=/a</listen><listen>tcp:host=localhost,port=0</listen><listen>unix:abstract=/c</listen>");
        assertEquals("messagebus", c.user());
        assertEquals("/run/x.pid", c.pidfile());
        assertTrue(c.keepUmask());
        assertTrue(c.syslog());
        assertTrue(c.fork());
        assertEquals(dir.resolve("helper/bin").toString(), c.servicehelper());
        assertEquals(List.of("unix:path=/a", "tcp:host=localhost,port=0", "unix:abstract=/c"), c.listen());
    }

    @Test
    void standardSystemServicedirsAndDuplicates() throws Exception {
        BusConfig c = parse("<servicedir>/usr/share/dbus-1/system-services</servicedir><standard_system_servicedirs/>"
                + "<standard_system_servicedirs/><servicedir>rel</servicedir>");
        assertEquals(List.of("/usr/share/dbus-1/system-services", "/usr/local/share/dbus-1/system-services",
                "/lib/dbus-1/system-services", dir.resolve("rel").toString()), c.serviceDirs());
    }

    @ParameterizedTest
    @ValueSource(strings = {"<fork>yes</fork>", "<fork now=\"1\"/>", "<listen></listen>", "<listen addr=\"x\">a</listen>",
        "<user/>", "<pidfile> </pidfile>", "<servicehelper/>", "<include ignore_missing=\"maybe\">x.conf</include>",
        "<include if_selinux_enabled=\"1\">x.conf</include>", "<include selinux_root_relative=\"y\">x.conf</include>",
        "<standard_session_servicedirs dirs=\"x\"/>", "<type><user>x</user></type>", "<limit name=\"x\" v=\"1\">1</limit>"})
    void malformedElementsAreErrors(String body) throws Exception {
        refused(body);
    }

    @Test
    void busconfigTakesNoAttributes() throws Exception {
        Path p = write("attr.conf", "<busconfig version=\"1\">\n<type>session</type>\n</busconfig>\n");
        ConfigException e = assertThrows(ConfigException.class, () -> BusConfigParser.parse(p));
        assertTrue(e.getMessage().startsWith(p + ":1:"), e.getMessage());
    }

    @Test
    void forAddressHasTheSessionPolicy() {
        BusConfig c = BusConfig.forAddress("unix:path=/x");
        assertEquals(3, c.policy().size());
        org.kdbusbridge.core.policy.ConnectionPolicy p = c.compilePolicy(6);
        assertTrue(p.allowsAllSends(), p.toString());
        assertTrue(p.allowsAllReceives(), p.toString());
        assertTrue(p.canOwn("any.name"));
        assertTrue(c.isUidAllowed(5, 5));
        assertFalse(c.isUidAllowed(6, 5));
        assertNull(c.servicehelper());
        assertTrue(c.selinuxContexts().isEmpty());
    }

    @Test
    void aUidsCompiledPolicyIsReusedUntilThePolicyChanges() throws Exception {
        BusConfig c = parse("<policy context=\"default\"><allow own=\"a.all\"/></policy>"
                + "<policy user=\"0\"><allow own=\"a.root\"/></policy>");
        org.kdbusbridge.core.policy.ConnectionPolicy root = c.compilePolicy(0);
        assertSame(root, c.compilePolicy(0), "every connection of a uid shares one compiled policy");
        org.kdbusbridge.core.policy.ConnectionPolicy other = c.compilePolicy(4242);
        assertNotSame(root, other);
        assertTrue(root.canOwn("a.root"));
        assertFalse(other.canOwn("a.root"), "uid 4242 does not get uid 0's rules");
        assertTrue(other.canOwn("a.all"));
        c.policy = org.kdbusbridge.core.policy.PolicyDatabase.EMPTY; // what a rebuilt policy looks like
        assertNotSame(root, c.compilePolicy(0), "a new policy database compiles afresh");
        assertFalse(c.compilePolicy(0).canOwn("a.root"));
    }
}
