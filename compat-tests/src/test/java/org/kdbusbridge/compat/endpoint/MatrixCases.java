package org.kdbusbridge.compat.endpoint;

import java.io.IOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.kdbusbridge.compat.harness.Message;
import org.kdbusbridge.compat.harness.RawClient;

/**
 * The differential filter matrix of issue 18 (117 cases). Each case's expected outcome is what the
 * installed xdg-dbus-proxy (Debian 0.1.4-3+deb12u2) in front of dbus-daemon gives, checked against
 * flatpak-proxy.c to be its rule and not an accident of timing; our endpoint must give the same.
 *
 * <h2>World</h2>
 * Outside services (MatrixWorld): T owns org.example.Talk, S org.example.See, H org.example.Hidden,
 * W org.example.Wild.Sub, X org.example.WildCard, C org.example.Call, B org.example.Bcast, D both
 * org.example.DualSee and org.example.DualTalk; P is a plain peer, Z a peer that never answers. A
 * service answers any call with "label:interface.member@path". Talk, Hidden, Lazy and SeeLazy have
 * .service files whose Exec fails at once. Each case gets a fresh sandboxed client; Y and I2 are
 * peers a case makes for itself.
 *
 * <h2>Cases, by rule set</h2>
 * <ul>
 * <li><b>basic</b> (see, talk, own, talk wildcard, a peer with a SEE and a TALK name):
 *   <ul>
 *   <li>ListNames and name queries: list-names, has-owner-see, has-owner-hidden, has-owner-wild-sibling,
 *       get-owner-talk, get-owner-see, get-owner-hidden, get-owner-own-unowned, has-owner-talk-unique,
 *       has-owner-hidden-unique, list-activatable</li>
 *   <li>talk/see on calls, wildcards, guessed unique names: call-talk, call-see, call-hidden,
 *       call-hidden-no-auto-start, call-wild-sub, call-wild-sibling, call-talk-by-unique, call-see-by-unique,
 *       call-hidden-by-guessed-unique, call-dual-see-name, call-dual-by-unique, signal-to-talk, signal-to-see</li>
 *   <li>own: request-own, request-talk, request-hidden, request-hidden-no-auto-start, release-talk,
 *       queued-owners-own, queued-owners-talk, queued-owners-hidden</li>
 *   <li>driver-method filtering: add-match, add-match-eavesdrop, add-match-eavesdrop-false,
 *       add-match-eavesdrop-space, add-match-eavesdrop-in-value, become-monitor, update-activation-env,
 *       reload-config, peer-ping-driver, ping-no-destination, become-monitor-no-destination,
 *       properties-driver, introspect-driver, get-id, unix-user-see, unix-user-hidden,
 *       unix-user-hidden-unique, start-talk, start-talk-unowned, start-see, start-hidden,
 *       call-see-activatable, call-talk-activatable</li>
 *   <li>broadcasts: broadcast-from-talk, broadcast-from-see, broadcast-from-hidden, broadcast-from-dual,
 *       broadcast-from-wild</li>
 *   <li>NameOwnerChanged: noc-see-name, noc-hidden-name, noc-without-add-match</li>
 *   <li>unique-name visibility of callers: caller-invisible-before, caller-visible-after, caller-not-callable,
 *       hidden-caller-visible-by-unique-only, unicast-signal-from-hidden</li>
 *   <li>reply permission: reply-error, reply-twice, reply-never-received, reply-to-wrong-peer,
 *       call-quoting-reply-serial, call-quoting-reply-serial-to-see, signal-quoting-reply-serial-to-see</li>
 *   </ul></li>
 * <li><b>wild</b> (own org.example.App.*, see org.example.Wild.*): own-prefix-itself, own-deep, own-sibling,
 *     own-then-listed, see-wild-sub, see-wild-sibling, call-wild-see, broadcast-wild-see, late-wild-name,
 *     own-wild-other-insider-calls</li>
 * <li><b>rules</b> (--call and --broadcast rules): list-names, call-allowed, call-wrong-path, call-wrong-member,
 *     call-no-interface, call-member-wildcard, call-path-subtree, call-path-subtree-root, call-path-sibling,
 *     call-allowed-by-unique, call-denied-by-unique, get-owner-call, broadcast-from-call-rule-peer,
 *     broadcast-allowed, broadcast-wrong-member, broadcast-wrong-path, call-broadcast-name, request-call-name</li>
 * <li><b>sloppy</b> (--sloppy-names): noc-unique, has-owner-unique, list-names</li>
 * <li><b>empty</b> (--filter alone): list-names, call-talk, get-owner-driver, request-name, caller-listed-after,
 *     caller-gone-noc, caller-broadcasts-filtered, other-insider-hidden, call-self</li>
 * <li><b>unfiltered</b> (rules without --filter): list-names, call-hidden</li>
 * </ul>
 *
 * <h2>Behaviour of the real proxy worth knowing</h2>
 * <ul>
 * <li>A hidden name answers ServiceUnknown, or NameHasNoOwner when the call has NO_AUTO_START or goes
 *     to a unique name; driver calls about hidden names (RequestName, ListQueuedOwners,
 *     GetConnectionUnixUser, StartServiceByName) answer ServiceUnknown too, not AccessDenied.</li>
 * <li>Only the org.freedesktop.DBus interface and Introspectable reach the driver: Peer.Ping and
 *     Properties on org.freedesktop.DBus are AccessDenied; a call without destination passes.</li>
 * <li>Any "eavesdrop" followed by "=" in an AddMatch rule is refused, even eavesdrop='false' or
 *     inside an arg value.</li>
 * <li>NameOwnerChanged for policy names reaches the client without any AddMatch of its own (the
 *     proxy's own matches share the client's bus connection); an owner's unique name stays visible
 *     after it released the name (sticky).</li>
 * <li>A --call rule does not let broadcasts through in 0.1.4 (0.1.6 and later do, for any TALK name).</li>
 * <li>The proxy learns owners from GetNameOwner calls sent behind the Hello: a message by unique
 *     name sent right after Hello can beat them (Insider settles with one round trip first).</li>
 * </ul>
 */
