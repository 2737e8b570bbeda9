package dev.pglease.internal.store;

import static dev.pglease.testkit.Lane.PGBOUNCER_TRANSACTION;
import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.TestDatabase;
import dev.pglease.internal.util.Timings;
import dev.pglease.testkit.NotInLane;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * A notification is a wake-up naming a lease, nothing more: the listener passes on only the name, survives any
 * payload anyone may send on the channel, and keeps listening.
 */
@Tag("core")
class NotificationListenerTest {

    @Test
    @NotInLane(
            value = PGBOUNCER_TRANSACTION,
            because = "LISTEN needs a session of its own, which a transaction pooler does not keep")
    void onlyTheLeaseNameIsPassedOnAndAnyPayloadIsSurvived() throws Exception {
        String channel = "pglease_test_" + ProcessHandle.current().pid() + ".leases";
        BlockingQueue<String> notices = new LinkedBlockingQueue<>();
        NotificationListener listener = new NotificationListener(
                TestDatabase.dataSource(),
                channel,
                new NotificationListener.Receiver() {
                    @Override
                    public void notice(String name) {
                        notices.add(name);
                    }

                    @Override
                    public void notificationsHealthy(boolean healthy) {
                        notices.add("healthy=" + healthy);
                    }
                },
                Timings.of(Duration.ofSeconds(10), Duration.ofSeconds(6), Duration.ofSeconds(2)));
        listener.start();
        try {
            assertThat(notices.poll(10, TimeUnit.SECONDS)).isEqualTo("healthy=true");
            List<String> payloads = List.of(
                    "null",
                    "{not json",
                    "[]",
                    "42",
                    "",
                    "{\"name\":null}",
                    "{\"name\":\"a\",\"holder\":\"x\u001b]0;title\u0007\",\"token\":4294967297,\"kind\":\"released\"}",
                    "{\"name\":\"b\",\"token\":2,\"kind\":\"lock\"}");
            try (Connection c = TestDatabase.dataSource().getConnection();
                    PreparedStatement ps = c.prepareStatement("SELECT pg_notify(?, ?)")) {
                for (String payload : payloads) {
                    ps.setString(1, channel);
                    ps.setString(2, payload);
                    ps.execute();
                }
            }
            assertThat(notices.poll(10, TimeUnit.SECONDS)).isEqualTo("a");
            assertThat(notices.poll(10, TimeUnit.SECONDS)).isEqualTo("b");
            assertThat(notices.poll(500, TimeUnit.MILLISECONDS))
                    .as("anything else told to the loop (the listener broke, or passed on a bad payload)")
                    .isNull();
        } finally {
            listener.close();
        }
    }
}
