package dev.pglease.compare;

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;

/**
 * A PostgreSQL session advisory lock held by the leader's connection ({@code pg_try_advisory_lock}). Standbys
 * try every {@code retry-ms}; the leader runs {@code SELECT 1} on the lock connection every {@code retry-ms} and
 * steps down when it fails. The session sets {@code idle_session_timeout = lease-ms}, so the server ends the
 * session (and frees the lock) when the holder stops talking for that long: the closest thing a session lock has
 * to a lease. TCP keep-alives would not do it: the kernel of a paused process still answers them. No token.
 */
final class AdvisoryBackend implements Candidate.Backend {
    private final Candidate c;
    private final long key;
    private volatile Connection conn;
    private volatile boolean leader;
    private volatile boolean closing;

    AdvisoryBackend(Candidate c) {
        this.c = c;
        this.key = c.lease.hashCode();
    }

    @Override
    public void run() {
        while (!closing) {
            long next = System.currentTimeMillis() + c.retryMs;
            try {
                if (conn == null) {
                    Connection cn = DriverManager.getConnection(c.args.get("store") + "&connectTimeout=2");
                    try (Statement st = cn.createStatement()) {
                        st.execute("SET idle_session_timeout = " + c.leaseMs);
                    }
                    conn = cn;
                }
                if (!leader) {
                    try (PreparedStatement ps = conn.prepareStatement("SELECT pg_try_advisory_lock(?)")) {
                        ps.setLong(1, key);
                        try (ResultSet rs = ps.executeQuery()) {
                            rs.next();
                            if (rs.getBoolean(1) && !closing) {
                                leader = true;
                                c.elected(null, () -> leader);
                            }
                        }
                    }
                } else {
                    try (Statement st = conn.createStatement()) {
                        st.execute("SELECT 1");
                    }
                }
            } catch (SQLException e) {
                if (leader) {
                    leader = false;
                    c.revoked("lock session failed: " + e.getSQLState());
                }
                Connection cn = conn;
                conn = null;
                if (cn != null) {
                    try {
                        cn.close();
                    } catch (SQLException ignored) {
                        // broken
                    }
                }
            }
            long wait = next - System.currentTimeMillis();
            if (wait > 0) {
                Candidate.sleep(wait);
            }
        }
    }

    @Override
    public void shutdown() throws SQLException {
        closing = true;
        Connection cn = conn;
        if (cn != null) {
            if (leader) {
                leader = false;
                try (PreparedStatement ps = cn.prepareStatement("SELECT pg_advisory_unlock(?)")) {
                    ps.setLong(1, key);
                    ps.execute();
                }
            }
            cn.close();
        }
    }
}