final class MatrixCases {
    private MatrixCases() {}

    static final String IFACE = "org.example.Iface";
    static final String BUS = RawClient.BUS;

    /** Rule sets: one front each, with xdg-dbus-proxy's own options (after ADDRESS PATH). */
    static final Map<String, List<String>> RULE_SETS = new LinkedHashMap<>();
    static {
        RULE_SETS.put("basic", List.of("--filter",
                "--see=org.example.See", "--talk=org.example.Talk", "--own=org.example.Own",
                "--talk=org.example.Wild.*", "--see=org.example.DualSee", "--talk=org.example.DualTalk",
                "--see=org.example.Blink", "--talk=org.example.Lazy", "--see=org.example.SeeLazy"));
        RULE_SETS.put("wild", List.of("--filter", "--own=org.example.App.*", "--see=org.example.Wild.*"));
        RULE_SETS.put("rules", List.of("--filter",
                "--call=org.example.Call=org.example.Iface.Allowed@/allowed",
                "--call=org.example.Call=org.example.Iface2.*",
                "--call=org.example.Call=*@/open/*",
                "--broadcast=org.example.Bcast=org.example.Sig.Allowed@/bcast"));
        RULE_SETS.put("sloppy", List.of("--filter", "--sloppy-names", "--see=org.example.See"));
        RULE_SETS.put("empty", List.of("--filter"));
        RULE_SETS.put("unfiltered", List.of("--see=org.example.See"));
    }

    static List<MatrixCase> all() {
        List<MatrixCase> l = new ArrayList<>();
        basic(l);
        wild(l);
        rules(l);
        sloppy(l);
        empty(l);
        unfiltered(l);
        return l;
    }

    private static MatrixCase c(String set, String id, String expected, String why, MatrixCase.Action a) {
        return new MatrixCase(id, set, expected, why, a);
    }

    // ------------------------------------------------------------------------ basic

