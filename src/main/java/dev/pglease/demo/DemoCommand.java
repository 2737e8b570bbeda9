package dev.pglease.demo;

import dev.pglease.internal.tool.DurationConverter;
import java.io.PrintWriter;
import java.time.Duration;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code pglease demo}: a real failover with fencing, end to end, in one command. */
@Command(
        name = "demo",
        mixinStandardHelpOptions = true,
        sortOptions = false,
        description = {
            "Run the failover demo (embedded PostgreSQL, three charger processes).",
            "A subscription service whose charger nodes (separate JVMs) compete for the lease \"payments\"; "
                    + "the leader charges due renewals through a simulated payment provider that checks the "
                    + "fencing token of every request. The demo freezes the leader (SIGSTOP) with a charge in "
                    + "flight, lets a standby take over, resumes the old leader so that its late request reaches "
                    + "the provider with a stale token (and is refused), kills the next leader (kill -9), and "
                    + "prints a summary: charges, duplicate charges (0), stale requests rejected, failover times.",
            "",
            "Without --jdbc-url it starts an embedded PostgreSQL: nothing to install but a JDK. There an owner "
                    + "login migrates the schema and makes the demo's tables, and the chargers log in with a "
                    + "candidate-only login. Every process it starts is stopped when it ends, also on Ctrl-C."
        },
        footer = {
            "",
            "Exit code: 0 when the run showed what it should (no duplicate charge, a stale "
                    + "request rejected, both failovers), 1 otherwise."
        })
public final class DemoCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Option(
            names = "--nodes",
            defaultValue = "3",
            paramLabel = "N",
            description = "Charger nodes to start, at least 2 (default: ${DEFAULT-VALUE}).")
    int nodes;

    @Option(
            names = "--lease-duration",
            defaultValue = "2s",
            converter = DurationConverter.class,
            paramLabel = "D",
            description = "Lease duration (default: ${DEFAULT-VALUE}).")
    Duration leaseDuration;

    @Option(
            names = "--renew-deadline",
            defaultValue = "1500ms",
            converter = DurationConverter.class,
            paramLabel = "D",
            description = "Renew deadline: a leader that could not renew for this long stops acting "
                    + "(default: ${DEFAULT-VALUE}).")
    Duration renewDeadline;

    @Option(
            names = "--retry-period",
            defaultValue = "300ms",
            converter = DurationConverter.class,
            paramLabel = "D",
            description = "Retry period of renewals and standby attempts (default: ${DEFAULT-VALUE}).")
    Duration retryPeriod;

    @Option(
            names = "--duration",
            defaultValue = "20s",
            converter = DurationConverter.class,
            paramLabel = "D",
            description = "Time spent watching the nodes work, split over the four phases; start-up and the "
                    + "failovers come on top (default: ${DEFAULT-VALUE}).")
    Duration duration;

    @Option(
            names = "--jdbc-url",
            paramLabel = "URL",
            description = "Use this PostgreSQL instead of an embedded one (give it a database of its own): the "
                    + "demo migrates --schema there, campaigns for --lease, and DROPS --demo-schema with everything "
                    + "in it and creates it again; it refuses a --demo-schema that an earlier run did not make.")
    String jdbcUrl;

    @Option(
            names = "--node-jdbc-url",
            paramLabel = "URL",
            description = "With --jdbc-url: the chargers' login, a member of the candidate role only (default: "
                    + "--jdbc-url's login, which the schema's guards do not restrict if it owns the schema).")
    String nodeJdbcUrl;

    @Option(
            names = "--schema",
            defaultValue = "pglease",
            paramLabel = "SCHEMA",
            description = "pglease schema (default: ${DEFAULT-VALUE}).")
    String schema;

    @Option(
            names = "--demo-schema",
            defaultValue = "pglease_demo",
            paramLabel = "SCHEMA",
            description = "Schema for the demo's subscription and provider tables, dropped and re-created on every "
                    + "run (default: ${DEFAULT-VALUE}).")
    String demoSchema;

    @Option(
            names = "--lease",
            defaultValue = "payments",
            paramLabel = "NAME",
            description = "Lease name (default: ${DEFAULT-VALUE}).")
    String lease;

    @Option(
            names = "--subscriptions",
            defaultValue = "40",
            paramLabel = "N",
            description = "Subscriptions in the table (default: ${DEFAULT-VALUE}).")
    int subscriptions;

    @Option(
            names = "--billing-cycle",
            defaultValue = "4s",
            converter = DurationConverter.class,
            paramLabel = "D",
            description = "How often each subscription renews: a month, compressed (default: ${DEFAULT-VALUE}).")
    Duration cycle;

    @Option(
            names = "--view",
            defaultValue = "auto",
            paramLabel = "MODE",
            description = "live (redrawn screen), lines (a log, for pipes and files) or auto: live on a terminal "
                    + "(default: ${DEFAULT-VALUE}).")
    String view;

    @Option(
            names = "--node-classpath",
            hidden = true,
            description = "Class path for the node JVMs (default: this JVM's).")
    String nodeClasspath;

    private DemoSummary summary;

    @Override
    public Integer call() throws Exception {
        CommandLine cl = spec.commandLine();
        if (nodes < 2) {
            throw new CommandLine.ParameterException(
                    cl, "--nodes must be at least 2 (one leader and a standby), got " + nodes);
        }
        if (subscriptions < 1) {
            throw new CommandLine.ParameterException(cl, "--subscriptions must be at least 1, got " + subscriptions);
        }
        if (leaseDuration.compareTo(renewDeadline) <= 0
                || renewDeadline.compareTo(retryPeriod.multipliedBy(6).dividedBy(5)) <= 0) {
            throw new CommandLine.ParameterException(
                    cl,
                    "lease timings must satisfy lease-duration > renew-deadline > " + "1.2 x retry-period, got "
                            + leaseDuration + " / " + renewDeadline + " / " + retryPeriod);
        }
        if (nodeJdbcUrl != null && jdbcUrl == null) {
            throw new CommandLine.ParameterException(
                    cl, "--node-jdbc-url goes with --jdbc-url (the embedded server makes its own logins)");
        }
        boolean live = switch (view) {
            case "live" -> true;
            case "lines" -> false;
            case "auto" ->
                System.console() != null && System.getenv("TERM") != null && !"dumb".equals(System.getenv("TERM"));
            default ->
                throw new CommandLine.ParameterException(cl, "--view must be live, lines or auto, got '" + view + "'");
        };
        if (System.getProperty("org.slf4j.simpleLogger.defaultLogLevel") == null) {
            System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn");
        }
        if (System.getProperty("org.slf4j.simpleLogger.log.com.zaxxer.hikari") == null) {
            // the pool's warnings about connections closed under it (Ctrl-C stops PostgreSQL too) are noise here
            System.setProperty("org.slf4j.simpleLogger.log.com.zaxxer.hikari", "error");
        }
        String classpath = nodeClasspath != null ? nodeClasspath : System.getProperty("java.class.path");
        Demo.Settings settings = new Demo.Settings(
                nodes,
                leaseDuration,
                renewDeadline,
                retryPeriod,
                duration,
                jdbcUrl,
                nodeJdbcUrl,
                schema,
                demoSchema,
                lease,
                subscriptions,
                cycle,
                live,
                classpath);
        PrintWriter out = cl.getOut();
        summary = new Demo(settings, out).run();
        return summary.ok() ? 0 : 1;
    }

    /** The summary of the last run through this command object (for tests and embedding). */
    public DemoSummary summary() {
        return summary;
    }
}
