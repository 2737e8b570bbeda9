package dev.pglease.spring;

import dev.pglease.Elector;
import dev.pglease.LeaderListener;
import dev.pglease.Leadership;
import dev.pglease.LeaseConfig;
import dev.pglease.LeaseLock;
import dev.pglease.PgLease;
import java.time.Duration;
import org.postgresql.ds.PGSimpleDataSource;

/**
 * A small program using the core library (migrate, elect, fenced write, single-shot lock), run by
 * {@link OptionalDependenciesTest} in a JVM whose class path holds none of the optional integrations.
 * Arguments: JDBC URL, schema. Prints {@code OK token=N} and exits 0 on success.
 */
public final class CoreOnlyProgram {

    static final String[] ABSENT = {
        "io.micrometer.core.instrument.MeterRegistry",
        "net.javacrumbs.shedlock.core.LockProvider",
        "org.springframework.context.ApplicationContext",
        "org.springframework.boot.autoconfigure.AutoConfiguration",
        "org.springframework.boot.health.contributor.HealthIndicator",
    };

    private CoreOnlyProgram() {}

    public static void main(String[] args) throws Exception {
        for (String name : ABSENT) {
            try {
                Class.forName(name);
                System.out.println("PRESENT " + name);
                System.exit(3);
            } catch (ClassNotFoundException expected) {
                // the optional dependency is not on the class path, as intended
            }
        }
        PGSimpleDataSource dataSource = new PGSimpleDataSource();
        dataSource.setURL(args[0]);
        String schema = args[1];
        PgLease.migrate(dataSource, schema);
        LeaderListener quiet = new LeaderListener() {
            @Override
            public void onElected(Leadership leadership) {}

            @Override
            public void onRevoked(Leadership leadership) {}
        };
        try (PgLease pglease = PgLease.create(
                        dataSource, LeaseConfig.builder().schema(schema).build());
                Elector elector = pglease.elector("core-only", quiet)) {
            Leadership leadership =
                    elector.awaitLeadership(Duration.ofSeconds(20)).orElseThrow();
            int one = pglease.inFencedTransaction(leadership, c -> {
                try (var s = c.createStatement();
                        var rs = s.executeQuery("SELECT 1")) {
                    rs.next();
                    return rs.getInt(1);
                }
            });
            try (LeaseLock lock =
                    pglease.tryLock("core-only-lock", Duration.ofSeconds(10)).orElseThrow()) {
                if (!lock.extend(Duration.ofSeconds(20)) || one != 1) {
                    System.exit(4);
                }
            }
            System.out.println("OK token=" + leadership.token());
        }
    }
}
