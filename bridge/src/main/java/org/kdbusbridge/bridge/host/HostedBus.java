package org.kdbusbridge.bridge.host;

import java.io.File;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import org.kdbusbridge.bridge.activation.ChildStdio;
import org.kdbusbridge.bridge.activation.ServiceProcessContext;
import org.kdbusbridge.bridge.cli.BusLaunch;
import org.kdbusbridge.bridge.transport.LibC;
import org.kdbusbridge.bridge.transport.SocketConnection;

/**
 * One front's connection, on a thread of its own: reads the request (argv, directory,
 * environment, and the front's fds 0-2), runs the bus through {@link BusLaunch} as a process of
 * its own would, answers the address, then serves the front's signals until it asks for the
 * stop or hangs up (killed: the bus stops at once). Whatever goes wrong stays in this bus: an
 * exception stops it and the front gets status 1.
 */
final class HostedBus implements Runnable {
    private final BusHost host;
    private final SocketConnection conn;
    private final ByteBuffer io = ByteBuffer.allocateDirect(64 * 1024);
    private final List<Integer> fds = new ArrayList<>();
    /** The bus's stderr (owns the front's fd 2 once made). */
    private LogQueue log;
    /** Its services' stdout and stderr (owns the front's fd 1 and a dup of fd 2 once made). */
    private ChildStdio stdio;
    /** The bus once it is up, for a host that is being ended (SIGTERM to the host: its shutdown hook). */
    private volatile BusLaunch running;

    HostedBus(BusHost host, SocketConnection conn) {
        this.host = host;
        this.conn = conn;
    }

    /** A front that sends no request, or half of one, within the host's request timeout. */
    static final class RequestTimeout extends IOException {
        RequestTimeout(String message) {
            super(message);
        }
    }

    @Override
    public void run() {
        BusLaunch launch = null;
        try {
            blocking(conn.fd());
            HostProtocol.Request request;
            try {
                request = readRequest(System.nanoTime() + host.requestTimeoutMillis() * 1_000_000L);
            } catch (RequestTimeout e) {
                timedOut(e.getMessage());
                return;
            }
            receiveTimeout(0); // from now on the front's commands come when they come
            if (request == null || fds.size() != 3) {
                return; // not a front, or it went away: nothing to answer
            }
            if (!request.mntNamespace().equals(BusHost.namespace("mnt"))
                    || !request.netNamespace().equals(BusHost.namespace("net"))) {
                send(HostProtocol.reply(HostProtocol.NOT_HOSTABLE, "another mount or network namespace"));
                return;
            }
            log = new LogQueue(fds.get(2), host.logQueueBytes());
            PrintStream err = new PrintStream(log, true);
            ThreadRoutedStream.route(err);
            java.util.Map<String, String> env = request.environment();
            Path cwd = Path.of(request.cwd());
            launch = BusLaunch.hosted(request.argv().toArray(new String[0]), env, cwd, err, host.configCache());
            if (launch == null) {
                send(HostProtocol.reply(HostProtocol.FAILED, BusLaunch.usageStatus()));
                return;
            }
            String why = launch.notHostable();
            if (why != null) {
                send(HostProtocol.reply(HostProtocol.NOT_HOSTABLE, why));
                launch = null;
                return;
            }
            int status = launch.loadHosted();
            if (status != 0) {
                send(HostProtocol.reply(HostProtocol.FAILED, status));
                launch = null;
                return;
            }
            why = launch.notHostable();
            if (why != null) {
                send(HostProtocol.reply(HostProtocol.NOT_HOSTABLE, why));
                launch = null;
                return;
            }
            ServiceProcessContext children;
            if (LibC.Native.spawnSupported()) {
                // the front's very stdout and stderr (fd 2 is the log's: a dup, same description);
                // a library built on a glibc before 2.34 has no spawn0 body: services' output is then discarded
                int errDup = LibC.INSTANCE.fcntl(fds.get(2), LibC.F_DUPFD_CLOEXEC, 3);
                if (errDup < 0) {
                    throw new IOException("dup of the front's stderr: " + LibC.Native.strerror(LibC.Native.errno()));
                }
                stdio = new ChildStdio(fds.get(1), errDup);
                children = new ServiceProcessContext(env, cwd.toFile(), ProcessBuilder.Redirect.DISCARD,
                        ProcessBuilder.Redirect.DISCARD, stdio);
            } else {
                children = new ServiceProcessContext(env, cwd.toFile(), redirect(fds.get(1)), redirect(fds.get(2)));
            }
            status = launch.startHosted(host.quotaPerBus(), conn.peer().pid(), children);
            if (status != 0) {
                send(HostProtocol.reply(HostProtocol.FAILED, status));
                launch = null;
                return;
            }
            running = launch;
            send(HostProtocol.reply(HostProtocol.ADDRESS, launch.address()));
            serve(launch);
            launch = null; // stopped by serve
        } catch (IOException | RuntimeException | Error e) {
            // A broken bus ends alone: the others go on. Status 1 to its front if it still listens.
            try {
                send(HostProtocol.reply(HostProtocol.FAILED, 1));
            } catch (IOException | RuntimeException ignored) {
                // the front is gone
            }
        } finally {
            if (launch != null) {
                stopQuietly(launch);
            }
            ThreadRoutedStream.route(null);
            // each descriptor closed once, by its owner; nothing of this bus writes after this
            for (int i = 0; i < fds.size(); i++) {
                boolean owned = i == 1 && stdio != null || i == 2 && log != null;
                if (!owned) {
                    LibC.INSTANCE.close(fds.get(i));
                }
            }
            if (stdio != null) {
                stdio.close(); // at once, or when a spawn in flight lets go
            }
            if (log != null) {
                log.close(); // fd 2: once its last queued lines are out (LogQueue.DRAIN_MILLIS at most)
            }
            conn.close();
            host.finished(this);
        }
    }

