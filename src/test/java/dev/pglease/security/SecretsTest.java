package dev.pglease.security;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

import dev.pglease.Elector;
import dev.pglease.LeaseConfig;
import dev.pglease.LeaseException;
import dev.pglease.PgLease;
import dev.pglease.TestDatabase;
import dev.pglease.internal.tool.Databases;
import dev.pglease.internal.util.Secrets;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.SQLException;
import java.time.Duration;
import java.util.concurrent.Callable;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.postgresql.ds.PGSimpleDataSource;

/** Passwords never reach exception messages, stack traces or logs; TLS options reach the driver untouched. */
@Tag("security")
class SecretsTest {

    static final String SECRET = "Sup3r-s3cret-" + Long.toHexString(System.nanoTime());

    /** A port nothing listens on (connection refused at once). */
    static final String UNREACHABLE = "jdbc:postgresql://127.0.0.1:1/app?user=app&password=" + SECRET
            + "&sslmode=verify-full&sslrootcert=/etc/ssl/db-root.crt&connectTimeout=2";

    static PGSimpleDataSource dataSource(String url) {
        PGSimpleDataSource ds = new PGSimpleDataSource();
        ds.setURL(url);
        return ds;
    }

    /** The full stack trace, with every cause and suppressed exception. */
    static String trace(Throwable t) {
        StringWriter w = new StringWriter();
        t.printStackTrace(new PrintWriter(w));
        return w.toString();
    }

    /** Runs {@code work} with System.err (where slf4j-simple logs) and System.out captured. */
    static <T> Captured<T> captured(Callable<T> work) {
        PrintStream err = System.err;
        PrintStream out = System.out;
        ByteArrayOutputStream buffer = new ByteArrayOutputStream();
        PrintStream capture = new PrintStream(buffer, true, StandardCharsets.UTF_8);
        System.setErr(capture);
        System.setOut(capture);
        T result = null;
        Throwable thrown = null;
        try {
            result = work.call();
        } catch (Throwable t) {
            thrown = t;
        } finally {
            System.setErr(err);
            System.setOut(out);
        }
        return new Captured<>(result, thrown, buffer.toString(StandardCharsets.UTF_8));
    }

    record Captured<T>(T result, Throwable thrown, String output) {}

    @Test
    void anUnreachableDatabaseWithAPasswordInTheUrlLeaksItNowhere() {
        Captured<PgLease> create = captured(() -> PgLease.create(
                dataSource(UNREACHABLE),
                LeaseConfig.builder().holderLabel("secrets").build()));
        assertThat(create.thrown())
                .isInstanceOfSatisfying(
                        LeaseException.class,
                        e -> assertThat(e.reason()).isEqualTo(LeaseException.Reason.DATABASE_UNAVAILABLE));
        assertThat(create.thrown().getMessage()).contains("could not connect");
        assertThat(trace(create.thrown())).doesNotContain(SECRET);
        assertThat(create.output()).doesNotContain(SECRET);

        Captured<Integer> migrate = captured(() -> PgLease.migrate(dataSource(UNREACHABLE), "pglease"));
        assertThat(migrate.thrown())
                .isInstanceOfSatisfying(
                        LeaseException.class,
                        e -> assertThat(e.reason()).isEqualTo(LeaseException.Reason.DATABASE_UNAVAILABLE));
        assertThat(trace(migrate.thrown())).doesNotContain(SECRET);
        assertThat(migrate.output()).doesNotContain(SECRET);

        Captured<Object> pool = captured(() -> Databases.pool(UNREACHABLE, 2, "secrets"));
        assertThat(pool.thrown())
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("can not connect to jdbc:postgresql://127.0.0.1:1/app?user=app&password=***"
                        + "&sslmode=verify-full&sslrootcert=/etc/ssl/db-root.crt");
        assertThat(pool.thrown().getMessage()).doesNotContain(SECRET);
        assertThat(pool.output()).doesNotContain(SECRET);
    }

