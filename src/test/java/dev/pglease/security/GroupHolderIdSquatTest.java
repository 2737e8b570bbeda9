package dev.pglease.security;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.GroupListener;
import dev.pglease.Leadership;
import dev.pglease.LeaseConfig;
import dev.pglease.LeaseGroup;
import dev.pglease.PgLease;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Proxy;
import java.sql.Connection;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicLong;
import javax.sql.DataSource;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A candidate login takes a free shard of a group under another member's holder id (holder ids are public: every
 * role reads them in {@code group_member_status}). The assignment counts the shard as that member's, so the member
 * campaigns for it; a refused acquire must cost what any refused acquire costs (a wait for the release notification
 * or the expiry), not a loop of statements.
 */
@Tag("security")
@Timeout(60)
class GroupHolderIdSquatTest {

    @Test
    void aShardTakenUnderAMembersHolderIdByAnotherLoginCostsThatMemberNoLoopOfStatements() throws Exception {
        HostileSchema h = HostileSchema.create();
        String group = "squat-" + System.nanoTime();
        AtomicLong statements = new AtomicLong();
        try (PgLease victim = PgLease.create(
                counting(h.as(h.candA), "(acquire|release)", statements),
                LeaseConfig.builder()
                        .schema(h.schema)
                        .holderLabel("victim")
                        .leaseDuration(Duration.ofSeconds(30))
                        .renewDeadline(Duration.ofSeconds(20))
                        .retryPeriod(Duration.ofMillis(300))
                        .build())) {
            // candidate B takes the free shard first, naming the victim's holder id as holder
            assertThat(HostileSchema.query(
                            h.candB,
                            "SELECT granted FROM " + h.schema + ".acquire('" + group + "/0', '" + victim.holderId()
                                    + "', 60000, 'shard')"))
                    .isEqualTo("t");
            try (LeaseGroup g = victim.group(group, 1, new GroupListener() {
                @Override
                public void onAssigned(int shard, Leadership leadership) {}

                @Override
                public void onRevoked(int shard, Leadership leadership) {}
            })) {
                Thread.sleep(500); // the join and the first read
                long before = statements.get();
                Thread.sleep(3000);
                long during = statements.get() - before;
                assertThat(during)
                        .as("acquire/release statements the victim member sent in 3 s (10 retry periods) for a shard"
                                + " another login holds under its holder id")
                        .isLessThanOrEqualTo(20);
            }
        }
    }

    /** A data source whose connections count the statements they prepare that call a function matching {@code fn}. */
    static DataSource counting(DataSource ds, String fn, AtomicLong count) {
        return (DataSource) Proxy.newProxyInstance(
                GroupHolderIdSquatTest.class.getClassLoader(), new Class<?>[] {DataSource.class}, (p, m, args) -> {
                    Object result = invoke(ds, m, args);
                    if (!(result instanceof Connection c)) {
                        return result;
                    }
                    return Proxy.newProxyInstance(
                            GroupHolderIdSquatTest.class.getClassLoader(),
                            new Class<?>[] {Connection.class},
                            (cp, cm, cargs) -> {
                                if ((cm.getName().equals("prepareStatement")
                                                || cm.getName().equals("prepareCall"))
                                        && String.valueOf(cargs[0]).matches("(?s).*\\." + fn + "\\(.*")) {
                                    count.incrementAndGet();
                                }
                                return invoke(c, cm, cargs);
                            });
                });
    }

    private static Object invoke(Object target, Method m, Object[] args) throws Throwable {
        try {
            return m.invoke(target, args);
        } catch (InvocationTargetException e) {
            throw e.getCause();
        }
    }
}
