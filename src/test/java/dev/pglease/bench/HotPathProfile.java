package dev.pglease.bench;

import dev.pglease.BenchAccess;
import dev.pglease.PgLease;
import java.lang.management.ManagementFactory;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.atomic.AtomicReference;
import javax.sql.DataSource;

/**
 * Hot-path profile of the lease connection: which statements the server holds prepared for it (and how often it
 * reused a generic plan), and how many bytes one call allocates in the calling thread
 * ({@code com.sun.management.ThreadMXBean#getThreadAllocatedBytes}).
 */
public final class HotPathProfile {

    private HotPathProfile() {}

    /** A data source that remembers the last connection it handed out. */
    private static DataSource capturing(DataSource ds, AtomicReference<Connection> last) {
        return (DataSource) Proxy.newProxyInstance(
                HotPathProfile.class.getClassLoader(), new Class<?>[] {DataSource.class}, (proxy, method, args) -> {
                    try {
                        Object r = method.invoke(ds, args);
                        if (r instanceof Connection c) {
                            last.set(c);
                        }
                        return r;
                    } catch (InvocationTargetException e) {
                        throw e.getCause();
                    }
                });
    }

    public static String run(BenchDatabase db, int calls, int bigBatch) throws SQLException {
        String schema =
                "prof" + ProcessHandle.current().pid() + "_" + Long.toString(System.nanoTime() % 1_000_000_000L, 36);
        PgLease.migrate(db.dataSource(), schema);
        db.execute("INSERT INTO " + schema + ".leases (name, holder, token, expires_at) SELECT 'p-' || i, 'prof', 1, "
                + "clock_timestamp() + interval '1 hour' FROM generate_series(0, " + (bigBatch - 1) + ") i");
        AtomicReference<Connection> conn = new AtomicReference<>();
        com.sun.management.ThreadMXBean mx = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        long self = Thread.currentThread().getId();
        StringBuilder md = new StringBuilder();
        List<String[]> alloc = new ArrayList<>();
        try (BenchAccess one = new BenchAccess(capturing(db.dataSource(), conn), schema, "prof");
                BenchAccess other = new BenchAccess(db.dataSource(), schema, "prof-standby");
                BenchAccess big = new BenchAccess(db.dataSource(), schema, "prof")) {
            one.hold("p-0", 1, Duration.ofHours(1));
            for (int i = 0; i < bigBatch; i++) {
                big.hold("p-" + i, 1, Duration.ofHours(1));
            }
            // warm up: JIT and the driver's statement cache
            for (int i = 0; i < calls; i++) {
                one.renewAll();
                one.acquire("p-0", Duration.ofHours(1));
                other.acquire("p-0", Duration.ofHours(1));
            }
            for (int i = 0; i < Math.max(3, calls / 100); i++) {
                big.renewAll();
            }
            alloc.add(measure("renew, 1 lease", 1, calls, mx, self, one::renewAll));
            alloc.add(measure(
                    "renew, " + String.format(Locale.ROOT, "%,d", bigBatch) + " leases in one statement",
                    bigBatch,
                    Math.max(3, calls / 100),
                    mx,
                    self,
                    big::renewAll));
            alloc.add(measure("acquire (denied: the standby's statement)", 1, calls, mx, self, () ->
                    (int) other.acquire("p-0", Duration.ofHours(1))));
            md.append("Statements the server holds prepared for the lease connection after ")
                    .append(calls)
                    .append(" renewals and acquires (`pg_prepared_statements` on that connection):\n\n")
                    .append("| statement | generic plans | custom plans |\n|---|---:|---:|\n");
            try (Statement s = conn.get().createStatement();
                    ResultSet rs = s.executeQuery("SELECT regexp_replace(statement, '\\s+', ' ', 'g'), generic_plans, "
                            + "custom_plans FROM pg_prepared_statements ORDER BY generic_plans + custom_plans DESC")) {
                while (rs.next()) {
                    String text = rs.getString(1).trim();
                    md.append("| `")
                            .append(text.length() > 70 ? text.substring(0, 70) + "…" : text)
                            .append("` | ")
                            .append(rs.getLong(2))
                            .append(" | ")
                            .append(rs.getLong(3))
                            .append(" |\n");
                }
            }
        }
        md.append("\nAllocation in the calling thread per call (driver included), after warm-up:\n\n")
                .append("| call | bytes per statement | bytes per lease |\n|---|---:|---:|\n");
        for (String[] r : alloc) {
            md.append("| ").append(String.join(" | ", r)).append(" |\n");
        }
        md.append(
                "\nThreads: one election thread per PgLease, plus one LISTEN thread, one deadline timer and four callback "
                        + "threads, all started with it; see the thread counts in the scale-through-the-library table.\n");
        return md.toString();
    }

    interface Call {
        int run() throws SQLException;
    }

    private static String[] measure(
            String what, int leases, int n, com.sun.management.ThreadMXBean mx, long self, Call call)
            throws SQLException {
        long before = mx.getThreadAllocatedBytes(self);
        for (int i = 0; i < n; i++) {
            call.run();
        }
        double perCall = (mx.getThreadAllocatedBytes(self) - before) / (double) n;
        return new String[] {
            what, String.format(Locale.ROOT, "%,.0f", perCall), String.format(Locale.ROOT, "%,.0f", perCall / leases)
        };
    }

    public static void main(String[] args) throws Exception {
        boolean full = args.length == 0 || !args[0].equals("smoke");
        try (BenchDatabase db = BenchDatabase.start()) {
            System.out.println(run(db, full ? 2000 : 20, full ? 10_000 : 100));
        }
    }
}