    private static void basic(List<MatrixCase> l) {
        String s = "basic";
        // ListNames and name queries
        l.add(c(s, "list-names",
                "ok::D,:S,:T,:W,:self,org.example.DualSee,org.example.DualTalk,org.example.See,org.example.Talk,org.example.Wild.Sub,org.freedesktop.DBus",
                "filter_names_list keeps names with SEE or more; an owner's unique name counts as the names it owns",
                CaseContext::listNames));
        l.add(c(s, "has-owner-see", "ok:true", "NameHasOwner passes when arg0 has SEE",
                x -> x.bus("NameHasOwner", "s", "org.example.See")));
        l.add(c(s, "has-owner-hidden", "ok:false", "a synthetic false for a name without SEE",
                x -> x.bus("NameHasOwner", "s", "org.example.Hidden")));
        l.add(c(s, "has-owner-wild-sibling", "ok:false", "org.example.Wild.* does not match org.example.WildCard",
                x -> x.bus("NameHasOwner", "s", "org.example.WildCard")));
        l.add(c(s, "get-owner-talk", "ok::T", "GetNameOwner passes with SEE or more",
                x -> x.bus("GetNameOwner", "s", "org.example.Talk")));
        l.add(c(s, "get-owner-see", "ok::S", "GetNameOwner passes with SEE",
                x -> x.bus("GetNameOwner", "s", "org.example.See")));
        l.add(c(s, "get-owner-hidden", "error:NameHasNoOwner", "a synthetic NameHasNoOwner for a name without SEE",
                x -> x.bus("GetNameOwner", "s", "org.example.Hidden")));
        l.add(c(s, "get-owner-own-unowned", "error:NameHasNoOwner", "OWN passes GetNameOwner to the bus, which has no owner",
                x -> x.bus("GetNameOwner", "s", "org.example.Own")));
        l.add(c(s, "has-owner-talk-unique", "ok:true", "T's unique name has TALK through the name it owns",
                x -> x.bus("NameHasOwner", "s", x.unique("T"))));
        l.add(c(s, "has-owner-hidden-unique", "ok:false", "a guessed unique name of a hidden peer stays invisible",
                x -> x.bus("NameHasOwner", "s", x.unique("H"))));
        l.add(c(s, "list-activatable", "ok:org.example.Lazy,org.example.SeeLazy,org.example.Talk,org.freedesktop.DBus",
                "ListActivatableNames is filtered like ListNames: org.example.Hidden's .service file stays hidden",
                x -> {
                    Message r = x.app().call(x.driver("ListActivatableNames"));
                    return r.type == Message.METHOD_RETURN ? "ok:" + x.names(r.arg(0)) : x.outcome(r);
                }));
        // calls
        l.add(c(s, "call-talk", "ok:T:org.example.Iface.Method@/x", "TALK allows any call",
                x -> x.call("org.example.Talk", "/x", IFACE, "Method")));
        l.add(c(s, "call-see", "error:AccessDenied", "SEE without TALK: AccessDenied",
                x -> x.call("org.example.See", "/x", IFACE, "Method")));
        l.add(c(s, "call-hidden", "error:ServiceUnknown", "no SEE: hidden; ServiceUnknown when auto-start is allowed",
                x -> x.call("org.example.Hidden", "/x", IFACE, "Method")));
        l.add(c(s, "call-hidden-no-auto-start", "error:NameHasNoOwner", "no SEE and NO_AUTO_START: NameHasNoOwner",
                x -> x.callFlags(Message.FLAG_NO_AUTO_START, "org.example.Hidden", "/x", IFACE, "Method")));
        l.add(c(s, "call-wild-sub", "ok:W:org.example.Iface.Method@/x", "--talk=org.example.Wild.* covers org.example.Wild.Sub",
                x -> x.call("org.example.Wild.Sub", "/x", IFACE, "Method")));
        l.add(c(s, "call-wild-sibling", "error:ServiceUnknown", "org.example.WildCard is not under org.example.Wild",
                x -> x.call("org.example.WildCard", "/x", IFACE, "Method")));
        l.add(c(s, "call-talk-by-unique", "ok:T:org.example.Iface.Method@/x", "the owner of a TALK name has TALK by unique name",
                x -> x.call(x.unique("T"), "/x", IFACE, "Method")));
        l.add(c(s, "call-see-by-unique", "error:AccessDenied", "the owner of a SEE name has SEE by unique name",
                x -> x.call(x.unique("S"), "/x", IFACE, "Method")));
        l.add(c(s, "call-hidden-by-guessed-unique", "error:NameHasNoOwner", "a hidden unique name: NameHasNoOwner",
                x -> x.call(x.unique("H"), "/x", IFACE, "Method")));
        l.add(c(s, "call-dual-see-name", "error:AccessDenied", "a call by well-known name uses that name's policy only",
                x -> x.call("org.example.DualSee", "/x", IFACE, "Method")));
        l.add(c(s, "call-dual-by-unique", "ok:D:org.example.Iface.Method@/x", "a unique name merges all its names: TALK via DualTalk",
                x -> x.call(x.unique("D"), "/x", IFACE, "Method")));
        // unicast signals from inside
        l.add(c(s, "signal-to-talk", "T:got", "a signal to a TALK name passes",
                x -> unicastSignal(x, "org.example.Talk", "T")));
        l.add(c(s, "signal-to-see", "S:none", "a signal to a SEE name is dropped",
                x -> unicastSignal(x, "org.example.See", "S")));
        // owning
        l.add(c(s, "request-own", "ok:1", "RequestName needs OWN on arg0",
                x -> x.bus("RequestName", "su", "org.example.Own", 4L)));
        l.add(c(s, "request-talk", "error:AccessDenied", "TALK is not OWN; the name is visible, so AccessDenied",
                x -> x.bus("RequestName", "su", "org.example.Talk", 4L)));
        l.add(c(s, "request-hidden", "error:ServiceUnknown", "no SEE: hidden, and a driver call answers ServiceUnknown",
                x -> x.bus("RequestName", "su", "org.example.Hidden", 4L)));
        l.add(c(s, "request-hidden-no-auto-start", "error:NameHasNoOwner", "the hidden answer follows the NO_AUTO_START flag",
                x -> x.outcome(x.app().call(x.driver("RequestName").body("su", "org.example.Hidden", 4L).flags(Message.FLAG_NO_AUTO_START)))));
        l.add(c(s, "release-talk", "error:AccessDenied", "ReleaseName needs OWN",
                x -> x.bus("ReleaseName", "s", "org.example.Talk")));
        l.add(c(s, "queued-owners-own", "ok:[:self]", "ListQueuedOwners needs OWN",
                x -> {
                    CaseContext.mustPass(x.app().callBus("RequestName", "su", "org.example.Own", 4L));
                    return x.bus("ListQueuedOwners", "s", "org.example.Own");
                }));
        l.add(c(s, "queued-owners-talk", "error:AccessDenied", "ListQueuedOwners needs OWN",
                x -> x.bus("ListQueuedOwners", "s", "org.example.Talk")));
        l.add(c(s, "queued-owners-hidden", "error:ServiceUnknown", "ListQueuedOwners on a hidden name: hidden",
                x -> x.bus("ListQueuedOwners", "s", "org.example.Hidden")));
        // driver methods
        l.add(c(s, "add-match", "ok:", "AddMatch without eavesdrop passes",
                x -> x.bus("AddMatch", "s", "type='signal',sender='org.example.Talk'")));
        l.add(c(s, "add-match-eavesdrop", "error:AccessDenied", "eavesdrop= in a match rule is refused",
                x -> x.bus("AddMatch", "s", "type='method_call',eavesdrop='true'")));
        l.add(c(s, "add-match-eavesdrop-false", "error:AccessDenied", "any eavesdrop= is refused, even false",
                x -> x.bus("AddMatch", "s", "type='signal',eavesdrop='false'")));
        l.add(c(s, "add-match-eavesdrop-space", "error:AccessDenied", "eavesdrop<space>= is refused too (CVE-2026-34080 fix)",
                x -> x.bus("AddMatch", "s", "type='method_call',eavesdrop ='true'")));
        l.add(c(s, "add-match-eavesdrop-in-value", "error:AccessDenied",
                "the proxy looks for the text eavesdrop= anywhere in the rule, even inside a value",
                x -> x.bus("AddMatch", "s", "type='signal',arg0='eavesdrop=1'")));
        l.add(c(s, "become-monitor", "error:AccessDenied", "BecomeMonitor is always denied",
                x -> x.bus("BecomeMonitor", "asu", List.of(), 0L)));
        l.add(c(s, "update-activation-env", "error:AccessDenied", "UpdateActivationEnvironment is always denied",
                x -> x.bus("UpdateActivationEnvironment", "a{ss}", Map.of("A", "b"))));
        l.add(c(s, "reload-config", "error:AccessDenied", "a driver method the proxy does not know is denied",
                x -> x.bus("ReloadConfig", null)));
        l.add(c(s, "peer-ping-driver", "error:AccessDenied", "only the org.freedesktop.DBus interface and Introspectable reach the driver",
                x -> x.outcome(x.app().call(Message.call(BUS, RawClient.BUS_PATH, "org.freedesktop.DBus.Peer", "Ping")))));
        l.add(c(s, "ping-no-destination", "ok:",
                "a call without destination has the bus's TALK and passes; the bus answers Peer.Ping itself",
                x -> callOrNone(x, Message.call(null, "/", "org.freedesktop.DBus.Peer", "Ping"))));
        l.add(c(s, "become-monitor-no-destination", "error:UnknownMethod",
                "BecomeMonitor without destination passes the proxy, but the bus runs no driver method without destination",
                x -> callOrNone(x, Message.call(null, RawClient.BUS_PATH, BUS, "BecomeMonitor").body("asu", List.of(), 0L))));
        l.add(c(s, "properties-driver", "error:AccessDenied", "org.freedesktop.DBus.Properties on the driver is denied",
                x -> x.outcome(x.app().call(Message.call(BUS, RawClient.BUS_PATH, "org.freedesktop.DBus.Properties", "Get")
                        .body("ss", BUS, "Features")))));
        l.add(c(s, "introspect-driver", "ok:introspection", "Introspect on the driver passes",
                x -> {
                    Message r = x.app().call(Message.call(BUS, RawClient.BUS_PATH, "org.freedesktop.DBus.Introspectable", "Introspect"));
                    return r.type == Message.METHOD_RETURN ? "ok:introspection" : x.outcome(r);
                }));
        l.add(c(s, "get-id", "ok:guid", "GetId passes",
                x -> {
                    String o = x.bus("GetId", null);
                    return o.matches("ok:[0-9a-f]{32}") ? "ok:guid" : o;
                }));
        l.add(c(s, "unix-user-see", "ok:uid", "GetConnectionUnixUser needs SEE on arg0",
                x -> x.bus("GetConnectionUnixUser", "s", "org.example.See").replace("ok:" + RawClient.uid(), "ok:uid")));
        l.add(c(s, "unix-user-hidden", "error:ServiceUnknown", "GetConnectionUnixUser on a hidden name: hidden",
                x -> x.bus("GetConnectionUnixUser", "s", "org.example.Hidden")));
        l.add(c(s, "unix-user-hidden-unique", "error:ServiceUnknown", "a hidden unique name as arg0: hidden, ServiceUnknown",
                x -> x.bus("GetConnectionUnixUser", "s", x.unique("H"))));
        l.add(c(s, "start-talk", "ok:2", "StartServiceByName needs TALK; the bus says already running",
                x -> x.bus("StartServiceByName", "su", "org.example.Talk", 0L)));
        l.add(c(s, "start-talk-unowned", "error:Spawn.ChildExited", "TALK passes it to the bus, which runs the (failing) Exec",
                x -> x.bus("StartServiceByName", "su", "org.example.Lazy", 0L)));
        l.add(c(s, "start-see", "error:AccessDenied", "StartServiceByName with SEE only",
                x -> x.bus("StartServiceByName", "su", "org.example.SeeLazy", 0L)));
        l.add(c(s, "start-hidden", "error:ServiceUnknown", "StartServiceByName on a hidden (activatable) name: hidden",
                x -> x.bus("StartServiceByName", "su", "org.example.Hidden", 0L)));
        l.add(c(s, "call-see-activatable", "error:AccessDenied", "auto-start through a SEE name is a call: AccessDenied",
                x -> x.call("org.example.SeeLazy", "/x", IFACE, "Method")));
        l.add(c(s, "call-talk-activatable", "error:Spawn.ChildExited", "a call to an unowned TALK name auto-starts it",
                x -> x.call("org.example.Lazy", "/x", IFACE, "Method")));
        // broadcasts
        l.add(c(s, "broadcast-from-talk", "received", "broadcasts from a TALK peer pass",
                x -> x.broadcastFrom("T", "/sig", "org.example.Sig", "Ping")));
        l.add(c(s, "broadcast-from-see", "not-received", "broadcasts from a SEE peer are dropped",
                x -> x.broadcastFrom("S", "/sig", "org.example.Sig", "Ping")));
        l.add(c(s, "broadcast-from-hidden", "not-received", "broadcasts from a hidden peer are dropped",
                x -> x.broadcastFrom("H", "/sig", "org.example.Sig", "Ping")));
        l.add(c(s, "broadcast-from-dual", "received", "the sender's unique name merges its names: TALK via DualTalk",
                x -> x.broadcastFrom("D", "/sig", "org.example.Sig", "Ping")));
        l.add(c(s, "broadcast-from-wild", "received", "TALK by wildcard",
                x -> x.broadcastFrom("W", "/sig", "org.example.Sig", "Ping")));
        // NameOwnerChanged
        l.add(c(s, "noc-see-name",
                "org.example.Blink||:Y;org.example.Blink|:Y|;:Y|:Y|",
                "NameOwnerChanged for a SEE name passes; its owner's unique name stays visible after release (sticky)",
                x -> {
                    CaseContext.mustPass(x.app().callBus("AddMatch", "s", CaseContext.NOC_MATCH));
                    OutsidePeer y = x.newPeer("Y", "org.example.Blink");
                    y.release("org.example.Blink");
                    x.disconnect(y);
                    return x.nocSeen();
                }));
        l.add(c(s, "noc-hidden-name", "none", "NameOwnerChanged for a name without SEE (and its owner) is dropped",
                x -> {
                    CaseContext.mustPass(x.app().callBus("AddMatch", "s", CaseContext.NOC_MATCH));
                    OutsidePeer y = x.newPeer("Y", "org.example.HiddenBlink");
                    y.release("org.example.HiddenBlink");
                    x.disconnect(y);
                    return x.nocSeen();
                }));
        l.add(c(s, "noc-without-add-match",
                "org.example.Blink||:Y;org.example.Blink|:Y|",
                "the proxy's own arg0 match for each policy name shares the client's bus connection:"
                        + " the client gets those signals without asking",
                x -> {
                    x.app();
                    OutsidePeer y = x.newPeer("Y", "org.example.Blink");
                    y.release("org.example.Blink");
                    x.disconnect(y);
                    return x.nocSeen();
                }));
        // unique names of callers, replies
        l.add(c(s, "caller-invisible-before", "ok:false", "an outside peer that never called is not visible",
                x -> x.bus("NameHasOwner", "s", x.unique("P"))));
        l.add(c(s, "caller-visible-after", "P:ok:answer;has:ok:true;owner:ok::P",
                "a peer whose message reached the client gets SEE",
                x -> {
                    String r = callFromOutside(x, "answer");
                    return "P:" + r + ";has:" + x.bus("NameHasOwner", "s", x.unique("P"))
                            + ";owner:" + x.bus("GetNameOwner", "s", x.unique("P"));
                }));
        l.add(c(s, "caller-not-callable", "error:AccessDenied", "a caller gets SEE, not TALK",
                x -> {
                    callFromOutside(x, "answer");
                    return x.call(x.unique("P"), "/x", IFACE, "Method");
                }));
        l.add(c(s, "hidden-caller-visible-by-unique-only", "H:ok:answer;unique:ok:true;name:ok:false",
                "a hidden service that calls the client becomes visible by its unique name, its well-known name stays hidden",
                x -> {
                    String r = callFromOutside(x, "H", "answer");
                    return "H:" + r + ";unique:" + x.bus("NameHasOwner", "s", x.unique("H"))
                            + ";name:" + x.bus("NameHasOwner", "s", "org.example.Hidden");
                }));
        l.add(c(s, "unicast-signal-from-hidden", "got:1;unique:ok:true",
                "signals addressed to the client pass from anyone, and make the sender visible",
                x -> {
                    OutsidePeer h = x.peer("H");
                    Message sig = new Message();
                    sig.type = Message.SIGNAL;
                    sig.destination = x.app().unique();
                    sig.path = "/sig";
                    sig.iface = "org.example.Sig";
                    sig.member = "ToYou";
                    sig.flags = Message.FLAG_NO_REPLY_EXPECTED;
                    sig.body("s", "hi");
                    h.send(sig);
                    h.barrier();
                    x.app().barrier();
                    int got = x.app().received(m -> "ToYou".equals(m.member)).size();
                    return "got:" + got + ";unique:" + x.bus("NameHasOwner", "s", h.unique());
                }));
        l.add(c(s, "reply-error", "error:org.example.Error.Nope", "an error reply to a received call passes",
                x -> {
                    OutsidePeer p = x.peer("P");
                    long serial = p.send(Message.call(x.app().unique(), "/app", IFACE, "Ask"));
                    Message call = x.app().awaitCall("Ask");
                    Message e = new Message();
                    e.type = Message.ERROR;
                    e.errorName = "org.example.Error.Nope";
                    e.destination = call.sender;
                    e.replySerial = call.serial;
                    e.flags = Message.FLAG_NO_REPLY_EXPECTED;
                    e.body("s", "no");
                    x.app().send(e);
                    return x.outcome(awaitReply(p, serial));
                }));
        l.add(c(s, "reply-twice", "P:1", "only one reply passes per received call",
                x -> {
                    OutsidePeer p = x.peer("P");
                    long serial = p.send(Message.call(x.app().unique(), "/app", IFACE, "Ask"));
                    Message call = x.app().awaitCall("Ask");
                    x.app().send(OutsidePeer.reply(call, "one"));
                    x.app().send(OutsidePeer.reply(call, "two"));
                    return "P:" + repliesAfterBarriers(x, p, serial);
                }));
        l.add(c(s, "reply-never-received", "P:0", "a reply to a call the client never got is dropped",
                x -> {
                    OutsidePeer p = x.peer("P");
                    // P waits on Z, which never answers: the client forges Z's answer.
                    long serial = p.send(Message.call(x.unique("Z"), "/z", IFACE, "Wait"));
                    Message forged = new Message();
                    forged.type = Message.METHOD_RETURN;
                    forged.flags = Message.FLAG_NO_REPLY_EXPECTED;
                    forged.destination = p.unique();
                    forged.replySerial = serial;
                    forged.body("s", "forged");
                    x.app().send(forged);
                    return "P:" + repliesAfterBarriers(x, p, serial);
                }));
        l.add(c(s, "reply-to-wrong-peer", "T:0;P:ok:real",
                "a reply aimed at another peer than the caller is dropped, and the caller's reply still passes (CVE-2026-94422 fix)",
                x -> {
                    OutsidePeer p = x.peer("P");
                    OutsidePeer t = x.peer("T");
                    long serial = p.send(Message.call(x.app().unique(), "/app", IFACE, "Ask"));
                    Message call = x.app().awaitCall("Ask");
                    Message wrong = OutsidePeer.reply(call, "wrong");
                    wrong.destination = t.unique();
                    x.app().send(wrong);
                    x.app().barrier();
                    t.barrier();
                    String me = x.app().unique();
                    int atT = t.received(m -> m.replySerial == call.serial && me.equals(m.sender)).size();
                    x.app().send(OutsidePeer.reply(call, "real"));
                    return "T:" + atT + ";P:" + x.outcome(awaitReply(p, serial));
                }));
        l.add(c(s, "call-quoting-reply-serial", "T:got;P:ok:real",
                "a method call carrying a REPLY_SERIAL is judged as a call (TALK: passes) and spends no pending reply",
                x -> quotingReplySerial(x, Message.METHOD_CALL, "org.example.Talk", "T")));
        l.add(c(s, "call-quoting-reply-serial-to-see", "S:none;P:ok:real",
                "quoting a pending reply serial does not open a SEE name to calls (CVE-2026-94422 fix)",
                x -> quotingReplySerial(x, Message.METHOD_CALL, "org.example.See", "S")));
        l.add(c(s, "signal-quoting-reply-serial-to-see", "S:none;P:ok:real",
                "nor to signals",
                x -> quotingReplySerial(x, Message.SIGNAL, "org.example.See", "S")));
    }

