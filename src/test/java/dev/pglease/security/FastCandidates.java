package dev.pglease.security;

import dev.pglease.GroupListener;
import dev.pglease.Leadership;
import dev.pglease.LeaseConfig;
import dev.pglease.PgLease;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * Candidates of a {@link HostileSchema} logged in as its candidate A with short timings (1 s / 600 ms / 200 ms), as
 * the lease-group tests run their members, and everything else a test opens beside them: closed together, the last
 * opened first.
 */
public final class FastCandidates implements AutoCloseable {

    /** The lease duration of every candidate. */
    public static final Duration LEASE = Duration.ofMillis(1000);

    /** A group listener that does nothing. */
    public static final GroupListener QUIET = new GroupListener() {
        @Override
        public void onAssigned(int shard, Leadership leadership) {}

        @Override
        public void onRevoked(int shard, Leadership leadership) {}
    };

    private final List<AutoCloseable> opened = new ArrayList<>();

    /** A new candidate in {@code h}'s schema, logged in as its candidate A, holder id starting with {@code label}. */
    public PgLease member(HostileSchema h, String label) {
        return add(PgLease.create(
                h.as(h.candA),
                LeaseConfig.builder()
                        .schema(h.schema)
                        .holderLabel(label)
                        .leaseDuration(LEASE)
                        .renewDeadline(Duration.ofMillis(600))
                        .retryPeriod(Duration.ofMillis(200))
                        .build()));
    }

    /** Closes {@code c} with the candidates. */
    public <T extends AutoCloseable> T add(T c) {
        opened.add(c);
        return c;
    }

    @Override
    public void close() throws Exception {
        for (int i = opened.size() - 1; i >= 0; i--) {
            opened.get(i).close();
        }
        opened.clear();
    }
}
