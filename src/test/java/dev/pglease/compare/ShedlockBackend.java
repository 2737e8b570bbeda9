package dev.pglease.compare;

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import java.time.Duration;
import java.time.Instant;
import java.util.Optional;
import net.javacrumbs.shedlock.core.LockConfiguration;
import net.javacrumbs.shedlock.core.SimpleLock;
import net.javacrumbs.shedlock.provider.jdbctemplate.JdbcTemplateLockProvider;
import org.springframework.jdbc.core.JdbcTemplate;

/**
 * ShedLock's JDBC provider used as a leader lock: every {@code retry-ms} a standby tries
 * {@code lock(lockAtMostFor = lease-ms, lockAtLeastFor = 0)}; the holder extends the lock by {@code lease-ms}
 * every {@code retry-ms} with {@link SimpleLock#extend} (ShedLock's keep-alive; its
 * {@code KeepAliveLockProvider} wrapper refuses lockAtMostFor below 30 s and gives the holder no signal when an
 * extension fails, so the candidate drives extend itself). The lock uses the database clock
 * ({@code usingDbTime}) and a per-process {@code locked_by} value (the default, the host name, is the same for
 * every process on one machine and would let one process extend another's lock). No token: ShedLock has none.
 */
final class ShedlockBackend implements Candidate.Backend {
    private final Candidate c;
    private final HikariDataSource ds;
    private final JdbcTemplateLockProvider provider;
    private volatile SimpleLock lock;
    private volatile boolean closing;

    ShedlockBackend(Candidate c) {
        this.c = c;
        HikariConfig hc = new HikariConfig();
        hc.setJdbcUrl(c.args.get("store"));
        hc.setMaximumPoolSize(2);
        hc.setMinimumIdle(1);
        hc.setConnectionTimeout(Math.max(250, c.retryMs));
        hc.setInitializationFailTimeout(-1);
        this.ds = new HikariDataSource(hc);
        this.provider = new JdbcTemplateLockProvider(JdbcTemplateLockProvider.Configuration.builder()
                .withJdbcTemplate(new JdbcTemplate(ds))
                .withTableName("shedlock")
                .usingDbTime()
                .withLockedByValue(c.holder)
                .build());
    }

    @Override
    public void run() {
        Duration atMost = Duration.ofMillis(c.leaseMs);
        while (!closing) {
            long next = System.currentTimeMillis() + c.retryMs;
            try {
                SimpleLock held = lock;
                if (held == null) {
                    Optional<SimpleLock> got =
                            provider.lock(new LockConfiguration(Instant.now(), c.lease, atMost, Duration.ZERO));
                    if (got.isPresent() && !closing) {
                        lock = got.get();
                        c.elected(null, () -> lock != null);
                    }
                } else {
                    Optional<SimpleLock> ext = held.extend(atMost, Duration.ZERO);
                    if (ext.isPresent()) {
                        lock = ext.get();
                    } else {
                        lock = null;
                        c.revoked("extend failed");
                    }
                }
            } catch (RuntimeException e) {
                // Database unreachable: ShedLock offers no local deadline; the holder keeps its belief and the
                // next extend decides (it fails once lock_until has passed).
                System.err.println("shedlock: " + e);
            }
            long wait = next - System.currentTimeMillis();
            if (wait > 0) {
                Candidate.sleep(wait);
            }
        }
    }

    @Override
    public void shutdown() {
        closing = true;
        SimpleLock held = lock;
        lock = null;
        if (held != null) {
            held.unlock();
        }
        ds.close();
    }
}
