package org.kdbusbridge.bridge.endpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.kdbusbridge.bridge.endpoint.ProxyRuleParser.Action;
import org.kdbusbridge.bridge.endpoint.ProxyRuleParser.CommandLine;
import org.kdbusbridge.core.endpoint.CallRule;
import org.kdbusbridge.core.endpoint.EndpointFilter;
import org.kdbusbridge.core.endpoint.EndpointPolicy;
import org.kdbusbridge.core.endpoint.Level;
import org.kdbusbridge.core.endpoint.NamePattern;
import org.kdbusbridge.core.endpoint.NameRule;

// xdg-dbus-proxy's argument handling (dbus-proxy.c, flatpak-proxy.c filter_new_from_rule).
class ProxyRuleParserTest {
    private static final ProxyRuleParser.ArgsSource NO_ARGS = fd -> {
        throw new IOException("Bad file descriptor");
    };
    private static final NamePattern N = NamePattern.exact("org.foo");

    private static EndpointFilter options(String... args) throws ProxyArgumentException {
        return ProxyRuleParser.parseOptions("ep", List.of(args));
    }

    private static String refusal(String... args) {
        return assertThrows(ProxyArgumentException.class, () -> options(args)).getMessage();
    }

    private static CommandLine line(String... args) throws ProxyArgumentException {
        return ProxyRuleParser.parseCommandLine(List.of(args), NO_ARGS);
    }

    private static String lineRefusal(String... args) {
        return assertThrows(ProxyArgumentException.class, () -> line(args)).getMessage();
    }

    @Test
    void seeTalkOwnWithAndWithoutWildcard() throws Exception {
        EndpointFilter f = options("--see=org.a.See", "--talk=org.a.Talk", "--own=org.app.*");
        assertEquals(List.of(NameRule.see(NamePattern.exact("org.a.See")), NameRule.talk(NamePattern.exact("org.a.Talk")),
                NameRule.own(NamePattern.subtreeOf("org.app"))), f.nameRules());
        EndpointPolicy p = new EndpointPolicy(f);
        assertEquals(Level.OWN, p.levelOfWellKnown("org.app.Sub"));
        assertEquals(Level.OWN, p.levelOfWellKnown("org.app"));
        assertEquals(Level.NONE, p.levelOfWellKnown("org.apps"));
    }

    @Test
    void invalidNamesAreRefusedAfterTheWildcardIsStripped() {
        assertEquals("'org' is not a valid dbus name", refusal("--talk=org.*")); // one element
        assertEquals("'*' is not a valid dbus name", refusal("--see=*"));
        assertEquals("'' is not a valid dbus name", refusal("--own=.*"));
        assertEquals("':1.5' is not a valid dbus name", refusal("--talk=:1.5"));
        assertEquals("'org.1foo' is not a valid dbus name", refusal("--see=org.1foo"));
        assertEquals("'org..foo' is not a valid dbus name", refusal("--see=org..foo.*"));
        assertEquals("'' is not a valid dbus name", refusal("--see="));
    }

    @Test
    void optionsWithoutEqualsAreUnknown() {
        assertEquals("Unknown argument --see", refusal("--see"));
        assertEquals("Unknown argument --talk", refusal("--talk"));
        assertEquals("Unknown argument --filter=yes", refusal("--filter=yes"));
        assertEquals("Unknown argument --fd=3", refusal("--fd=3")); // general options belong to the command line
    }

    @Test
    void flags() throws Exception {
        EndpointFilter none = options();
        assertFalse(none.filtering());
        assertFalse(none.sloppyNames());
        assertFalse(none.logMessages());
        EndpointFilter all = options("--filter", "--log", "--sloppy-names");
        assertTrue(all.filtering());
        assertTrue(all.sloppyNames());
        assertTrue(all.logMessages());
    }

    @Test
    void callAndBroadcastNeedANameAndARule() throws Exception {
        assertEquals("'org.foo' is not a valid name + rule", refusal("--call=org.foo"));
        assertEquals("'' is not a valid name + rule", refusal("--broadcast="));
        EndpointFilter f = options("--call=org.portal.*=*", "--broadcast=org.portal.*=@/org/portal/*");
        assertEquals(List.of(CallRule.any(NamePattern.subtreeOf("org.portal"))), f.callRules());
        assertEquals(List.of(new CallRule(NamePattern.subtreeOf("org.portal"), null, null, "/org/portal", true)),
                f.broadcastRules());
    }

