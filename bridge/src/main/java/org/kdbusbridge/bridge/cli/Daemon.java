package org.kdbusbridge.bridge.cli;

import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.PrintStream;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Process-level behaviour of a daemon: --fork, pid files, dropping to {@code <user>},
 * SIGHUP. A JVM can't fork(2) itself, so --fork starts a second JVM running the bus and
 * waits until it has printed its address, as scripts that use {@code $(dbus-daemon --fork
 * --print-address)} rely on the parent exiting only then.
 */
final class Daemon {
    private Daemon() { }

    /** The parent side of --fork: returns the exit status of the parent. */
    static int forkAndWait(String[] argv, Main.Options o) {
        List<String> cmd = new ArrayList<>();
        cmd.add(ProcessHandle.current().info().command().orElse("java"));
        cmd.addAll(ManagementFactory.getRuntimeMXBean().getInputArguments());
        cmd.add("-cp");
        cmd.add(System.getProperty("java.class.path"));
        cmd.add(Main.class.getName());
        cmd.add(Main.FORKED_CHILD);
        cmd.addAll(Arrays.asList(argv));
        Process child;
        try {
            child = new ProcessBuilder(cmd)
                    .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
                    .start();
        } catch (IOException e) {
            System.err.println("Failed to start message bus: cannot fork: " + e.getMessage());
            return 1;
        }
        relay(child.getErrorStream(), System.err);
        try (BufferedReader r = new BufferedReader(new InputStreamReader(child.getInputStream(), StandardCharsets.UTF_8))) {
            String address = r.readLine();
            String pid = r.readLine();
            if (address == null || pid == null) {
                child.waitFor(10, TimeUnit.SECONDS);
                return child.isAlive() ? 1 : Math.max(1, child.exitValue());
            }
            if (o.printAddress) {
                Main.printTo(o.printAddressFd, address + "\n");
            }
            if (o.printPid) {
                Main.printTo(o.printPidFd, pid + "\n");
            }
            return 0;
        } catch (IOException | InterruptedException e) {
            System.err.println("Failed to start message bus: " + e.getMessage());
            child.destroy();
            return 1;
        }
    }

    private static void relay(InputStream in, PrintStream out) {
        Thread t = new Thread(() -> {
            try {
                in.transferTo(out);
            } catch (IOException e) {
                // the child detached
            }
        }, "fork-stderr");
        t.setDaemon(true);
        t.start();
    }

    /** The child side of --fork: tell the parent, then detach from its session and streams. */
    static void reportToParent(String address) throws IOException {
        OutputStream out = new java.io.FileOutputStream(java.io.FileDescriptor.out);
        out.write((address + "\n" + ProcessHandle.current().pid() + "\n").getBytes(StandardCharsets.UTF_8));
        out.flush();
        Posix posix = Posix.INSTANCE;
        posix.setsid();
        int devNull = posix.open("/dev/null", Posix.O_RDWR);
        if (devNull >= 0) {
            posix.dup2(devNull, 0);
            posix.dup2(devNull, 1);
            posix.dup2(devNull, 2);
            if (devNull > 2) {
                posix.close(devNull);
            }
        }
    }

    /** Writes our pid; refuses to overwrite an existing file, as dbus-daemon does. */
    static String writePidFile(Path file) {
        try {
            Files.writeString(file, ProcessHandle.current().pid() + "\n", StandardOpenOption.CREATE_NEW,
                    StandardOpenOption.WRITE);
            return null;
        } catch (FileAlreadyExistsException e) {
            return "The pid file \"" + file + "\" exists, if the message bus is not running, remove this file";
        } catch (IOException e) {
            return "Failed to write pid file \"" + file + "\": " + e.getMessage();
        }
    }

    static void removePidFile(Path file) {
        if (file != null) {
            try {
                Files.deleteIfExists(file);
            } catch (IOException e) {
                // nothing useful to do while exiting
            }
        }
    }

    /**
     * {@code <user>}: drop to that user after binding; a no-op if we already are it. The socket
     * files the bus created are given to that user first, so that it can still remove them at exit.
     */
    static String switchUser(String name, org.kdbusbridge.bridge.server.BusServer server) {
        long[] ids = passwd(name);
        if (ids == null) {
            return "Could not get UID and GID for username \"" + name + "\"";
        }
        Posix posix = Posix.INSTANCE;
        int current = posix.getuid();
        if (current == ids[0]) {
            return null;
        }
        if (current != 0) {
            return "Failed to change to user \"" + name + "\": only root can switch users";
        }
        int gid = (int) ids[1];
        server.giveSocketFilesTo((int) ids[0], gid);
        if (posix.setgroups(1, new int[] {gid}) != 0 || posix.setgid(gid) != 0 || posix.setuid((int) ids[0]) != 0) {
            return "Failed to change to user \"" + name + "\"";
        }
        return null;
    }

    /** {uid, gid} from /etc/passwd, or null. Called once at start-up, never on the loop. */
    static long[] passwd(String name) {
        try {
            for (String line : Files.readAllLines(Path.of("/etc/passwd"))) {
                String[] f = line.split(":");
                if (f.length > 3 && (f[0].equals(name) || f[2].equals(name))) {
                    return new long[] {Long.parseLong(f[2]), Long.parseLong(f[3])};
                }
            }
        } catch (IOException | NumberFormatException e) {
            return null;
        }
        return null;
    }

    /** SIGHUP reloads the configuration (the handler only queues the work on the loop). */
    @SuppressWarnings("restriction")
    static void onSighup(Runnable reload) {
        try {
            sun.misc.Signal.handle(new sun.misc.Signal("HUP"), sig -> reload.run());
        } catch (IllegalArgumentException e) {
            System.err.println("kdbus-bridge: SIGHUP unavailable, reload only through ReloadConfig: " + e.getMessage());
        }
    }
}
