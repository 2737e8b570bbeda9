package dev.pglease.ha;

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.BooleanSupplier;
import java.util.function.Function;

/**
 * A two-node PostgreSQL cluster run by an HA manager on this machine, as {@link HaRun} needs it: a multi-host URL,
 * which node is primary, and the three faults (kill -9 and pause of a node, a planned switchover by the manager).
 */
interface HaCluster extends AutoCloseable {

    /** The HA managers the harness can run. */
    enum Manager {
        PG_AUTO_FAILOVER(
                "pg_auto_failover",
                "pg_autoctl (postgresql-15-auto-failover) and the PostgreSQL 15 binaries",
                "monitor detects in 3 s and promotes after the 5 s demote timeout",
                AutoFailoverCluster::available,
                AutoFailoverCluster::start),
        PATRONI(
                "Patroni",
                "patroni, python3-etcd, etcd-server and the PostgreSQL 15 binaries",
                "the leader key in etcd expires (TTL " + PatroniCluster.TTL_S
                        + " s), the replica takes it and promotes",
                PatroniCluster::available,
                PatroniCluster::start);

        final String label;
        final String needs;
        /** How the manager notices a lost primary and promotes, with the settings the harness gives it. */
        final String detection;

        private final BooleanSupplier available;
        private final Function<Boolean, HaCluster> start;

        Manager(
                String label,
                String needs,
                String detection,
                BooleanSupplier available,
                Function<Boolean, HaCluster> start) {
            this.label = label;
            this.needs = needs;
            this.detection = detection;
            this.available = available;
            this.start = start;
        }

        boolean available() {
            return available.getAsBoolean();
        }

        /** Boots a fresh cluster; {@code synchronous}: the standby confirms every commit before it is acknowledged. */
        HaCluster start(boolean synchronous) {
            return start.apply(synchronous);
        }

        /** The manager named {@code name} (its label or constant name, any case). */
        static Manager named(String name) {
            for (Manager m : values()) {
                if (m.label.equalsIgnoreCase(name.trim()) || m.name().equalsIgnoreCase(name.trim())) {
                    return m;
                }
            }
            throw new IllegalArgumentException("unknown HA manager '" + name + "': allowed are "
                    + java.util.Arrays.stream(values()).map(m -> m.label).toList());
        }
    }

    /** The PostgreSQL port of each node, by node name. */
    Map<String, Integer> nodePorts();

    /** Multi-host JDBC URL of both nodes with {@code targetServerType=primary}: the driver picks the writable one. */
    default String jdbcUrl() {
        StringBuilder hosts = new StringBuilder();
        for (int port : nodePorts().values()) {
            hosts.append(hosts.length() == 0 ? "" : ",").append("127.0.0.1:").append(port);
        }
        return "jdbc:postgresql://" + hosts + "/postgres?user=postgres&targetServerType=primary";
    }

    /** A connection as postgres to database {@code db} of the node on {@code port}, with short timeouts. */
    static Connection connect(int port, String db) throws SQLException {
        return DriverManager.getConnection(
                "jdbc:postgresql://127.0.0.1:" + port + "/" + db + "?user=postgres&connectTimeout=2&socketTimeout=5");
    }

    /**
     * The timeline of every node that answers as a primary now (not in recovery), from the name of its current WAL
     * file; a paused or stopped node does not answer within a second and is left out.
     */
    default List<Integer> primaryTimelines() {
        List<Integer> out = new ArrayList<>();
        for (int port : nodePorts().values()) {
            try (Connection c = DriverManager.getConnection("jdbc:postgresql://127.0.0.1:" + port
                            + "/postgres?user=postgres&connectTimeout=1&loginTimeout=1&socketTimeout=1");
                    Statement st = c.createStatement();
                    ResultSet rs = st.executeQuery("SELECT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))"
                            + "::bit(32)::int WHERE NOT pg_is_in_recovery()")) {
                if (rs.next()) {
                    out.add(rs.getInt(1));
                }
            } catch (SQLException notAPrimaryNow) {
                // down, paused, starting, or in recovery (pg_current_wal_lsn is refused there)
            }
        }
        return out;
    }

    /** The node that is the writable primary now (null if none answers). */
    default String primary() {
        for (Map.Entry<String, Integer> e : nodePorts().entrySet()) {
            try (Connection c = connect(e.getValue(), "postgres");
                    Statement st = c.createStatement();
                    ResultSet rs = st.executeQuery("SELECT NOT pg_is_in_recovery() AND NOT "
                            + "current_setting('transaction_read_only')::boolean")) {
                if (rs.next() && rs.getBoolean(1)) {
                    return e.getKey();
                }
            } catch (SQLException ignored) {
                // down or paused
            }
        }
        return null;
    }

    /** SIGKILL every process of the node (manager agent and PostgreSQL): the machine is gone. */
    void kill(String node);

    /** SIGSTOP (or SIGCONT) every process of the node: a frozen machine. */
    void freeze(String node, boolean frozen);

    /** A planned switchover by the manager; returns when the manager reports it done. */
    void switchover();

    /** The manager's view of the cluster, for failure reports. */
    String state();

    @Override
    void close();
}