    @Test
    void callNamesAreNotValidated() throws Exception {
        // The proxy takes --call/--broadcast names as they come; such rules can only never match.
        EndpointFilter f = options("--call=:1.5=*", "--call=not a name=x.y", "--call==*");
        assertEquals(":1.5", f.callRules().get(0).pattern().name());
        assertEquals("not a name", f.callRules().get(1).pattern().name());
        assertEquals("", f.callRules().get(2).pattern().name());
    }

    @Test
    void theRuleIsSplitAtTheFirstEqualsAfterTheName() throws Exception {
        CallRule r = options("--call=org.foo=org.foo.I.M@/a=b").callRules().get(0);
        assertEquals(new CallRule(N, "org.foo.I", "M", "/a=b", false), r);
    }

    @Test
    void ruleForms() {
        assertEquals(CallRule.any(N), ProxyRuleParser.parseRule(N, ""));
        assertEquals(CallRule.any(N), ProxyRuleParser.parseRule(N, "*"));
        assertEquals(CallRule.any(N), ProxyRuleParser.parseRule(N, "*anything"));
        assertEquals(CallRule.any(N), ProxyRuleParser.parseRule(N, "@")); // '@' with nothing after: no path
        assertEquals(new CallRule(N, "org.foo.Iface", null, null, false), ProxyRuleParser.parseRule(N, "org.foo.Iface.*"));
        assertEquals(new CallRule(N, "org.foo.Iface", "Method", null, false),
                ProxyRuleParser.parseRule(N, "org.foo.Iface.Method"));
        // Without a dot it is all interface (so "Method" alone means interface "Method").
        assertEquals(new CallRule(N, "Method", null, null, false), ProxyRuleParser.parseRule(N, "Method"));
        assertEquals(new CallRule(N, null, null, "/org/foo", false), ProxyRuleParser.parseRule(N, "@/org/foo"));
        assertEquals(new CallRule(N, null, null, "/org/foo", true), ProxyRuleParser.parseRule(N, "@/org/foo/*"));
        assertEquals(new CallRule(N, null, null, "", true), ProxyRuleParser.parseRule(N, "@/*"));
        assertEquals(new CallRule(N, "org.foo.I", "M", "/o", true), ProxyRuleParser.parseRule(N, "org.foo.I.M@/o/*"));
        assertEquals(new CallRule(N, null, null, "/o", false), ProxyRuleParser.parseRule(N, "*@/o"));
        // The split uses the last dot before '@' only.
        assertEquals(new CallRule(N, "a", "b", "/x.y", false), ProxyRuleParser.parseRule(N, "a.b@/x.y"));
    }

    @Test
    void parsedRulesDecideCalls() throws Exception {
        EndpointPolicy p = new EndpointPolicy(options("--filter", "--call=org.foo=org.foo.I.Get@/obj/*"));
        var state = new org.kdbusbridge.core.endpoint.EndpointState(4, 4);
        var owners = org.kdbusbridge.core.endpoint.OwnedNames.NONE;
        assertTrue(p.checkSend(true, "org.foo", "/obj/x", "org.foo.I", "Get", true, false, null, owners, state)
                .allowed());
        assertFalse(p.checkSend(true, "org.foo", "/obj/x", "org.foo.I", "Set", true, false, null, owners, state)
                .allowed());
    }

    @Test
    void commandLineWithTwoProxies() throws Exception {
        CommandLine c = line("--fd=26", "unix:path=/run/bus", "/tmp/p1", "--filter", "--own=org.app.*",
                "--talk=ca.desrt.dconf", "unix:path=/run/a11y", "/tmp/p2", "--sloppy-names");
        assertEquals(Action.RUN, c.action());
        assertEquals(26, c.syncFd());
        assertEquals(2, c.proxies().size());
        assertEquals("unix:path=/run/bus", c.proxies().get(0).address());
        assertEquals("/tmp/p1", c.proxies().get(0).socketPath());
        assertEquals("/tmp/p1", c.proxies().get(0).filter().endpointId());
        assertTrue(c.proxies().get(0).filter().filtering());
        assertEquals(2, c.proxies().get(0).filter().nameRules().size());
        assertFalse(c.proxies().get(1).filter().filtering());
        assertTrue(c.proxies().get(1).filter().sloppyNames());
    }