    // ------------------------------------------------------------------------ wild

    private static void wild(List<MatrixCase> l) {
        String s = "wild";
        l.add(c(s, "own-prefix-itself", "ok:1", "org.example.App.* matches org.example.App itself",
                x -> x.bus("RequestName", "su", "org.example.App", 4L)));
        l.add(c(s, "own-deep", "ok:1", "org.example.App.* matches any depth",
                x -> x.bus("RequestName", "su", "org.example.App.Sub.Deep", 4L)));
        l.add(c(s, "own-sibling", "error:ServiceUnknown", "org.example.AppX is not under org.example.App",
                x -> x.bus("RequestName", "su", "org.example.AppX", 4L)));
        l.add(c(s, "own-then-listed", "ok::W,:self,org.example.App.One,org.example.Wild.Sub,org.freedesktop.DBus",
                "an owned name is listed",
                x -> {
                    CaseContext.mustPass(x.app().callBus("RequestName", "su", "org.example.App.One", 4L));
                    return x.listNames();
                }));
        l.add(c(s, "see-wild-sub", "ok:true", "--see=org.example.Wild.* shows org.example.Wild.Sub",
                x -> x.bus("NameHasOwner", "s", "org.example.Wild.Sub")));
        l.add(c(s, "see-wild-sibling", "ok:false", "but not org.example.WildCard",
                x -> x.bus("NameHasOwner", "s", "org.example.WildCard")));
        l.add(c(s, "call-wild-see", "error:AccessDenied", "SEE by wildcard does not allow calls",
                x -> x.call("org.example.Wild.Sub", "/x", IFACE, "Method")));
        l.add(c(s, "broadcast-wild-see", "not-received", "nor broadcasts",
                x -> x.broadcastFrom("W", "/sig", "org.example.Sig", "Ping")));
        l.add(c(s, "late-wild-name", "owner:ok::Y;noc:org.example.Wild.Late||:Y",
                "a name under a wildcard that appears after Hello is tracked through the arg0namespace match",
                x -> {
                    CaseContext.mustPass(x.app().callBus("AddMatch", "s", CaseContext.NOC_MATCH));
                    x.newPeer("Y", "org.example.Wild.Late");
                    String noc = x.nocSeen();
                    return "owner:" + x.bus("GetNameOwner", "s", "org.example.Wild.Late") + ";noc:" + noc;
                }));
        l.add(c(s, "own-wild-other-insider-calls", "ok:answer", "a name the client owns has OWN, so another client of the same front may call it",
                x -> {
                    CaseContext.mustPass(x.app().callBus("RequestName", "su", "org.example.App.Svc", 4L));
                    Insider other = x.otherInsider("I2");
                    long serial = other.send(Message.call("org.example.App.Svc", "/svc", IFACE, "Ask"));
                    Message call = x.app().awaitCall("Ask");
                    x.app().send(OutsidePeer.reply(call, "answer"));
                    x.app().barrier();
                    return x.outcome(awaitInsiderReply(other, serial));
                }));
    }

