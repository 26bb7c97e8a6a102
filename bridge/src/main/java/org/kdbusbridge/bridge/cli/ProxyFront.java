package org.kdbusbridge.bridge.cli;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Deque;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;

import org.kdbusbridge.bridge.endpoint.ProxyArgumentException;
import org.kdbusbridge.bridge.endpoint.ProxyRuleParser;
import org.kdbusbridge.bridge.transport.LibC;

/**
 * {@code kdbus-bridge proxy} (bin/kdbus-bridge-proxy, also shipped as xdg-dbus-proxy): takes
 * xdg-dbus-proxy's whole command line and, when every ADDRESS is one of our buses, makes each
 * ADDRESS PATH pair an endpoint of that bus (Endpoints1.AddEndpoint with the pair's options)
 * instead of proxying. It keeps the proxy's protocol: one byte 'x' to --fd=FD once every socket
 * is up, and exit 0 when FD's other side closes (or on SIGTERM/SIGINT). The endpoints are held
 * by this process's bus connections, so they also go when it dies.
 *
 * Against any other bus it says so and execs the real proxy with the same (expanded) arguments
 * if one is installed, else exits 1. Start-up stays light: no config, no XML, no bus server.
 */
final class ProxyFront {
    static final String NAME = "kdbus-bridge-proxy";
    /** How bin/kdbus-bridge-proxy tells us the name it was run as (for the exec fallback). */
    static final String ARGV0_ENV = "KDBUS_BRIDGE_PROXY_ARGV0";
    /** The real proxy to fall back to; overridable for tests and unusual installs. */
    static final String REAL_PROXY_ENV = "KDBUS_BRIDGE_REAL_PROXY";
    static final String REAL_PROXY = "/usr/bin/xdg-dbus-proxy";

    /** One ADDRESS PATH pair and the filter options after it, as given. */
    record Pair(String address, String path, List<String> options) { }

    private ProxyFront() { }

