package dev.pglease.fault.kit;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.Arrays;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.atomic.AtomicReference;

/**
 * The test suite's TCP proxy between a client and the database, with connection faults: cut (every connection
 * reset, new ones reset at once, until restored), blackhole (bytes on open connections are swallowed, the
 * connections stay open; new ones are held, their bytes kept for when it lifts), added latency, reset of every connection (RST), and a hook that fires right after the
 * next request was forwarded (to reset mid-statement, or pause the node between request and reply). The upstream
 * can be switched (a virtual IP for failover).
 */
public final class TcpProxy implements AutoCloseable {
    private final ServerSocket server;
    private final Thread acceptor;
    private final Set<Conn> conns = ConcurrentHashMap.newKeySet();
    private volatile String upstreamHost;
    private volatile int upstreamPort;
    private volatile boolean blackhole;
    private volatile long latencyMs;
    private volatile boolean closed;
    private final AtomicReference<Runnable> onNextRequest = new AtomicReference<>();

    public TcpProxy(String upstreamHost, int upstreamPort) {
        this("127.0.0.1", upstreamHost, upstreamPort);
    }

    public TcpProxy(String bindHost, String upstreamHost, int upstreamPort) {
        this.upstreamHost = upstreamHost;
        this.upstreamPort = upstreamPort;
        try {
            server = new ServerSocket();
            server.setReuseAddress(true);
            server.bind(new InetSocketAddress(InetAddress.getByName(bindHost), 0));
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
        acceptor = new Thread(this::acceptLoop, "proxy-accept-" + server.getLocalPort());
        acceptor.setDaemon(true);
        acceptor.start();
    }

    public int port() {
        return server.getLocalPort();
    }

    /** Points new connections at another server, and resets the existing ones (as a moved virtual IP would). */
    public void switchUpstream(String host, int port) {
        this.upstreamHost = host;
        this.upstreamPort = port;
        resetAll();
    }

    public void blackhole(boolean on) {
        blackhole = on;
    }

    public boolean isBlackhole() {
        return blackhole;
    }

    public void latency(long ms) {
        latencyMs = ms;
    }

    /** RST every open connection. */
    public void resetAll() {
        for (Conn c : conns) {
            c.reset();
        }
    }

    /** Runs {@code action} in the forwarding thread right after the next client request reached the server. */
    public void onNextRequest(Runnable action) {
        onNextRequest.set(action);
    }

    /**
     * Arms a one-shot fault: the next connection that sends a request drops the server's answer to it and is reset,
     * so the server has done (and committed) the statement while the client only sees a broken connection.
     */
    public void resetAfterNextAnswer() {
        armAnswerDrop.set(true);
    }

    /** Cancels {@link #resetAfterNextAnswer} if it has not fired. */
    public void disarmAnswerDrop() {
        armAnswerDrop.set(false);
    }

    private final java.util.concurrent.atomic.AtomicBoolean armAnswerDrop =
            new java.util.concurrent.atomic.AtomicBoolean();

    /** Resets every connection right after the next request was forwarded: the statement may or may not commit. */
    public void resetMidStatement() {
        onNextRequest(this::resetAll);
    }

    /**
     * Cuts the database off: from this moment no byte gets through any open connection, then every connection is reset,
     * and new ones are reset at once, until {@link #restore()}. As for a killed process, no side can react to the first
     * reset over a connection reset later.
     */
    public void cut() {
        refuse = true;
        resetAll();
    }

    /** Accepts and forwards connections again after {@link #cut()}. */
    public void restore() {
        refuse = false;
    }

    private volatile boolean refuse;

    public int openConnections() {
        return conns.size();
    }

    private void acceptLoop() {
        while (!closed) {
            try {
                Socket client = server.accept();
                Conn c = new Conn(client);
                conns.add(c); // before the check: a cut from now on resets it, a cut before it is seen below
                if (refuse) {
                    c.reset();
                    continue;
                }
                client.setTcpNoDelay(true);
                c.start();
            } catch (IOException e) {
                if (!closed) {
                    PgServer.sleep(10);
                }
            }
        }
    }

    private record Chunk(byte[] data, long dueMs) {}

    private final class Conn {
        private final Socket client;
        private volatile Socket upstream;
        private volatile boolean dead;

        Conn(Socket client) {
            this.client = client;
        }

        void start() {
            Thread t = new Thread(this::run, "proxy-conn-" + client.getPort());
            t.setDaemon(true);
            t.start();
        }

        private void run() {
            try {
                // while blackholed, hold new connections without connecting or reading: the client sees a silent
                // server,
                // and what it sent waits in the socket, as a partitioned network delays bytes rather than losing them
                while (blackhole && !dead && !closed) {
                    PgServer.sleep(10);
                }
                Socket up = new Socket();
                up.setTcpNoDelay(true);
                up.connect(new InetSocketAddress(upstreamHost, upstreamPort), 3000);
                upstream = up;
                if (dead) {
                    reset();
                    return;
                }
                Thread back = new Thread(() -> pump(up, client, false), "proxy-down-" + client.getPort());
                back.setDaemon(true);
                back.start();
                pump(client, up, true);
            } catch (IOException e) {
                reset();
            }
        }

        private void pump(Socket from, Socket to, boolean request) {
            LinkedBlockingQueue<Chunk> queue = new LinkedBlockingQueue<>();
            Thread writer = new Thread(() -> writeLoop(queue, to, request), "proxy-write-" + client.getPort());
            writer.setDaemon(true);
            writer.start();
            byte[] buf = new byte[16384];
            try {
                InputStream in = from.getInputStream();
                while (!dead) {
                    int n = in.read(buf);
                    if (n < 0) {
                        break;
                    }
                    if (blackhole) {
                        continue;
                    }
                    queue.add(new Chunk(Arrays.copyOf(buf, n), System.currentTimeMillis() + latencyMs));
                }
            } catch (IOException ignored) {
                // connection reset or closed
            }
            queue.add(new Chunk(null, 0));
        }

        private void writeLoop(LinkedBlockingQueue<Chunk> queue, Socket to, boolean request) {
            try {
                OutputStream out = to.getOutputStream();
                while (true) {
                    Chunk c = queue.take();
                    if (c.data() == null) {
                        break;
                    }
                    long wait = c.dueMs() - System.currentTimeMillis();
                    if (wait > 0) {
                        Thread.sleep(wait);
                    }
                    if (blackhole || dead || refuse) {
                        continue; // cut: nothing more reaches either side, even before its connection is reset
                    }
                    if (!request && dropThisAnswer) {
                        reset(); // the answer never reaches the client
                        break;
                    }
                    out.write(c.data());
                    out.flush();
                    if (request) {
                        if (armAnswerDrop.compareAndSet(true, false)) {
                            dropThisAnswer = true;
                        }
                        Runnable hook = onNextRequest.getAndSet(null);
                        if (hook != null) {
                            hook.run();
                        }
                    }
                }
            } catch (IOException | InterruptedException ignored) {
                // closed
            }
            reset();
        }

        private volatile boolean dropThisAnswer;

        void reset() {
            dead = true;
            hardClose(client);
            Socket up = upstream;
            if (up != null) {
                hardClose(up);
            }
            conns.remove(this);
        }

        private void hardClose(Socket s) {
            try {
                if (!s.isClosed()) {
                    s.setSoLinger(true, 0);
                }
            } catch (IOException ignored) {
                // already gone
            }
            try {
                s.close();
            } catch (IOException ignored) {
                // already gone
            }
        }
    }

    @Override
    public void close() {
        closed = true;
        try {
            server.close();
        } catch (IOException ignored) {
            // closing
        }
        resetAll();
    }
}