    // ------------------------------------------------------------------------ call and broadcast rules

    private static void rules(List<MatrixCase> l) {
        String s = "rules";
        l.add(c(s, "list-names", "ok::B,:C,:self,org.example.Bcast,org.example.Call,org.freedesktop.DBus",
                "a --call or --broadcast rule makes the name visible (as TALK)", CaseContext::listNames));
        l.add(c(s, "call-allowed", "ok:C:org.example.Iface.Allowed@/allowed", "interface, member and path all match",
                x -> x.call("org.example.Call", "/allowed", IFACE, "Allowed")));
        l.add(c(s, "call-wrong-path", "error:AccessDenied", "the rule's path does not match",
                x -> x.call("org.example.Call", "/other", IFACE, "Allowed")));
        l.add(c(s, "call-wrong-member", "error:AccessDenied", "the rule's member does not match",
                x -> x.call("org.example.Call", "/allowed", IFACE, "Other")));
        l.add(c(s, "call-no-interface", "error:AccessDenied", "a rule with an interface needs the interface header",
                x -> x.call("org.example.Call", "/allowed", null, "Allowed")));
        l.add(c(s, "call-member-wildcard", "ok:C:org.example.Iface2.Anything@/anywhere", "IFACE.* matches every member on every path",
                x -> x.call("org.example.Call", "/anywhere", "org.example.Iface2", "Anything")));
        l.add(c(s, "call-path-subtree", "ok:C:org.example.Other.Any@/open/sub", "*@/open/* matches below /open",
                x -> x.call("org.example.Call", "/open/sub", "org.example.Other", "Any")));
        l.add(c(s, "call-path-subtree-root", "ok:C:org.example.Other.Any@/open", "*@/open/* matches /open itself",
                x -> x.call("org.example.Call", "/open", "org.example.Other", "Any")));
        l.add(c(s, "call-path-sibling", "error:AccessDenied", "*@/open/* does not match /openx",
                x -> x.call("org.example.Call", "/openx", "org.example.Other", "Any")));
        l.add(c(s, "call-allowed-by-unique", "ok:C:org.example.Iface.Allowed@/allowed",
                "a unique name carries the call rules of the names it owns",
                x -> x.call(x.unique("C"), "/allowed", IFACE, "Allowed")));
        l.add(c(s, "call-denied-by-unique", "error:AccessDenied", "and only those",
                x -> x.call(x.unique("C"), "/other", IFACE, "Allowed")));
        l.add(c(s, "get-owner-call", "ok::C", "a call rule gives the name TALK visibility",
                x -> x.bus("GetNameOwner", "s", "org.example.Call")));
        l.add(c(s, "broadcast-from-call-rule-peer", "not-received",
                "a --call rule is no --broadcast rule (0.1.4; 0.1.6 and later let TALK-level names broadcast)",
                x -> x.broadcastFrom("C", "/allowed", IFACE, "Allowed")));
        l.add(c(s, "broadcast-allowed", "received", "the --broadcast rule matches interface, member and path",
                x -> x.broadcastFrom("B", "/bcast", "org.example.Sig", "Allowed")));
        l.add(c(s, "broadcast-wrong-member", "not-received", "member differs",
                x -> x.broadcastFrom("B", "/bcast", "org.example.Sig", "Other")));
        l.add(c(s, "broadcast-wrong-path", "not-received", "path differs",
                x -> x.broadcastFrom("B", "/elsewhere", "org.example.Sig", "Allowed")));
        l.add(c(s, "call-broadcast-name", "error:AccessDenied", "a --broadcast rule allows no calls",
                x -> x.call("org.example.Bcast", "/bcast", "org.example.Sig", "Allowed")));
        l.add(c(s, "request-call-name", "error:AccessDenied", "a call rule is not OWN",
                x -> x.bus("RequestName", "su", "org.example.Call", 4L)));
    }

