package dev.pglease.compare;

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import dev.pglease.Elector;
import dev.pglease.LeaderListener;
import dev.pglease.Leadership;
import dev.pglease.LeaseConfig;
import dev.pglease.PgLease;
import java.time.Duration;
import javax.sql.DataSource;
import org.postgresql.ds.PGSimpleDataSource;

/**
 * pglease through its public API: one {@link PgLease} on a small pool, one {@link Elector}. Token: the lease
 * row's token. The candidate writes only while {@link Leadership#isValid()} (the local deadline, taken before the
 * renew was sent); the resource check itself is the same forward-only fence every token backend gets.
 */
final class PgleaseBackend implements Candidate.Backend {
    static final String SCHEMA = "pglease";
    private final Candidate c;
    private final HikariDataSource ds;
    private PgLease pglease;
    private Elector elector;

    private PgleaseBackend(Candidate c) {
        this.c = c;
        HikariConfig hc = new HikariConfig();
        hc.setJdbcUrl(c.args.get("store"));
        hc.setMaximumPoolSize(c.backendName.equals("pglease-fast") ? 3 : 2);
        hc.setMinimumIdle(1);
        hc.setConnectionTimeout(Math.max(250, c.retryMs));
        hc.setInitializationFailTimeout(-1);
        this.ds = new HikariDataSource(hc);
    }

    static Candidate.Backend create(Candidate c) {
        return new PgleaseBackend(c);
    }

    /** Creates the pglease schema on a store (the harness does this once, before candidates start). */
    static void migrate(String jdbcUrl) {
        PGSimpleDataSource ds = new PGSimpleDataSource();
        ds.setURL(jdbcUrl);
        PgLease.migrate((DataSource) ds, SCHEMA);
    }

    @Override
    public void run() throws Exception {
        LeaseConfig config = LeaseConfig.builder()
                .schema(SCHEMA)
                .leaseDuration(Duration.ofMillis(c.leaseMs))
                .renewDeadline(Duration.ofMillis(c.renewMs))
                .retryPeriod(Duration.ofMillis(c.retryMs))
                .holderLabel(c.holder)
                .fastFailover(c.backendName.equals("pglease-fast"))
                .build();
        while (pglease == null) {
            try {
                pglease = PgLease.create(ds, config);
            } catch (RuntimeException e) {
                System.err.println("pglease: " + e);
                Candidate.sleep(c.retryMs);
            }
        }
        elector = pglease.elector(c.lease, new LeaderListener() {
            @Override
            public void onElected(Leadership l) {
                c.elected(l.token(), l::isValid);
            }

            @Override
            public void onRevoked(Leadership l) {
                c.revoked(String.valueOf(l.revocationReason()));
            }
        });
        Thread.currentThread().join();
    }

    @Override
    public void shutdown() {
        if (elector != null) {
            elector.close();
        }
        if (pglease != null) {
            pglease.close();
        }
        ds.close();
    }
}
