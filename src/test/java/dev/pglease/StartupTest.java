package dev.pglease;

import static dev.pglease.testkit.Lane.PGBOUNCER_SESSION;
import static dev.pglease.testkit.Lane.PGBOUNCER_TRANSACTION;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.pglease.internal.sql.LeaseStatements;
import dev.pglease.internal.sql.SchemaStatements;
import dev.pglease.internal.store.JdbcLeaseStore;
import dev.pglease.internal.tool.EmbeddedPostgresServer;
import dev.pglease.testkit.NotInLane;
import java.net.ServerSocket;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.postgresql.ds.PGSimpleDataSource;

/** What happens at start: clear errors for a missing database, schema or durability, never a hang. */
@Tag("core")
class StartupTest {

    private static int closedPort() throws Exception {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    @Test
    void anUnreachableDatabaseIsAClearErrorNotAHang() throws Exception {
        PGSimpleDataSource ds = new PGSimpleDataSource();
        ds.setURL("jdbc:postgresql://127.0.0.1:" + closedPort() + "/app?user=svc&password=hunter2");
        ds.setConnectTimeout(3);
        long start = System.nanoTime();
        assertThatThrownBy(() -> PgLease.create(ds))
                .isInstanceOf(LeaseException.class)
                .hasMessageStartingWith("could not connect to the database")
                .hasMessageNotContaining("hunter2")
                .extracting(e -> ((LeaseException) e).reason())
                .isEqualTo(LeaseException.Reason.DATABASE_UNAVAILABLE);
        assertThat(TimeUnit.NANOSECONDS.toSeconds(System.nanoTime() - start)).isLessThan(10);
    }

    @Test
    void aMissingSchemaSaysHowToMigrate() {
        assertThatThrownBy(() -> PgLease.create(
                        TestDatabase.dataSource(),
                        LeaseConfig.builder().schema("never_migrated").build()))
                .isInstanceOf(LeaseException.class)
                .hasMessageContaining("schema never_migrated has no pglease tables")
                .hasMessageContaining("PgLease.migrate")
                .extracting(e -> ((LeaseException) e).reason())
                .isEqualTo(LeaseException.Reason.SCHEMA_MISSING);
    }

    @Test
    void aSchemaWithoutSchemaVersionIsRefusedAsOlderSayingWhatToRun() {
        String schema = TestDatabase.freshSchema();
        TestDatabase.execute("DROP FUNCTION " + schema + ".schema_version()");
        assertThatThrownBy(() -> PgLease.create(
                        TestDatabase.dataSource(),
                        LeaseConfig.builder().schema(schema).build()))
                .isInstanceOfSatisfying(
                        LeaseException.class,
                        e -> assertThat(e.reason()).isEqualTo(LeaseException.Reason.SCHEMA_MISSING))
                .hasMessageContaining("older than version " + SchemaStatements.SCHEMA_VERSION)
                .hasMessageContaining("pglease migrate --schema " + schema);
    }

    @Test
    void aSchemaOfAnOlderVersionIsRefusedSayingWhatToRun() {
        String schema = schemaAtVersion(SchemaStatements.SCHEMA_VERSION - 1);
        assertThatThrownBy(() -> PgLease.create(
                        TestDatabase.dataSource(),
                        LeaseConfig.builder().schema(schema).build()))
                .isInstanceOfSatisfying(
                        LeaseException.class,
                        e -> assertThat(e.reason()).isEqualTo(LeaseException.Reason.SCHEMA_MISSING))
                .hasMessageContaining("at version " + (SchemaStatements.SCHEMA_VERSION - 1) + ", this pglease needs "
                        + SchemaStatements.SCHEMA_VERSION)
                .hasMessageContaining("PgLease.migrate(dataSource, \"" + schema + "\")");
    }

    @Test
    void aSchemaOfANewerVersionIsRefusedSayingWhichReleaseToRun() {
        String schema = schemaAtVersion(SchemaStatements.SCHEMA_VERSION + 1);
        assertThatThrownBy(() -> PgLease.create(
                        TestDatabase.dataSource(),
                        LeaseConfig.builder().schema(schema).build()))
                .isInstanceOfSatisfying(
                        LeaseException.class,
                        e -> assertThat(e.reason()).isEqualTo(LeaseException.Reason.SCHEMA_MISSING))
                .hasMessageContaining("version " + (SchemaStatements.SCHEMA_VERSION + 1) + ", newer than this pglease")
                .hasMessageContaining("run the pglease release that migrated it");
    }

    @Test
    void aSchemaAtTheVersionThisLibraryNeedsStarts() {
        String schema = TestDatabase.freshSchema();
        try (PgLease pglease = PgLease.create(
                TestDatabase.dataSource(), LeaseConfig.builder().schema(schema).build())) {
            assertThat(pglease.leader("nobody-yet")).isEmpty();
        }
    }

    /** A migrated schema whose schema_version() reports {@code version}. */
    private static String schemaAtVersion(int version) {
        String schema = TestDatabase.freshSchema();
        TestDatabase.execute("CREATE OR REPLACE FUNCTION " + schema + ".schema_version() RETURNS integer "
                + "LANGUAGE sql IMMUTABLE AS 'SELECT " + version + "'");
        return schema;
    }

    @Test
    void migrationIsIdempotentAndKeepsItsOwnHistoryTable() throws Exception {
        String schema = TestDatabase.freshSchema();
        assertThat(PgLease.migrate(TestDatabase.dataSource(), schema)).isZero();
        try (Connection c = TestDatabase.dataSource().getConnection();
                Statement s = c.createStatement();
                ResultSet rs =
                        s.executeQuery("SELECT count(*) FROM " + schema + ".pglease_schema_history WHERE success")) {
            rs.next();
            assertThat(rs.getInt(1)).isGreaterThanOrEqualTo(1);
        }
    }

    @Test
    @NotInLane(
            value = {PGBOUNCER_TRANSACTION, PGBOUNCER_SESSION},
            because = "sets session settings with the JDBC startup parameter options, which PgBouncer 1.18 "
                    + "refuses (FATAL: unsupported startup parameter: options)")
    void aSessionWithSynchronousCommitOffIsRaisedToOnForLeaseStatements() throws Exception {
        String schema = TestDatabase.freshSchema();
        LeaseStatements sql = new LeaseStatements(schema);
        JdbcLeaseStore store = new JdbcLeaseStore(
                TestDatabase.dataSource("options=-c%20synchronous_commit%3Doff"),
                sql,
                Duration.ofSeconds(5),
                Duration.ofSeconds(2),
                false);
        try {
            assertThat(store.acquire("durable", "me", Duration.ofSeconds(5)).granted())
                    .isTrue();
            assertThat(store.sessionSynchronousCommit()).isEqualTo("on");
        } finally {
            store.close();
        }
    }

    @Test
    void aServerWithFsyncOffIsRefusedUnlessExplicitlyAllowed() {
        try (EmbeddedPostgresServer unsafe = EmbeddedPostgresServer.start(Map.of("fsync", "off"))) {
            PgLease.migrate(unsafe.dataSource());
            assertThatThrownBy(() -> PgLease.create(unsafe.dataSource()))
                    .isInstanceOf(LeaseException.class)
                    .hasMessageContaining("fsync=off")
                    .extracting(e -> ((LeaseException) e).reason())
                    .isEqualTo(LeaseException.Reason.UNSAFE_DURABILITY);
            try (PgLease allowed = PgLease.create(
                    unsafe.dataSource(),
                    LeaseConfig.builder().allowUnsafeDurability(true).build())) {
                assertThat(allowed.holderId()).isNotBlank();
            }
        }
    }

    @Test
    @NotInLane(
            value = {PGBOUNCER_TRANSACTION, PGBOUNCER_SESSION},
            because = "sets session settings with the JDBC startup parameter options, which PgBouncer 1.18 "
                    + "refuses (FATAL: unsupported startup parameter: options)")
    void aNonUtcSessionTimeZoneChangesNothing() throws Exception {
        String schema = TestDatabase.freshSchema();
        LeaseConfig config = LeaseConfig.builder()
                .schema(schema)
                .leaseDuration(Duration.ofSeconds(20))
                .renewDeadline(Duration.ofSeconds(12))
                .retryPeriod(Duration.ofSeconds(2))
                .build();
        for (String zone : new String[] {"Pacific/Chatham", "America/St_Johns", "Asia/Kathmandu"}) {
            try (PgLease pglease = PgLease.create(TestDatabase.dataSource("options=-c%20TimeZone%3D" + zone), config);
                    Elector elector = pglease.elector("tz-" + zone, new LeaderListener() {
                        @Override
                        public void onElected(Leadership l) {}

                        @Override
                        public void onRevoked(Leadership l) {}
                    })) {
                Leadership l = elector.awaitLeadership(Duration.ofSeconds(10)).orElseThrow();
                LeaderInfo info = pglease.leader("tz-" + zone).orElseThrow();
                assertThat(info.remaining()).as(zone).isBetween(Duration.ofSeconds(15), Duration.ofSeconds(20));
                assertThat(info.token()).isEqualTo(l.token());
                int written = pglease.inFencedTransaction(l, c -> 1);
                assertThat(written).isEqualTo(1);
            }
        }
    }
}