    // ------------------------------------------------------------------------ sloppy names, empty, unfiltered

    private static void sloppy(List<MatrixCase> l) {
        String s = "sloppy";
        l.add(c(s, "noc-unique", ":Y||:Y;:Y|:Y|", "--sloppy-names passes NameOwnerChanged for every unique name",
                x -> {
                    CaseContext.mustPass(x.app().callBus("AddMatch", "s", CaseContext.NOC_MATCH));
                    x.disconnect(x.newPeer("Y"));
                    return x.nocSeen();
                }));
        l.add(c(s, "has-owner-unique", "ok:false", "but a unique name stays invisible to NameHasOwner",
                x -> x.bus("NameHasOwner", "s", x.unique("H"))));
        l.add(c(s, "list-names", "ok::S,:self,org.example.See,org.freedesktop.DBus", "and to ListNames",
                CaseContext::listNames));
    }

    private static void empty(List<MatrixCase> l) {
        String s = "empty";
        l.add(c(s, "list-names", "ok::self,org.freedesktop.DBus", "with no rules only the bus and oneself are visible",
                CaseContext::listNames));
        l.add(c(s, "call-talk", "error:ServiceUnknown", "no rule: hidden",
                x -> x.call("org.example.Talk", "/x", IFACE, "Method")));
        l.add(c(s, "get-owner-driver", "ok:org.freedesktop.DBus", "the bus itself is always TALK",
                x -> x.bus("GetNameOwner", "s", BUS)));
        l.add(c(s, "request-name", "error:ServiceUnknown", "no rule: hidden",
                x -> x.bus("RequestName", "su", "org.example.Own", 4L)));
        l.add(c(s, "caller-listed-after", "P:ok:answer;ok::P,:self,org.freedesktop.DBus",
                "a peer that called the client shows in ListNames",
                x -> {
                    String r = callFromOutside(x, "answer");
                    return "P:" + r + ";" + x.listNames();
                }));
        l.add(c(s, "caller-gone-noc", ":Y|:Y|", "the client sees a caller's unique name leave the bus",
                x -> {
                    CaseContext.mustPass(x.app().callBus("AddMatch", "s", CaseContext.NOC_MATCH));
                    OutsidePeer y = x.newPeer("Y");
                    long serial = y.send(Message.call(x.app().unique(), "/app", IFACE, "Ask"));
                    Message call = x.app().awaitCall("Ask");
                    x.app().send(OutsidePeer.reply(call, "answer"));
                    awaitReply(y, serial);
                    x.disconnect(y);
                    return x.nocSeen();
                }));
        l.add(c(s, "caller-broadcasts-filtered", "P:ok:answer;not-received", "a caller gets SEE, so its broadcasts stay filtered",
                x -> {
                    String r = callFromOutside(x, "answer");
                    return "P:" + r + ";" + x.broadcastFrom("P", "/sig", "org.example.Sig", "Ping");
                }));
        l.add(c(s, "other-insider-hidden", "error:NameHasNoOwner", "another client of the same front is hidden like any peer",
                x -> {
                    Insider other = x.otherInsider("I2");
                    return x.outcome(other.call(Message.call(x.app().unique(), "/app", IFACE, "Ask")));
                }));
        l.add(c(s, "call-self", "ok:self-answer", "a client may always talk to its own unique name",
                x -> {
                    long serial = x.app().send(Message.call(x.app().unique(), "/me", IFACE, "Self"));
                    Message call = x.app().awaitCall("Self");
                    x.app().send(OutsidePeer.reply(call, "self-answer"));
                    return x.outcome(awaitInsiderReply(x.app(), serial));
                }));
    }