    @Test
    void aWrongPasswordIsNotEchoed() throws Exception {
        String user = Users.create("t" + ProcessHandle.current().pid() + "_pw_" + (System.nanoTime() % 100000));
        String url = Users.url(user).replaceAll("password=[^&]*", "password=" + SECRET);
        Captured<PgLease> create = captured(() -> PgLease.create(
                dataSource(url), LeaseConfig.builder().holderLabel("secrets").build()));
        // trust authentication (the embedded server) lets the user in: then it lacks grants; password
        // authentication refuses it. Either way the password appears nowhere.
        assertThat(create.thrown()).isInstanceOf(LeaseException.class);
        assertThat(trace(create.thrown())).doesNotContain(SECRET);
        assertThat(create.output()).doesNotContain(SECRET);
    }

    @Test
    void databaseErrorsWhileRunningAreLoggedWithoutPasswords() throws Exception {
        String schema = TestDatabase.freshSchema();
        String user =
                Users.create(schema + "_app", PgLease.Roles.defaultsFor(schema).candidate());
        // A data source that answers until the test pulls the plug, then fails the way a driver would if it ever
        // quoted its URL in an error.
        PGSimpleDataSource real = (PGSimpleDataSource) Users.as(user);
        boolean[] unplugged = {false};
        javax.sql.DataSource flaky = new FailingDataSource(
                real,
                unplugged,
                "FATAL: connection to jdbc:postgresql://db.internal:5432/app?user=app&password=" + SECRET
                        + " failed; PGPASSWORD=" + SECRET);
        LeaseConfig config = LeaseConfig.builder()
                .schema(schema)
                .holderLabel("logs")
                .leaseDuration(Duration.ofMillis(1500))
                .renewDeadline(Duration.ofMillis(1000))
                .retryPeriod(Duration.ofMillis(200))
                .build();
        Captured<String> run = captured(() -> {
            try (PgLease pglease = PgLease.create(flaky, config);
                    Elector elector = pglease.elector("logs-" + System.nanoTime(), HostileInputTest.QUIET)) {
                elector.awaitLeadership(Duration.ofSeconds(10)).orElseThrow();
                synchronized (unplugged) {
                    unplugged[0] = true;
                }
                // the lease connection is dropped on the next error; make sure one happens
                long end = System.nanoTime() + Duration.ofSeconds(5).toNanos();
                while (elector.isLeader() && System.nanoTime() < end) {
                    Thread.sleep(50);
                }
                assertThat(elector.isLeader())
                        .as("stepped down without its database")
                        .isFalse();
                Thread.sleep(400); // a few failed attempts, each logged
                return "done";
            }
        });
        assertThat(run.thrown()).isNull();
        assertThat(run.output()).as("the log shows the failures").contains("password=***");
        assertThat(run.output()).doesNotContain(SECRET);
    }

    @Test
    void tlsOptionsReachTheDriverUntouched() {
        // The embedded server has no TLS: sslmode=require must make the driver refuse it, which proves the option
        // went through the library and the pool as given.
        String url = TestDatabase.jdbcUrl() + (TestDatabase.jdbcUrl().contains("?") ? "&" : "?")
                + "sslmode=require&password=" + SECRET;
        org.junit.jupiter.api.Assumptions.assumeTrue(TestDatabase.isEmbedded(), "needs a server without TLS");
        Throwable viaLibrary = catchThrowable(() -> PgLease.create(
                dataSource(url), LeaseConfig.builder().holderLabel("tls").build()));
        assertThat(viaLibrary).isInstanceOf(LeaseException.class).hasMessageContaining("SSL");
        assertThat(trace(viaLibrary)).doesNotContain(SECRET);
        Throwable viaPool = catchThrowable(() -> Databases.pool(url, 2, "tls"));
        assertThat(viaPool)
                .hasMessageContaining("sslmode=require")
                .hasMessageContaining("SSL")
                .hasMessageNotContaining(SECRET);
        // and sslmode=disable / prefer connect to the same server
        for (String mode : new String[] {"disable", "prefer"}) {
            PGSimpleDataSource ds = dataSource(
                    TestDatabase.jdbcUrl() + (TestDatabase.jdbcUrl().contains("?") ? "&" : "?") + "sslmode=" + mode);
            try (Connection c = ds.getConnection()) {
                assertThat(c.isValid(2)).isTrue();
            } catch (SQLException e) {
                throw new AssertionError("sslmode=" + mode, e);
            }
        }
    }

