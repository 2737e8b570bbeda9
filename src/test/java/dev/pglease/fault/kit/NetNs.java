package dev.pglease.fault.kit;

import java.time.Duration;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A network namespace joined to the host by a veth pair, with an nftables table whose drop rules partition it from
 * the database. Only usable as root with {@code ip} and {@code nft}; {@link #available()} says so, and tests skip
 * otherwise.
 */
public final class NetNs implements AutoCloseable {
    private static final AtomicInteger SEQ = new AtomicInteger();
    private static final Duration T = Duration.ofSeconds(10);

    private final String name;
    private final String hostIf;
    private final String hostIp;
    private final String nsIp;
    private volatile boolean dropping;

    private NetNs(String name, String hostIf, String hostIp, String nsIp) {
        this.name = name;
        this.hostIf = hostIf;
        this.hostIp = hostIp;
        this.nsIp = nsIp;
    }

    /** Root, ip and nft present, and a throw-away namespace can actually be created. */
    public static boolean available() {
        if (!Procs.isRoot() || !Procs.commandExists("ip") || !Procs.commandExists("nft")) {
            return false;
        }
        String probe = "pglfp" + ProcessHandle.current().pid();
        boolean ok = Procs.tryRun(T, "ip", "netns", "add", probe).code() == 0
                && Procs.tryRun(T, "ip", "netns", "exec", probe, "nft", "list", "tables")
                                .code()
                        == 0;
        Procs.tryRun(T, "ip", "netns", "del", probe);
        return ok;
    }

    /** Creates namespace + veth pair with addresses 10.213.N.1 (host side) and 10.213.N.2 (inside). */
    public static NetNs create() {
        int n = (int) ((ProcessHandle.current().pid() * 7 + SEQ.incrementAndGet()) % 250) + 1;
        String name = "pglf" + ProcessHandle.current().pid() + "x" + SEQ.get();
        String hostIf = "pglh" + n + "x" + SEQ.get();
        String nsIf = "pgln" + n + "x" + SEQ.get();
        String hostIp = "10.213." + n + ".1";
        String nsIp = "10.213." + n + ".2";
        NetNs ns = new NetNs(name, hostIf, hostIp, nsIp);
        try {
            Procs.run(T, "ip", "netns", "add", name);
            Procs.run(T, "ip", "link", "add", hostIf, "type", "veth", "peer", "name", nsIf);
            Procs.run(T, "ip", "link", "set", nsIf, "netns", name);
            Procs.run(T, "ip", "addr", "add", hostIp + "/30", "dev", hostIf);
            Procs.run(T, "ip", "link", "set", hostIf, "up");
            Procs.run(T, "ip", "netns", "exec", name, "ip", "addr", "add", nsIp + "/30", "dev", nsIf);
            Procs.run(T, "ip", "netns", "exec", name, "ip", "link", "set", nsIf, "up");
            Procs.run(T, "ip", "netns", "exec", name, "ip", "link", "set", "lo", "up");
            Procs.run(T, "ip", "netns", "exec", name, "nft", "add", "table", "inet", "pglease");
            Procs.run(
                    T,
                    "ip",
                    "netns",
                    "exec",
                    name,
                    "nft",
                    "add",
                    "chain",
                    "inet",
                    "pglease",
                    "out",
                    "{ type filter hook output priority 0 ; policy accept ; }");
            Procs.run(
                    T,
                    "ip",
                    "netns",
                    "exec",
                    name,
                    "nft",
                    "add",
                    "chain",
                    "inet",
                    "pglease",
                    "in",
                    "{ type filter hook input priority 0 ; policy accept ; }");
        } catch (RuntimeException e) {
            ns.close();
            throw e;
        }
        return ns;
    }

    public String name() {
        return name;
    }

    /** Address of the host side, as seen from inside the namespace. */
    public String hostIp() {
        return hostIp;
    }

    /** Drops every packet to and from the host side (both directions: no RST, no FIN, silence). */
    public void partition() {
        Procs.run(
                T, "ip", "netns", "exec", name, "nft", "add", "rule", "inet", "pglease", "out", "ip", "daddr", hostIp,
                "drop");
        Procs.run(
                T, "ip", "netns", "exec", name, "nft", "add", "rule", "inet", "pglease", "in", "ip", "saddr", hostIp,
                "drop");
        dropping = true;
    }

    public void heal() {
        Procs.run(T, "ip", "netns", "exec", name, "nft", "flush", "chain", "inet", "pglease", "out");
        Procs.run(T, "ip", "netns", "exec", name, "nft", "flush", "chain", "inet", "pglease", "in");
        dropping = false;
    }

    public boolean partitioned() {
        return dropping;
    }

    @Override
    public void close() {
        Procs.tryRun(T, "ip", "link", "del", hostIf);
        Procs.tryRun(T, "ip", "netns", "del", name);
    }
}