    private static void unfiltered(List<MatrixCase> l) {
        String s = "unfiltered";
        l.add(c(s, "list-names",
                "ok::B,:C,:D,:H,:P,:S,:T,:W,:X,:Z,:self,org.example.Bcast,org.example.Call,org.example.DualSee,org.example.DualTalk,"
                        + "org.example.Hidden,org.example.See,org.example.Talk,org.example.Wild.Sub,org.example.WildCard,org.freedesktop.DBus",
                "without --filter the rules are ignored and nothing is filtered", CaseContext::listNames));
        l.add(c(s, "call-hidden", "ok:H:org.example.Iface.Method@/x", "without --filter every call passes",
                x -> x.call("org.example.Hidden", "/x", IFACE, "Method")));
    }

    // ------------------------------------------------------------------------ helpers

    /**
     * P calls the client; the client sends a {@code type} message to {@code dest} quoting that call's
     * serial as REPLY_SERIAL, then answers P for real. Returns whether the peer got the message and P's outcome.
     */
    private static String quotingReplySerial(CaseContext x, int type, String dest, String label) throws Exception {
        OutsidePeer p = x.peer("P");
        OutsidePeer target = x.peer(label);
        long serial = p.send(Message.call(x.app().unique(), "/app", IFACE, "Ask"));
        Message call = x.app().awaitCall("Ask");
        Message sneaky = Message.call(dest, "/x", IFACE, "Sneaky").flags(Message.FLAG_NO_REPLY_EXPECTED);
        sneaky.type = type;
        sneaky.replySerial = call.serial;
        x.app().send(sneaky);
        x.app().barrier();
        target.barrier();
        boolean got = !target.received(m -> "Sneaky".equals(m.member)).isEmpty();
        x.app().send(OutsidePeer.reply(call, "real"));
        return label + ":" + (got ? "got" : "none") + ";P:" + x.outcome(awaitReply(p, serial));
    }

