package dev.pglease.testkit;

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.EnumSet;
import java.util.Locale;
import java.util.Set;

/**
 * A compatibility lane: one thing the tests can run on that the default build does not vary (a PostgreSQL major,
 * a pooler in front of the server, a JDK). A run is in every lane its environment matches, found from what the
 * build configured, never from a label: the major of the embedded server's binaries (property
 * {@code pglease.postgresBinaries}, switched by the profiles {@code pg13} … {@code pg18}), the pooler (property
 * {@link #POOLER_PROPERTY}, set by the profiles {@code pgbouncer} and {@code pgbouncer-session}) and the JDK the
 * tests run on. A test that can not work in a lane says so with {@link NotInLane}.
 *
 * <p>The lanes select their tests by tag, never by folder: {@code core} (the library against a real server: every
 * lane) and {@code security} (hostile logins and function rights: the PostgreSQL and PgBouncer lanes). A test of a
 * new suite joins the lanes by carrying one of these tags.
 */
public enum Lane {
    PG13,
    PG14,
    PG15,
    PG16,
    PG17,
    PG18,
    /** The embedded server behind PgBouncer in {@code pool_mode=transaction}. */
    PGBOUNCER_TRANSACTION,
    /** The embedded server behind PgBouncer in {@code pool_mode=session}. */
    PGBOUNCER_SESSION,
    JDK17,
    JDK21,
    JDK25;

    /**
     * {@code pgbouncer-transaction} or {@code pgbouncer-session}: the tests reach the embedded server through
     * PgBouncer in that pool mode; unset or empty: directly.
     */
    public static final String POOLER_PROPERTY = "pglease.test.pooler";

    /** The property name of a pooler lane, e.g. {@code pgbouncer-session}; {@code null} for the other lanes. */
    public String poolerName() {
        return switch (this) {
            case PGBOUNCER_TRANSACTION -> "pgbouncer-transaction";
            case PGBOUNCER_SESSION -> "pgbouncer-session";
            default -> null;
        };
    }

    /** PgBouncer's {@code pool_mode} of a pooler lane. */
    public String poolMode() {
        return switch (this) {
            case PGBOUNCER_TRANSACTION -> "transaction";
            case PGBOUNCER_SESSION -> "session";
            default -> throw new IllegalStateException(this + " is not a pooler lane");
        };
    }

    /** The pooler lane this run is in ({@link #POOLER_PROPERTY}), or {@code null} when it reaches the server directly. */
    public static Lane pooler() {
        String value = System.getProperty(POOLER_PROPERTY, "").trim();
        if (value.isEmpty()) {
            return null;
        }
        for (Lane lane : values()) {
            if (value.equals(lane.poolerName())) {
                return lane;
            }
        }
        throw new IllegalArgumentException(POOLER_PROPERTY + " must be pgbouncer-transaction, pgbouncer-session or"
                + " empty, got \"" + value + "\"");
    }

    /**
     * The PostgreSQL major of the embedded server's binaries (property {@code pglease.postgresBinaries}, e.g.
     * {@code 13.7.0}), or 0 when the build did not say.
     */
    public static int postgresMajor() {
        String binaries = System.getProperty("pglease.postgresBinaries", "").trim();
        if (binaries.isEmpty()) {
            return 0;
        }
        try {
            return Integer.parseInt(binaries.split("\\.")[0]);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(
                    "pglease.postgresBinaries must be a version such as 17.11.0, got \"" + binaries + "\"");
        }
    }

    /**
     * The lanes this run is in: the PostgreSQL major (of the embedded server's binaries, or of the server named by
     * {@code PGLEASE_TEST_JDBC_URL}, asked once), the pooler if any, the JDK.
     */
    public static Set<Lane> active() {
        Set<Lane> lanes = EnumSet.noneOf(Lane.class);
        String external = System.getenv("PGLEASE_TEST_JDBC_URL");
        named("PG" + (external == null || external.isBlank() ? postgresMajor() : externalMajor(external)), lanes);
        Lane pooler = pooler();
        if (pooler != null) {
            lanes.add(pooler);
        }
        named("JDK" + Runtime.version().feature(), lanes);
        return lanes;
    }

    private static int externalMajor = -1;

    private static synchronized int externalMajor(String url) {
        if (externalMajor < 0) {
            try (Connection c = DriverManager.getConnection(url);
                    Statement s = c.createStatement();
                    ResultSet rs = s.executeQuery("SELECT current_setting('server_version_num')::int / 10000")) {
                rs.next();
                externalMajor = rs.getInt(1);
            } catch (SQLException e) {
                throw new IllegalStateException("could not ask the server at PGLEASE_TEST_JDBC_URL its version", e);
            }
        }
        return externalMajor;
    }

    private static void named(String name, Set<Lane> into) {
        for (Lane lane : values()) {
            if (lane.name().equals(name)) {
                into.add(lane);
            }
        }
    }

    /** The lane's name as the runner prints it, e.g. {@code pgbouncer-session}, {@code pg13}, {@code jdk21}. */
    @Override
    public String toString() {
        return poolerName() != null ? poolerName() : name().toLowerCase(Locale.ROOT);
    }
}
