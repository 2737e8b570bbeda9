package dev.pglease;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.internal.election.Grant;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.stream.Collectors;
import javax.sql.DataSource;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * Many candidates, each its own PgLease with its own DataSource, fight over one lease while the leader is
 * repeatedly closed or abandoned. From every grant's validity interval (granted → deadline or revocation, on the
 * one monotonic clock all candidates share in this JVM) the test checks that at most one candidate believed it led
 * at any instant, that tokens strictly increase across holders and no token goes to two holders, and that renewals
 * never change a token (a leader that stepped down at its deadline may take the lease back, as the same holder).
 */
@Tag("core")
class ContentionTest {

    private static String schema;

    @BeforeAll
    static void migrate() {
        schema = TestDatabase.freshSchema();
    }

    @Test
    void atMostOneLeaderAtEveryInstantAndTokensOnlyGrow() throws Exception {
        String lease = "contended-" + System.nanoTime();
        LeaseConfig config = LeaseConfig.builder()
                .schema(schema)
                .leaseDuration(Duration.ofMillis(600))
                .renewDeadline(Duration.ofMillis(400))
                .retryPeriod(Duration.ofMillis(100))
                .build();
        ConcurrentLinkedQueue<Leadership> grants = new ConcurrentLinkedQueue<>();
        LeaderListener record = new LeaderListener() {
            @Override
            public void onElected(Leadership l) {
                grants.add(l);
            }

            @Override
            public void onRevoked(Leadership l) {}
        };
        List<PgLease> nodes = new ArrayList<>();
        List<Elector> electors = new ArrayList<>();
        SplittableRandom random = new SplittableRandom(20261126);
        try {
            for (int i = 0; i < 8; i++) {
                DataSource ds = TestDatabase.dataSource();
                PgLease node = PgLease.create(
                        ds, config.toBuilder().holderLabel("c" + i).build());
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
                nodes.set(
                        leader,
                        PgLease.create(
                                TestDatabase.dataSource(),
                                config.toBuilder().holderLabel("r" + round).build()));
                electors.set(leader, nodes.get(leader).elector(lease, record));
            }
            assertThat(round).as("leadership changed hands many times").isGreaterThanOrEqualTo(10);
        } finally {
            nodes.forEach(PgLease::close);
        }

        List<Leadership> byGrant = new ArrayList<>(grants);
        byGrant.sort(Comparator.comparingLong(l -> ((Grant) l).grantedAt()));
        assertThat(byGrant).hasSizeGreaterThanOrEqualTo(10);
        for (int i = 1; i < byGrant.size(); i++) {
            Leadership previous = byGrant.get(i - 1);
            Leadership next = byGrant.get(i);
            if (next.holder().equals(previous.holder())) {
                // a leader that stepped down at its deadline (a starved renewal) and took the lease back before
                // anyone else: the same token while the row still listed it, a higher one after it expired
                assertThat(next.token())
                        .as("token of grant %d, the same holder again", i)
                        .isGreaterThanOrEqualTo(previous.token());
            } else {
                assertThat(next.token())
                        .as("token of grant %d, a new holder", i)
                        .isGreaterThan(previous.token());
            }
            assertThat(((Grant) next).grantedAt() - ((Grant) previous).validUntil())
                    .as(
                            "grant %d (token %d) starts after grant %d (token %d) stopped being valid",
                            i, next.token(), i - 1, previous.token())
                    .isGreaterThanOrEqualTo(0);
        }
        Map<Long, Set<String>> holdersByToken = byGrant.stream()
                .collect(Collectors.groupingBy(
                        Leadership::token, Collectors.mapping(Leadership::holder, Collectors.toSet())));
        assertThat(holdersByToken)
                .as("holders of each token")
                .allSatisfy((token, holders) ->
                        assertThat(holders).as("holders of token %d", token).hasSize(1));
        assertThat(byGrant.stream().map(Leadership::holder).distinct().count())
                .as("distinct holders")
                .isGreaterThanOrEqualTo(10);
    }
}