    /** The client's outcome for {@code m}, or "none" if no reply came before a barrier behind it. */
    private static String callOrNone(CaseContext x, Message m) throws Exception {
        long serial = x.app().send(m);
        x.app().barrier();
        List<Message> r = x.app().received(y -> (y.type == Message.METHOD_RETURN || y.type == Message.ERROR) && y.replySerial == serial);
        return r.isEmpty() ? "none" : x.outcome(r.get(0));
    }

    /** P calls the sandboxed client, which answers {@code value}; returns P's outcome. */
    private static String callFromOutside(CaseContext x, String value) throws Exception {
        return callFromOutside(x, "P", value);
    }

    /** The outside peer {@code label} calls the sandboxed client, which answers {@code value}; returns the peer's outcome. */
    private static String callFromOutside(CaseContext x, String label, String value) throws Exception {
        OutsidePeer p = x.peer(label);
        long serial = p.send(Message.call(x.app().unique(), "/app", IFACE, "Ask"));
        Message call = x.app().awaitCall("Ask");
        x.app().send(OutsidePeer.reply(call, value));
        return x.outcome(awaitReply(p, serial));
    }

    private static Message awaitReply(OutsidePeer p, long serial) throws Exception {
        Message r = p.await(m -> (m.type == Message.METHOD_RETURN || m.type == Message.ERROR) && m.replySerial == serial, OutsidePeer.T);
        if (r == null) {
            throw new IOException(p.label + " got no reply to serial " + serial + " within " + OutsidePeer.T);
        }
        return r;
    }

    private static Message awaitInsiderReply(Insider i, long serial) throws Exception {
        i.barrier();
        List<Message> r = i.received(m -> (m.type == Message.METHOD_RETURN || m.type == Message.ERROR) && m.replySerial == serial);
        if (r.isEmpty()) {
            throw new IOException("the sandboxed client got no reply to serial " + serial);
        }
        return r.get(0);
    }

    /** Replies P has to {@code serial} once the client's and then P's barrier returned. */
    private static int repliesAfterBarriers(CaseContext x, OutsidePeer p, long serial) throws Exception {
        x.app().barrier();
        p.barrier();
        return p.received(m -> (m.type == Message.METHOD_RETURN || m.type == Message.ERROR) && m.replySerial == serial).size();
    }

    /** The client sends a signal to {@code dest}; reports whether the peer got it, after barriers. */
    private static String unicastSignal(CaseContext x, String dest, String label) throws Exception {
        Message sig = new Message();
        sig.type = Message.SIGNAL;
        sig.destination = dest;
        sig.path = "/sig";
        sig.iface = "org.example.Sig";
        sig.member = "Direct";
        sig.flags = Message.FLAG_NO_REPLY_EXPECTED;
        sig.body("s", "hi");
        String me = x.app().unique();
        x.app().send(sig);
        x.app().barrier();
        OutsidePeer p = x.peer(label);
        p.barrier();
        boolean got = !p.received(m -> "Direct".equals(m.member) && me.equals(m.sender)).isEmpty();
        return label + ":" + (got ? "got" : "none");
    }
}
