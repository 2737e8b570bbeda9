package dev.pglease.shedlock;

import dev.pglease.FencingContext;
import dev.pglease.LeaseLock;
import dev.pglease.PgLease;
import java.sql.PreparedStatement;
import java.sql.SQLException;
import net.javacrumbs.shedlock.spring.annotation.SchedulerLock;
import org.springframework.scheduling.annotation.Scheduled;

/** The ShedLock task of docs/integrations.md; run by {@link ShedLockSnippetTest}. */
public class InvoiceJobs {

    private final PgLease pglease;

    public InvoiceJobs(PgLease pglease) {
        this.pglease = pglease;
    }

    // tag::shedlock-task[]
    @Scheduled(cron = "0 */5 * * * *")
    @SchedulerLock(name = "invoice-run", lockAtMostFor = "4m", lockAtLeastFor = "30s")
    public void sendInvoices() throws SQLException {
        LeaseLock lock = FencingContext.current(LeaseLock.class).orElseThrow();
        // Commits only while this run still holds the lock: a run that was paused past lockAtMostFor is refused.
        pglease.inFencedTransaction(lock, connection -> {
            try (PreparedStatement ps = connection.prepareStatement(
                    "UPDATE invoices SET sent_with_token = ? WHERE sent_with_token IS NULL")) {
                ps.setLong(1, lock.token());
                return ps.executeUpdate();
            }
        });
    }
    // end::shedlock-task[]
}
