package dev.pglease;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.fault.kit.TcpProxy;
import java.time.Duration;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.postgresql.ds.PGSimpleDataSource;

/**
 * A leader that stepped down at its renew deadline because the database was out of reach keeps trying to renew its
 * grant; when the database answers before the lease expires, it leads again with the same token: nobody else can have
 * held the lease, so there is nothing to give back and no reason for a new token.
 */
@Tag("core")
class StepDownResumeTest {

    @Test
    void aLeaderCutOffPastItsDeadlineLeadsAgainWithItsTokenWhenTheDatabaseAnswersBeforeTheLeaseExpires()
            throws Exception {
        String schema = TestDatabase.freshSchema();
        Matcher m = Pattern.compile("//([^:/]+):(\\d+)/").matcher(TestDatabase.jdbcUrl());
        assertThat(m.find()).as("host and port in %s", TestDatabase.jdbcUrl()).isTrue();
        BlockingQueue<String> events = new LinkedBlockingQueue<>();
        try (TcpProxy proxy = new TcpProxy(m.group(1), Integer.parseInt(m.group(2)))) {
            PGSimpleDataSource viaProxy = new PGSimpleDataSource();
            viaProxy.setURL(
                    TestDatabase.jdbcUrl().replaceFirst("//([^:/]+):(\\d+)/", "//127.0.0.1:" + proxy.port() + "/"));
            viaProxy.setConnectTimeout(2);
            viaProxy.setLoginTimeout(2);
            LeaseConfig config = LeaseConfig.builder()
                    .schema(schema)
                    .holderLabel("leader")
                    .leaseDuration(Duration.ofMillis(4000))
                    .renewDeadline(Duration.ofMillis(1000))
                    .retryPeriod(Duration.ofMillis(250))
                    .build();
            try (PgLease pg = PgLease.create(viaProxy, config);
                    Elector e = pg.elector("resume", new LeaderListener() {
                        @Override
                        public void onElected(Leadership l) {
                            events.add("elected " + l.token());
                        }

                        @Override
                        public void onRevoked(Leadership l) {
                            events.add("revoked " + l.token());
                        }
                    })) {
                String elected = events.poll(10, TimeUnit.SECONDS);
                assertThat(elected).startsWith("elected ");
                String token = elected.substring("elected ".length());

                proxy.cut();
                assertThat(events.poll(5, TimeUnit.SECONDS))
                        .as("stepped down at the deadline")
                        .isEqualTo("revoked " + token);
                Thread.sleep(500);
                proxy.restore();

                assertThat(events.poll(5, TimeUnit.SECONDS))
                        .as("led again once the database answered, with the grant it never lost")
                        .isEqualTo("elected " + token);
            }
        }
    }
}
