package dev.pglease;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/** Electors against a real PostgreSQL: election, graceful handover, callbacks, observers. */
@Tag("core")
class ElectorTest {

    private static String schema;

    @BeforeAll
    static void migrate() {
        schema = TestDatabase.freshSchema();
    }

    static LeaseConfig fast(String label) {
        return LeaseConfig.builder()
                .schema(schema)
                .holderLabel(label)
                .leaseDuration(Duration.ofMillis(1500))
                .renewDeadline(Duration.ofMillis(1000))
                .retryPeriod(Duration.ofMillis(250))
                .build();
    }

    /** Collects callbacks as strings. */
    static final class Recorder implements LeaderListener {
        final BlockingQueue<String> events = new LinkedBlockingQueue<>();

        @Override
        public void onElected(Leadership l) {
            events.add("elected " + l.token());
        }

        @Override
        public void onRevoked(Leadership l) {
            events.add("revoked " + l.token() + " valid=" + l.isValid());
        }

        String next() throws InterruptedException {
            String e = events.poll(10, TimeUnit.SECONDS);
            assertThat(e).as("a callback within 10 s").isNotNull();
            return e;
        }
    }

    @Test
    void aSingleCandidateIsElectedAndObserversSeeIt() throws Exception {
        String lease = "single-" + System.nanoTime();
        Recorder recorder = new Recorder();
        try (PgLease pglease = PgLease.create(TestDatabase.dataSource(), fast("solo"));
                Elector elector = pglease.elector(lease, recorder)) {
            Leadership l = elector.awaitLeadership(Duration.ofSeconds(10)).orElseThrow();
            assertThat(recorder.next()).isEqualTo("elected " + l.token());
            assertThat(l.holder())
                    .isEqualTo(pglease.holderId())
                    .startsWith("solo/" + ProcessHandle.current().pid() + "/");
            assertThat(pglease.leader(lease)).get().satisfies(info -> {
                assertThat(info.holder()).isEqualTo(pglease.holderId());
                assertThat(info.token()).isEqualTo(l.token());
            });
            Thread.sleep(800);
            assertThat(elector.isLeader()).as("still leading after renewals").isTrue();
            assertThat(elector.leadership()).get().extracting(Leadership::token).isEqualTo(l.token());
        }
        assertThat(recorder.next()).isEqualTo("revoked 1 valid=false");
    }

    @Test
    void closingTheLeaderHandsTheLeaseToAStandbyWithoutWaitingForExpiry() throws Exception {
        String lease = "handover-" + System.nanoTime();
        LeaseConfig slow = LeaseConfig.builder()
                .schema(schema)
                .leaseDuration(Duration.ofSeconds(30))
                .renewDeadline(Duration.ofSeconds(20))
                .retryPeriod(Duration.ofSeconds(5))
                .build();
        try (PgLease a = PgLease.create(TestDatabase.dataSource(), slow);
                PgLease b = PgLease.create(TestDatabase.dataSource(), slow)) {
            Elector ea = a.elector(lease, new Recorder());
            Leadership first = ea.awaitLeadership(Duration.ofSeconds(10)).orElseThrow();
            Elector eb = b.elector(lease, new Recorder());
            Thread.sleep(300);
            assertThat(eb.isLeader()).isFalse();
            long start = System.nanoTime();
            ea.close();
            assertThat(first.isValid())
                    .as("the old grant ends before the release")
                    .isFalse();
            Leadership second = eb.awaitLeadership(Duration.ofSeconds(5)).orElseThrow();
            long handoverMillis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
            assertThat(second.token()).isGreaterThan(first.token());
            assertThat(handoverMillis)
                    .as("handover well before the 30 s lease expires")
                    .isLessThan(5_000);
        }
    }

    @Test
    void aSlowOrThrowingListenerDoesNotStallRenewals() throws Exception {
        String lease = "slow-listener-" + System.nanoTime();
        CountDownLatch release = new CountDownLatch(1);
        LeaderListener stuck = new LeaderListener() {
            @Override
            public void onElected(Leadership l) {
                try {
                    release.await(30, TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                throw new IllegalStateException("listener failure");
            }

            @Override
            public void onRevoked(Leadership l) {}
        };
        try (PgLease pglease = PgLease.create(TestDatabase.dataSource(), fast("slow"));
                Elector elector = pglease.elector(lease, stuck)) {
            Leadership l = elector.awaitLeadership(Duration.ofSeconds(10)).orElseThrow();
            Thread.sleep(2_500);
            assertThat(l.isValid())
                    .as("renewed past several deadlines while the listener is stuck")
                    .isTrue();
            release.countDown();
        }
    }

    @Test
    void oneElectorPerLeaseNamePerProcess() {
        String lease = "dup-" + System.nanoTime();
        try (PgLease pglease = PgLease.create(TestDatabase.dataSource(), fast("dup"));
                Elector ignored = pglease.elector(lease, new Recorder())) {
            assertThatThrownBy(() -> pglease.elector(lease, new Recorder()))
                    .isInstanceOf(IllegalStateException.class)
                    .hasMessageContaining(lease);
        }
    }

    @Test
    void manyLeasesShareOneProcessAndAllAreRenewed() throws Exception {
        List<Elector> electors = new ArrayList<>();
        try (PgLease pglease = PgLease.create(TestDatabase.dataSource(), fast("many"))) {
            for (int i = 0; i < 200; i++) {
                electors.add(pglease.elector("shard-" + i + "-" + System.nanoTime(), new Recorder()));
            }
            for (Elector e : electors) {
                assertThat(e.awaitLeadership(Duration.ofSeconds(20))).isPresent();
            }
            Thread.sleep(2_000);
            assertThat(electors).allMatch(Elector::isLeader);
        }
        assertThat(electors).noneMatch(Elector::isLeader);
    }

    @Test
    void observersWithoutAnElectorSeeNobodyWhenTheLeaseIsFree() {
        try (PgLease pglease = PgLease.create(TestDatabase.dataSource(), fast("observer"))) {
            assertThat(pglease.leader("nobody-" + System.nanoTime())).isEqualTo(Optional.empty());
        }
    }
}
