package dev.pglease.security;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import dev.pglease.Elector;
import dev.pglease.LeaderListener;
import dev.pglease.Leadership;
import dev.pglease.LeaseConfig;
import dev.pglease.LeaseException;
import dev.pglease.PgLease;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.EnumSet;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * An operator's {@code force_release} or {@code handoff} stops the holder's same-database fenced writes the moment it
 * returns, long before the holder's next renewal would tell it (here 20 s away): the schema's fence refuses the old
 * token at once (SQLSTATE PL001), and a fenced transaction of the library with the old grant writes nothing.
 */
class OperatorActionsStopFencedWritesTest {

    private static HostileSchema h;
    private static String table;

    /** Renewals 20 s apart: the holder learns nothing from its own renewals during the test. */
    private static LeaseConfig config() {
        return LeaseConfig.builder()
                .schema(h.schema)
                .holderLabel("holder")
                .leaseDuration(Duration.ofSeconds(60))
                .renewDeadline(Duration.ofSeconds(50))
                .retryPeriod(Duration.ofSeconds(20))
                .build();
    }

    @BeforeAll
    static void schema() {
        h = HostileSchema.create();
        table = h.schema + "_work.writes";
        HostileSchema.superuser("CREATE SCHEMA " + h.schema + "_work");
        HostileSchema.superuser("CREATE TABLE " + table + " (token bigint NOT NULL)");
        HostileSchema.superuser("GRANT USAGE ON SCHEMA " + h.schema + "_work TO " + h.roles.candidate());
        HostileSchema.superuser("GRANT INSERT, SELECT ON " + table + " TO " + h.roles.candidate());
    }

    @Test
    void aForceReleaseRefusesTheHoldersNextFencedWriteAtOnce() throws Exception {
        refusedRightAfter("SELECT %s.force_release('%s')");
    }

    @Test
    void aHandoffRefusesTheHoldersNextFencedWriteAtOnce() throws Exception {
        refusedRightAfter("SELECT %s.handoff('%s')");
    }

    private static void refusedRightAfter(String operatorAction) throws Exception {
        String lease = "op-" + System.nanoTime();
        try (PgLease pglease = PgLease.create(h.as(h.candA), config());
                Elector elector = pglease.elector(lease, new LeaderListener() {
                    @Override
                    public void onElected(Leadership leadership) {}

                    @Override
                    public void onRevoked(Leadership leadership) {}
                })) {
            Leadership grant = elector.awaitLeadership(Duration.ofSeconds(10)).orElseThrow();
            assertThat(write(pglease, grant))
                    .as("a fenced write before the operator acts")
                    .isEqualTo(1);
            long before = count(grant.token());

            HostileSchema.run(h.operator, String.format(operatorAction, h.schema, lease));

            SQLException fence = catchThrowableOfType(
                    () -> {
                        try (Connection c = h.as(h.candA).getConnection();
                                Statement st = c.createStatement()) {
                            c.setAutoCommit(false);
                            st.execute("SELECT " + h.schema + ".fence('" + lease + "', " + grant.token() + ")");
                        }
                    },
                    SQLException.class);
            assertThat((Throwable) fence)
                    .as("the schema's fence with the old token, right after the operator")
                    .isNotNull();
            assertThat(fence.getSQLState()).isEqualTo("PL001");

            LeaseException refused = catchThrowableOfType(() -> write(pglease, grant), LeaseException.class);
            assertThat(refused)
                    .as("the library's fenced write with the old grant")
                    .isNotNull();
            assertThat(refused.reason())
                    .isIn(EnumSet.of(LeaseException.Reason.STALE_TOKEN, LeaseException.Reason.LEASE_LOST));
            assertThat(count(grant.token()))
                    .as("rows written with the old token")
                    .isEqualTo(before);
        }
    }

    private static int write(PgLease pglease, Leadership grant) throws SQLException {
        return pglease.inFencedTransaction(grant, c -> {
            try (PreparedStatement ps = c.prepareStatement("INSERT INTO " + table + " (token) VALUES (?)")) {
                ps.setLong(1, grant.token());
                return ps.executeUpdate();
            }
        });
    }

    private static long count(long token) throws SQLException {
        return Long.parseLong(HostileSchema.query(null, "SELECT count(*) FROM " + table + " WHERE token = " + token));
    }
}