    @Test
    void generalOptionsMayAppearAmongProxyOptionsAndTheLastFdWins() throws Exception {
        CommandLine c = line("--fd=3", "addr", "path", "--filter", "--fd=5", "--see=org.a.b");
        assertEquals(5, c.syncFd());
        assertEquals(1, c.proxies().get(0).filter().nameRules().size());
    }

    @Test
    void commandLineRefusals() {
        assertTrue(assertThrows(ProxyArgumentException.class, () -> line()).showUsage());
        assertEquals("No proxies specified", lineRefusal("--fd=3"));
        assertEquals("No socket path given", lineRefusal("addr"));
        assertEquals("No socket path given", lineRefusal("addr", "--filter"));
        assertEquals("Unknown argument --bogus", lineRefusal("addr", "path", "--bogus"));
        assertEquals("Unknown argument -x", lineRefusal("-x"));
        assertEquals("Invalid fd x", lineRefusal("--fd=x", "a", "p"));
        assertEquals("Invalid fd -1", lineRefusal("--fd=-1", "a", "p"));
        assertEquals("Invalid fd ", lineRefusal("--fd=", "a", "p"));
        assertEquals("Invalid --args fd 3x", lineRefusal("--args=3x"));
        assertEquals("Failed to load --args: Bad file descriptor", lineRefusal("--args=9"));
        assertEquals("'org' is not a valid dbus name", lineRefusal("a", "p", "--filter", "--see=org.*"));
    }

    @Test
    void anEmptyArgumentStartsAProxy() throws Exception {
        CommandLine c = line("", "");
        assertEquals("", c.proxies().get(0).address());
        assertEquals("", c.proxies().get(0).socketPath());
    }

    @Test
    void helpAndVersionStopParsing() throws Exception {
        assertEquals(Action.HELP, line("--help", "--bogus").action());
        assertEquals(Action.VERSION, line("a", "p", "--version", "--bogus").action());
        assertTrue(line("--version").proxies().isEmpty());
    }

    @Test
    void argsFromAnFdAreSplicedInWhereTheOptionStood() throws Exception {
        byte[] blob = "unix:path=/run/bus\0/tmp/p\0--filter\0--talk=org.a.b\0".getBytes(StandardCharsets.UTF_8);
        CommandLine c = ProxyRuleParser.parseCommandLine(List.of("--args=7", "--fd=4"), fd -> {
            assertEquals(7, fd);
            return blob;
        });
        assertEquals(4, c.syncFd());
        assertEquals(1, c.proxies().size());
        assertEquals("/tmp/p", c.proxies().get(0).socketPath());
        assertTrue(c.proxies().get(0).filter().filtering());
    }

    @Test
    void argsBlobSplitting() {
        assertEquals(List.of("a", "", "b"), ProxyRuleParser.splitArgs("a\0\0b\0".getBytes(StandardCharsets.UTF_8)));
        assertEquals(List.of("a", "tail"), ProxyRuleParser.splitArgs("a\0tail".getBytes(StandardCharsets.UTF_8)));
        assertEquals(List.of(), ProxyRuleParser.splitArgs(new byte[0]));
    }

    @Test
    void fdNumbersReadAsStrtolDoes() {
        assertEquals(5, ProxyRuleParser.parseFd("5"));
        assertEquals(5, ProxyRuleParser.parseFd(" +5"));
        assertEquals(0, ProxyRuleParser.parseFd("-0"));
        assertEquals(-1, ProxyRuleParser.parseFd("-3"));
        assertEquals(-1, ProxyRuleParser.parseFd("5 "));
        assertEquals(-1, ProxyRuleParser.parseFd("+"));
        assertEquals(-1, ProxyRuleParser.parseFd("99999999999"));
    }

    @Test
    void endpointFilterKeepsMetadataAndIsImmutable() {
        EndpointFilter f = EndpointFilter.builder("ep1").appId("org.app").instanceId("42").talk("org.a.b").build();
        assertEquals("org.app", f.appId());
        assertEquals("42", f.instanceId());
        assertNull(EndpointFilter.builder("x").build().appId());
        assertThrows(UnsupportedOperationException.class, () -> f.nameRules().clear());
    }
}