    static int run(String[] argv) {
        List<String> args = Arrays.asList(argv);
        Deque<byte[]> reads = new ArrayDeque<>();
        ProxyRuleParser.CommandLine cl;
        try {
            cl = ProxyRuleParser.parseCommandLine(args, fd -> {
                byte[] data = readFd(fd);
                reads.add(data);
                return data;
            });
        } catch (ProxyArgumentException e) {
            if (!e.getMessage().isEmpty()) {
                System.err.println(e.getMessage());
            }
            if (e.showUsage()) {
                usage(System.err);
            }
            return 1;
        }
        if (cl.action() == ProxyRuleParser.Action.HELP) {
            usage(System.out);
            return 0;
        }
        if (cl.action() == ProxyRuleParser.Action.VERSION) {
            System.out.println(NAME + " " + Main.VERSION + " (xdg-dbus-proxy command line)");
            return 0;
        }
        List<String> expanded = expand(args, reads);
        List<Pair> pairs = pairs(expanded);

        // Before the first socket exists: whoever sees it may send SIGTERM at once, and a signal
        // before the handler is there would kill the JVM (status 143) with the endpoints still up
        // until the bus notices. Caught while the endpoints are being added, it is acted on once
        // they are. While the buses are probed nothing of ours exists and the front may yet
        // become the real proxy: a stop signal then kills it at once, as it would kill that
        // proxy, and one caught before a fallback is raised again instead of exec'ing past it.
        StopSignals signals = StopSignals.install();
        signals.dieAtOnce();
        Map<String, EndpointClient> buses = new LinkedHashMap<>();
        Map<String, EndpointClient> added = new LinkedHashMap<>(); // endpoint id -> its bus
        try {
            for (Pair p : pairs) {
                if (buses.containsKey(p.address())) {
                    continue;
                }
                EndpointClient c = ours(p.address());
                if (c == null) {
                    closeAll(buses);
                    return fallBack(expanded, signals);
                }
                buses.put(p.address(), c);
            }
            signals.deferToCaller(); // from the first endpoint on: removed before the front exits
            for (Pair p : pairs) {
                Path where = Path.of(p.path()).toAbsolutePath();
                try {
                    // flatpak creates the path as a placeholder file (g_mkstemp) before it starts the
                    // proxy, which unlinks it to bind there: a regular file there is ours to replace.
                    if (Files.isRegularFile(where, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
                        Files.delete(where);
                    }
                    EndpointClient c = buses.get(p.address());
                    added.put(c.add(where.toString(), p.options(), flatpakInstance())[0], c);
                } catch (EndpointClient.CallFailed e) {
                    System.err.println(NAME + ": " + p.path() + ": " + e.getMessage());
                    removeAll(added);
                    closeAll(buses);
                    // Not allowed here (a user's pair on the system bus): the real proxy can still
                    // serve the whole command line, as it would against a bus that is not ours.
                    return "org.freedesktop.DBus.Error.AccessDenied".equals(e.errorName) ? fallBack(expanded, signals)
                            : 1;
                }
            }
        } catch (IOException e) {
            System.err.println(NAME + ": " + e.getMessage());
            closeAll(buses);
            return 1;
        }

        CompletableFuture<Integer> done = new CompletableFuture<>();
        daemon("signals", () -> {
            try {
                signals.await();
                done.complete(0);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
        for (Map.Entry<String, EndpointClient> b : buses.entrySet()) {
            daemon("bus", () -> {
                b.getValue().awaitEnd();
                if (!done.isDone()) {
                    System.err.println(NAME + ": lost the connection to " + b.getKey());
                }
                done.complete(1);
            });
        }
        if (cl.syncFd() >= 0) {
            SyncFd sync = new SyncFd(cl.syncFd());
            if (!sync.writeReady()) {
                System.err.println(NAME + ": can't write to sync fd " + cl.syncFd());
            }
            daemon("sync-fd", () -> {
                if (sync.awaitClosed()) {
                    done.complete(0);
                }
            });
        }
        int status = done.join();
        // Closing alone would remove them too, but only once the bus reads our end of stream:
        // removed here, the sockets are gone before we exit (who waited on us may reuse the paths).
        removeAll(added);
        closeAll(buses);
        return status;
    }

    /** Where flatpak tells a sandboxed process (the proxy included) which app and instance it is. */
    static final String FLATPAK_INFO = "/.flatpak-info";
    /** Another place to read it from (tests). */
    static final String FLATPAK_INFO_ENV = "KDBUS_BRIDGE_FLATPAK_INFO";

    /**
     * The endpoint metadata from flatpak's instance file, if there is one: [Application] name
     * as app-id, [Instance] instance-id, so GetConnectionInstance says which sandbox a caller is in.
     */
    static Map<String, String> flatpakInstance() {
        Path info = Path.of(System.getenv().getOrDefault(FLATPAK_INFO_ENV, FLATPAK_INFO));
        Map<String, String> meta = new LinkedHashMap<>();
        List<String> lines;
        try {
            lines = Files.readAllLines(info, StandardCharsets.UTF_8);
        } catch (IOException | RuntimeException e) {
            return meta; // not in a flatpak sandbox
        }
        String group = "";
        for (String raw : lines) {
            String l = raw.strip();
            if (l.startsWith("[") && l.endsWith("]")) {
                group = l.substring(1, l.length() - 1);
            } else if (group.equals("Application") && l.startsWith("name=")) {
                meta.put("app-id", l.substring(5).strip());
            } else if (group.equals("Instance") && l.startsWith("instance-id=")) {
                meta.put("instance-id", l.substring(12).strip());
            }
        }
        return meta;
    }

    /** Removes every endpoint added so far (endpoint id -> its bus) whose bus is still there. */
    private static void removeAll(Map<String, EndpointClient> added) {
        for (Map.Entry<String, EndpointClient> e : added.entrySet()) {
            if (!e.getValue().ended()) {
                try {
                    e.getValue().remove(e.getKey());
                } catch (IOException ex) {
                    // the bus removes it when the connection closes
                }
            }
        }
    }

    /** Connects and checks the bus is ours; null (after saying why) if not, or unreachable. */
    private static EndpointClient ours(String address) {
        EndpointClient c;
        try {
            c = EndpointClient.open(address);
        } catch (IOException | RuntimeException e) {
            System.err.println(NAME + ": " + address + " is not a kdbus-bridge bus (" + e.getMessage() + ")");
            return null;
        }
        try {
            if (c.busHasEndpoints()) {
                return c;
            }
        } catch (IOException e) {
            // answered as a bus without the interface
        }
        System.err.println(NAME + ": " + address + " is not a kdbus-bridge bus");
        c.close();
        return null;
    }

    /**
     * Execs the real proxy unless there is none or it is us; returns 1 if it did not. A stop
     * signal caught before ends the front by that signal instead, and from here on one kills it
     * (default action), so no signal is lost across the exec (StopSignals.beforeExec).
     */
    private static int fallBack(List<String> expanded, StopSignals signals) {
        int killed = signals.beforeExec();
        if (killed >= 0) {
            return killed; // the raised signal did not kill us (blocked): exit as killed by it
        }
        String real = System.getenv().getOrDefault(REAL_PROXY_ENV, REAL_PROXY);
        Path realPath = Path.of(real);
        if (!Files.isExecutable(realPath) || isUs(realPath)) {
            return 1;
        }
        List<String> argv = new ArrayList<>();
        argv.add(real);
        argv.addAll(expanded);
        System.err.flush();
        Exec.execv(real, argv);
        System.err.println(NAME + ": could not run " + real);
        return 1;
    }

    /** Whether {@code real} is the script we were started as (a symlink or the file itself). */
    private static boolean isUs(Path real) {
        String argv0 = System.getenv(ARGV0_ENV);
        if (argv0 == null || argv0.isEmpty()) {
            return false;
        }
        try {
            return Files.isSameFile(real, Path.of(argv0));
        } catch (IOException | RuntimeException e) {
            return false;
        }
    }

    /**
     * The command line with every --args=FD replaced by what was read from FD, in the order the
     * parser read them (the parser inserts the content right after the option and reads nested
     * ones as it meets them, the same walk as here).
     */
    static List<String> expand(List<String> args, Deque<byte[]> reads) {
        List<String> out = new ArrayList<>(args);
        for (int i = 0; i < out.size(); ) {
            if (out.get(i).startsWith("--args=") && !reads.isEmpty()) {
                out.remove(i);
                out.addAll(i, ProxyRuleParser.splitArgs(reads.poll()));
            } else {
                i++;
            }
        }
        return out;
    }

    /** ADDRESS PATH pairs with the options that follow each (the generic --fd dropped). */
    static List<Pair> pairs(List<String> expanded) {
        List<Pair> out = new ArrayList<>();
        for (int i = 0; i < expanded.size(); ) {
            String a = expanded.get(i);
            if (a.startsWith("-")) {
                i++; // --fd=: generic (the parser accepted the line, so nothing else stands here)
                continue;
            }
            String address = a;
            String path = expanded.get(i + 1);
            i += 2;
            List<String> options = new ArrayList<>();
            while (i < expanded.size() && expanded.get(i).startsWith("-")) {
                if (!expanded.get(i).startsWith("--fd=")) {
                    options.add(expanded.get(i));
                }
                i++;
            }
            out.add(new Pair(address, path, options));
        }
        return out;
    }

    /** --args=FD's content: /proc/self/fd/FD reads a pipe or file we inherited. */
    private static byte[] readFd(int fd) throws IOException {
        return Files.readAllBytes(Path.of("/proc/self/fd/" + fd));
    }

    private static void closeAll(Map<String, EndpointClient> buses) {
        for (EndpointClient c : buses.values()) {
            c.close();
        }
    }

    private static void daemon(String name, Runnable r) {
        Thread t = new Thread(r, NAME + "-" + name);
        t.setDaemon(true);
        t.start();
    }

    static void usage(PrintStream out) {
        out.println("Usage: " + NAME + " [OPTIONS...] [ADDRESS PATH [OPTIONS...] ...]");
        out.println();
        out.println("xdg-dbus-proxy's command line; on a kdbus-bridge bus each ADDRESS PATH pair becomes");
        out.println("an endpoint of the bus (no proxy process in the message path).");
        out.println();
        out.println("  --help  --version  --fd=FD (ready byte, exit when FD closes)  --args=FD");
        out.println("  --filter  --log  --sloppy-names  --see=NAME  --talk=NAME  --own=NAME");
        out.println("  --call=NAME=RULE  --broadcast=NAME=RULE");
    }

    /** xdg-dbus-proxy's --fd: the ready byte, then exit when the other side goes (POLLHUP/POLLERR). */
    private static final class SyncFd {
        private static final int EINTR = 4;
        private final int fd;
        private final LibC libc = LibC.INSTANCE;

        SyncFd(int fd) {
            this.fd = fd;
        }

        boolean writeReady() {
            ByteBuffer b = ByteBuffer.allocateDirect(1);
            b.put(0, (byte) 'x');
            return libc.write(fd, LibC.Native.address(b), 1) == 1;
        }

        /**
         * Blocks until FD reports hang-up or error (as the proxy's G_IO_HUP | G_IO_ERR watch);
         * false if FD cannot be watched (then, like the proxy, we run until a signal).
         */
        boolean awaitClosed() {
            int ep = libc.epoll_create1(LibC.EPOLL_CLOEXEC);
            ByteBuffer ev = ByteBuffer.allocateDirect(16).order(ByteOrder.nativeOrder());
            long addr = LibC.Native.address(ev);
            // No events asked for: epoll always reports EPOLLERR and EPOLLHUP, which is all we want.
            ev.putInt(0, 0);
            ev.putLong(LibC.Native.EPOLL_DATA_OFFSET, fd);
            if (ep < 0 || libc.epoll_ctl(ep, LibC.EPOLL_CTL_ADD, fd, addr) < 0) {
                System.err.println(NAME + ": can't watch sync fd " + fd + ": "
                        + LibC.Native.strerror(LibC.Native.errno()));
                return false;
            }
            while (true) {
                int n = libc.epoll_wait(ep, addr, 1, -1);
                if (n > 0 && (ev.getInt(0) & (LibC.EPOLLERR | LibC.EPOLLHUP)) != 0) {
                    libc.close(ep);
                    return true;
                }
                if (n < 0 && LibC.Native.errno() != EINTR) {
                    System.err.println(NAME + ": watching sync fd " + fd + ": " + LibC.Native.strerror(LibC.Native.errno()));
                    return false;
                }
            }
        }
    }

    /** execv(2) through jnr-ffi, bound only on this rare path. */
    static final class Exec {
        public interface C {
            int execv(String path, jnr.ffi.Pointer argv);
        }

        private Exec() { }

        /** Replaces this process; returns only if execv failed. */
        static void execv(String path, List<String> argv) {
            C c = jnr.ffi.LibraryLoader.create(C.class).load("c");
            jnr.ffi.Runtime rt = jnr.ffi.Runtime.getRuntime(c);
            int size = rt.addressSize();
            jnr.ffi.Pointer array = jnr.ffi.Memory.allocateDirect(rt, (argv.size() + 1) * size);
            List<jnr.ffi.Pointer> keep = new ArrayList<>();
            for (int i = 0; i < argv.size(); i++) {
                byte[] s = argv.get(i).getBytes(StandardCharsets.UTF_8);
                jnr.ffi.Pointer p = jnr.ffi.Memory.allocateDirect(rt, s.length + 1);
                p.put(0, s, 0, s.length);
                p.putByte(s.length, (byte) 0);
                keep.add(p);
                array.putPointer((long) i * size, p);
            }
            array.putAddress((long) argv.size() * size, 0L);
            c.execv(path, array);
            keep.clear();
        }
    }
}
