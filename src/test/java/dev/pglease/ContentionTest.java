package dev.pglease;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.ConcurrentLinkedQueue;
import javax.sql.DataSource;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Many candidates, each its own PgLease with its own DataSource, fight over one lease while the leader is
 * repeatedly closed or abandoned. From every grant's validity interval (granted → deadline or revocation, on the
 * one monotonic clock all candidates share in this JVM) the test checks that at most one candidate believed it led
 * at any instant, that tokens strictly increase across holders, and that renewals never change a token.
 */
class ContentionTest {

    private static String schema;

    @BeforeAll
    static void migrate() {
        schema = TestDatabase.freshSchema();
    }

    @Test
    void atMostOneLeaderAtEveryInstantAndTokensOnlyGrow() throws Exception {
        String lease = "contended-" + System.nanoTime();
        LeaseConfig config = LeaseConfig.builder().schema(schema)
                .leaseDuration(Duration.ofMillis(600)).renewDeadline(Duration.ofMillis(400))
                .retryPeriod(Duration.ofMillis(100)).build();
        ConcurrentLinkedQueue<Leadership> grants = new ConcurrentLinkedQueue<>();
        LeaderListener record = new LeaderListener() {
            @Override
            public void onElected(Leadership l) {
                grants.add(l);
            }

            @Override
            public void onRevoked(Leadership l) {
            }
        };
        List<PgLease> nodes = new ArrayList<>();
        List<Elector> electors = new ArrayList<>();
        SplittableRandom random = new SplittableRandom(20261126);
        try {
            for (int i = 0; i < 8; i++) {
                DataSource ds = TestDatabase.dataSource();
                PgLease node = PgLease.create(ds, config.toBuilder().holderLabel("c" + i).build());
                nodes.add(node);
                electors.add(node.elector(lease, record));
            }
            long end = System.nanoTime() + Duration.ofSeconds(12).toNanos();
            int round = 0;
            while (System.nanoTime() < end) {
                Thread.sleep(300 + random.nextInt(300));
                int leader = -1;
                for (int i = 0; i < electors.size(); i++) {
                    if (electors.get(i).isLeader()) {
                        leader = i;
                    }
                }
                if (leader < 0) {
                    continue;
                }
                round++;
                if (round % 3 == 0) {
                    // abandon: the process "dies" without releasing; a standby must wait for expiry
                    nodes.get(leader).close();
                } else {
                    electors.get(leader).close();
                }
                nodes.set(leader, PgLease.create(TestDatabase.dataSource(), config.toBuilder().holderLabel("r" + round).build()));
                electors.set(leader, nodes.get(leader).elector(lease, record));
            }
            assertThat(round).as("leadership changed hands many times").isGreaterThanOrEqualTo(10);
        } finally {
            nodes.forEach(PgLease::close);
        }

        List<Leadership> byGrant = new ArrayList<>(grants);
        byGrant.sort(Comparator.comparingLong(Leadership::grantedAt));
        assertThat(byGrant).hasSizeGreaterThanOrEqualTo(10);
        for (int i = 1; i < byGrant.size(); i++) {
            Leadership previous = byGrant.get(i - 1);
            Leadership next = byGrant.get(i);
            assertThat(next.token()).as("token of grant %d", i).isGreaterThan(previous.token());
            assertThat(next.grantedAt() - previous.validUntil())
                    .as("grant %d (token %d) starts after grant %d (token %d) stopped being valid", i, next.token(),
                            i - 1, previous.token())
                    .isGreaterThanOrEqualTo(0);
            assertThat(next.holder()).isNotEqualTo(previous.holder());
        }
        assertThat(byGrant.stream().map(Leadership::holder).distinct().count()).isEqualTo(byGrant.size());
    }
}