    @Test
    void redactionCoversEveryPasswordFormAndKeepsTheRest() {
        String[][] cases = {
            {
                "jdbc:postgresql://db:5432/app?user=app&password=" + SECRET + "&sslmode=verify-full",
                "jdbc:postgresql://db:5432/app?user=app&password=***&sslmode=verify-full"
            },
            {"jdbc:postgresql://db/app?PASSWORD=" + SECRET, "jdbc:postgresql://db/app?PASSWORD=***"},
            {
                "jdbc:postgresql://db/app?sslmode=verify-full&sslrootcert=/r.crt&sslcert=/c.crt&sslkey=/k.pk8"
                        + "&sslpassword=" + SECRET,
                "jdbc:postgresql://db/app?sslmode=verify-full&sslrootcert=/r.crt&sslcert=/c.crt&sslkey=/k.pk8"
                        + "&sslpassword=***"
            },
            {
                "postgresql://app:" + SECRET + "@db.internal:5432/app?sslmode=require",
                "postgresql://app:***@db.internal:5432/app?sslmode=require"
            },
            {"postgres://app:p@ss@w0rd@db/app", "postgres://app:***@db/app"},
            {
                "host=db user=app password='it''s " + SECRET + "' sslmode=verify-full",
                "host=db user=app password=*** sslmode=verify-full"
            },
            {"password = \"" + SECRET + "\"; x", "password = ***; x"},
            {"PGPASSWORD=" + SECRET + " pglease node", "PGPASSWORD=*** pglease node"},
            {"Server=db;Pwd=" + SECRET + ";", "Server=db;Pwd=***;"},
            {"{\"user\":\"app\",\"password\":\"" + SECRET + "\"}", "{\"user\":\"app\",\"password\":\"***\"}"},
            {"no secrets here: sslmode=verify-full host=db", "no secrets here: sslmode=verify-full host=db"},
        };
        for (String[] c : cases) {
            assertThat(Secrets.redact(c[0])).as(c[0]).isEqualTo(c[1]);
        }
        assertThat(Secrets.redact(null)).isNull();
    }

    /** Delegates to a real data source until unplugged; then every connection fails with {@code message}. */
    static final class FailingDataSource extends PGSimpleDataSource {
        private final PGSimpleDataSource real;
        private final boolean[] unplugged;
        private final String message;

        FailingDataSource(PGSimpleDataSource real, boolean[] unplugged, String message) {
            this.real = real;
            this.unplugged = unplugged;
            this.message = message;
        }

        private void check() throws SQLException {
            synchronized (unplugged) {
                if (unplugged[0]) {
                    throw new SQLException(message, "08001");
                }
            }
        }

        @Override
        public Connection getConnection() throws SQLException {
            check();
            Connection c = real.getConnection();
            return (Connection) java.lang.reflect.Proxy.newProxyInstance(
                    Connection.class.getClassLoader(), new Class<?>[] {Connection.class}, (proxy, method, args) -> {
                        if (!method.getName().equals("close")
                                && !method.getName().equals("isClosed")) {
                            check();
                        }
                        try {
                            return method.invoke(c, args);
                        } catch (java.lang.reflect.InvocationTargetException e) {
                            throw e.getCause();
                        }
                    });
        }

        @Override
        public Connection getConnection(String user, String password) throws SQLException {
            return getConnection();
        }
    }
}