    /** The front's commands until the stop; a hang-up (the front was killed) stops the bus at once. */
    private void serve(BusLaunch launch) throws IOException {
        while (true) {
            io.clear().limit(1);
            int n = conn.read(io);
            if (n <= 0) {
                stopQuietly(launch);
                return;
            }
            byte cmd = io.get(0);
            if (cmd == HostProtocol.HUP) {
                launch.reload();
            } else if (cmd == HostProtocol.TERM || cmd == HostProtocol.INT) {
                stopQuietly(launch);
                send(HostProtocol.reply(HostProtocol.STOPPED, 0));
                return;
            }
        }
    }

    /** The host is ending: the bus stops now (its socket files go); its front sees EOF and exits 1. */
    void stopNow() {
        BusLaunch l = running;
        if (l != null) {
            stopQuietly(l);
        }
    }

    private static void stopQuietly(BusLaunch launch) {
        try {
            launch.stop();
        } catch (RuntimeException e) {
            // it was going away anyway
        }
    }

    /**
     * Without the native spawn (jnr-ffi only): the front's descriptor reopened by path, a new
     * open file (its own offset), or nowhere for a socket.
     */
    private static ProcessBuilder.Redirect redirect(int fd) {
        File f = new File("/proc/self/fd/" + fd);
        try (FileOutputStream probe = new FileOutputStream(f, true)) {
            return ProcessBuilder.Redirect.appendTo(f);
        } catch (IOException e) {
            return ProcessBuilder.Redirect.DISCARD; // a socket cannot be reopened by path
        }
    }

    /**
     * The log line for a front that did not send its request in time: to its stderr when that
     * came (through a LogQueue of its own, which never blocks), else to the host's.
     */
    private void timedOut(String what) {
        String line = "kdbus-bridge host: closing a front connection (pid " + conn.peer().pid() + "): " + what;
        if (fds.size() == 3) {
            log = new LogQueue(fds.get(2), host.logQueueBytes());
            byte[] b = (line + "\n").getBytes(java.nio.charset.StandardCharsets.UTF_8);
            log.write(b, 0, b.length);
        } else {
            System.err.println(line);
        }
    }

    /** The request, or null at EOF first; the fds that came with it are in {@link #fds}. */
    private HostProtocol.Request readRequest(long deadline) throws IOException {
        ByteBuffer header = readFully(8, deadline);
        if (header == null) {
            return null;
        }
        int length;
        try {
            length = HostProtocol.bodyLength(header);
        } catch (HostProtocol.MalformedException e) {
            return null;
        }
        ByteBuffer body = readFully(length, deadline);
        if (body == null) {
            return null;
        }
        try {
            return HostProtocol.decode(body);
        } catch (HostProtocol.MalformedException e) {
            return null;
        }
    }

    private ByteBuffer readFully(int n, long deadline) throws IOException {
        ByteBuffer out = ByteBuffer.allocate(n);
        while (out.hasRemaining()) {
            long left = (deadline - System.nanoTime()) / 1_000_000;
            if (left <= 0) {
                throw new RequestTimeout("no complete request within " + host.requestTimeoutMillis() + " ms");
            }
            receiveTimeout(left); // a blocking read that gives up at the deadline (0 back: EAGAIN)
            io.clear().limit(Math.min(io.capacity(), out.remaining()));
            int r = conn.readWithFds(io, fd -> {
                if (fds.size() < 3) {
                    fds.add(fd);
                } else {
                    LibC.INSTANCE.close(fd);
                }
            });
            if (r < 0) {
                return null;
            }
            io.flip();
            out.put(io);
        }
        return out.flip();
    }

    private void send(byte[] bytes) throws IOException {
        ByteBuffer b = ByteBuffer.allocateDirect(bytes.length).put(bytes).flip();
        while (b.hasRemaining()) {
            if (conn.write(b) == 0) {
                throw new IOException("front's socket full");
            }
        }
    }

    /** SO_RCVTIMEO on the front's socket, 0 for none. */
    private void receiveTimeout(long millis) throws IOException {
        ByteBuffer tv = ByteBuffer.allocateDirect(16).order(java.nio.ByteOrder.nativeOrder());
        tv.putLong(0, millis / 1000).putLong(8, (millis % 1000) * 1000);
        if (LibC.INSTANCE.setsockopt(conn.fd(), LibC.SOL_SOCKET, LibC.SO_RCVTIMEO, LibC.Native.address(tv), 16) != 0) {
            throw new IOException("SO_RCVTIMEO: " + LibC.Native.strerror(LibC.Native.errno()));
        }
    }

    private static void blocking(int fd) {
        int flags = LibC.INSTANCE.fcntl(fd, LibC.F_GETFL, 0);
        LibC.INSTANCE.fcntl(fd, LibC.F_SETFL, flags & ~LibC.O_NONBLOCK);
    }
}
