package dev.pglease.spring;

import dev.pglease.LeaseConfig;
import dev.pglease.PgLease;
import java.time.Duration;
import org.springframework.boot.context.properties.ConfigurationProperties;

/**
 * Spring Boot properties under {@code pglease.*}. Timings accept Spring's duration syntax ({@code 500ms},
 * {@code 10s}) and are validated by {@link dev.pglease.LeaseConfig} (leaseDuration &gt; renewDeadline &gt;
 * 1.2 &times; retryPeriod).
 */
@ConfigurationProperties("pglease")
public class PgLeaseProperties {

    /** Whether to configure pglease at all. */
    private boolean enabled = true;
    /** Schema holding the pglease tables. */
    private String schema = "pglease";
    /**
     * Whether to migrate the pglease schema with Flyway at startup (own history table, beside the application's), as
     * the {@code pglease.migration.*} login when set, else as the application's own login (which then owns the
     * schema and bypasses its guards: for development only). Off by default: migrating is the DBA's act.
     */
    private boolean migrate = false;
    /** How long a grant lasts in the database without renewal. */
    private Duration leaseDuration = LeaseConfig.DEFAULT_LEASE_DURATION;
    /** How long a leader trusts its grant after the last renewal was sent. */
    private Duration renewDeadline = LeaseConfig.DEFAULT_RENEW_DEADLINE;
    /** How often leaders renew and standbys retry. */
    private Duration retryPeriod = LeaseConfig.DEFAULT_RETRY_PERIOD;
    /** Prefix of this process's holder id (defaults to the host name). */
    private String holderLabel;
    /**
     * Take over at once when the leader's database session ends (crash, kill -9, connection lost) instead of waiting
     * for its lease to expire. Off by default; see {@code LeaseConfig.Builder.fastFailover}.
     */
    private boolean fastFailover;

    private final Roles roles = new Roles();
    private final Migration migration = new Migration();
    private final Election election = new Election();
    private final Shedlock shedlock = new Shedlock();
    private final Actuator actuator = new Actuator();
    private final Group group = new Group();

    /**
     * A login of its own, besides the application's data source: a JDBC URL (default: the application data source's
     * URL), a user name (unset: no separate login) and a password.
     */
    public static class Login {
        /** JDBC URL for this login; defaults to the application data source's URL. */
        private String url;
        /** User name of this login; unset: no separate login. */
        private String username;
        /** Password of this login. */
        private String password;

        public String getUrl() {
            return url;
        }

        public void setUrl(String url) {
            this.url = url;
        }

        public String getUsername() {
            return username;
        }

        public void setUsername(String username) {
            this.username = username;
        }

        public String getPassword() {
            return password;
        }

        public void setPassword(String password) {
            this.password = password;
        }
    }

    /**
     * The login that migrates the schema when {@code pglease.migrate=true}: the schema owner, not the application.
     * Without a username the application's own login migrates (and then owns the schema).
     */
    public static class Migration extends Login {
        /** Whether the migration may create the candidate, observer and operator roles when they do not exist. */
        private boolean createRoles = false;

        public boolean isCreateRoles() {
            return createRoles;
        }

        public void setCreateRoles(boolean createRoles) {
            this.createRoles = createRoles;
        }
    }

    /** The Actuator endpoint {@code leases} ({@code /actuator/leases}), when spring-boot-actuator is present. */
    public static class Actuator {
        /**
         * Whether the endpoint offers the operator actions {@code release} (give up this instance's lease, campaign
         * again) and {@code handoff} (with an operator login).
         */
        private boolean operationsEnabled = false;

        private final Operator operator = new Operator();

        public Operator getOperator() {
            return operator;
        }

        public boolean isOperationsEnabled() {
            return operationsEnabled;
        }

        public void setOperationsEnabled(boolean operationsEnabled) {
            this.operationsEnabled = operationsEnabled;
        }
    }

    /**
     * The login the endpoint's {@code handoff} runs as: a member of the operator role ({@code <schema>_operator}),
     * since the application's own login is a candidate; without a username, handoffs are refused.
     */
    public static class Operator extends Login {}

    /**
     * Names of the roles the schema migration grants to (and creates when absent, if
     * {@code pglease.migration.create-roles=true}); each defaults to
     * {@code <schema>_candidate}, {@code <schema>_observer}, {@code <schema>_operator}.
     */
    public static class Roles {
        private String candidate;
        private String observer;
        private String operator;

        public String getCandidate() {
            return candidate;
        }

        public void setCandidate(String candidate) {
            this.candidate = candidate;
        }

        public String getObserver() {
            return observer;
        }

        public void setObserver(String observer) {
            this.observer = observer;
        }

        public String getOperator() {
            return operator;
        }

        public void setOperator(String operator) {
            this.operator = operator;
        }

        /** The role names to use in {@code schema}: each one set here, else its default for the schema. */
        PgLease.Roles resolve(String schema) {
            PgLease.Roles defaults = PgLease.Roles.defaultsFor(schema);
            return new PgLease.Roles(
                    candidate != null ? candidate : defaults.candidate(),
                    observer != null ? observer : defaults.observer(),
                    operator != null ? operator : defaults.operator());
        }
    }

    /** The application's own leader election: one lease per application. */
    public static class Election {
        /** Whether to campaign for the lease {@code pglease.election.lease-name}. */
        private boolean enabled = true;
        /** The lease to campaign for; defaults to {@code spring.application.name}, else "application". */
        private String leaseName;
        /** How long shutdown lets leader work in flight finish before releasing the lease; new work is refused. */
        private Duration drainTimeout = Duration.ofSeconds(10);

        public Duration getDrainTimeout() {
            return drainTimeout;
        }

        public void setDrainTimeout(Duration drainTimeout) {
            this.drainTimeout = drainTimeout;
        }

        public boolean isEnabled() {
            return enabled;
        }

        public void setEnabled(boolean enabled) {
            this.enabled = enabled;
        }

        public String getLeaseName() {
            return leaseName;
        }

        public void setLeaseName(String leaseName) {
            this.leaseName = leaseName;
        }
    }

    /**
     * The application's lease group: with a name, the application joins the group as one member (a
     * {@code GroupMembership} bean) and owns its share of the group's shards.
     */
    public static class Group {
        /** The lease group to join; unset: no group. Its shards are the leases {@code <name>/0} to {@code <name>/<shards-1>}. */
        private String name;
        /** The group's number of shards (1 to 100000), the same for every member; needed with a name. */
        private Integer shards;
        /** This member's weight (1 to 1000): its share of the shards is proportional to it. */
        private int weight = 1;
        /** This member's priority (-1000 to 1000): the shards left over go to higher priorities first. */
        private int priority = 0;
        /**
         * How long a cooperative move, and the shutdown, let the shard work in flight ({@code @ShardOwner} methods)
         * finish before the shard is released.
         */
        private Duration drainTimeout = Duration.ofSeconds(10);

        public String getName() {
            return name;
        }

        public void setName(String name) {
            this.name = name;
        }

        public Integer getShards() {
            return shards;
        }

        public void setShards(Integer shards) {
            this.shards = shards;
        }

        public int getWeight() {
            return weight;
        }

        public void setWeight(int weight) {
            this.weight = weight;
        }

        public int getPriority() {
            return priority;
        }

        public void setPriority(int priority) {
            this.priority = priority;
        }

        public Duration getDrainTimeout() {
            return drainTimeout;
        }

        public void setDrainTimeout(Duration drainTimeout) {
            this.drainTimeout = drainTimeout;
        }
    }

    /** The ShedLock provider, configured when shedlock-core is on the classpath and no LockProvider bean exists. */
    public static class Shedlock {
        /** Whether to define a pglease-backed ShedLock LockProvider. */
        private boolean enabled = true;
        /** Prefix added to ShedLock lock names to form lease names. */
        private String namePrefix = "";

        public boolean isEnabled() {
            return enabled;
        }

        public void setEnabled(boolean enabled) {
            this.enabled = enabled;
        }

        public String getNamePrefix() {
            return namePrefix;
        }

        public void setNamePrefix(String namePrefix) {
            this.namePrefix = namePrefix;
        }
    }

    public boolean isEnabled() {
        return enabled;
    }

    public void setEnabled(boolean enabled) {
        this.enabled = enabled;
    }

    public String getSchema() {
        return schema;
    }

    public void setSchema(String schema) {
        this.schema = schema;
    }

    public boolean isMigrate() {
        return migrate;
    }

    public void setMigrate(boolean migrate) {
        this.migrate = migrate;
    }

    public Duration getLeaseDuration() {
        return leaseDuration;
    }

    public void setLeaseDuration(Duration leaseDuration) {
        this.leaseDuration = leaseDuration;
    }

    public Duration getRenewDeadline() {
        return renewDeadline;
    }

    public void setRenewDeadline(Duration renewDeadline) {
        this.renewDeadline = renewDeadline;
    }

    public Duration getRetryPeriod() {
        return retryPeriod;
    }

    public void setRetryPeriod(Duration retryPeriod) {
        this.retryPeriod = retryPeriod;
    }

    public String getHolderLabel() {
        return holderLabel;
    }

    public void setHolderLabel(String holderLabel) {
        this.holderLabel = holderLabel;
    }

    public boolean isFastFailover() {
        return fastFailover;
    }

    public void setFastFailover(boolean fastFailover) {
        this.fastFailover = fastFailover;
    }

    public Roles getRoles() {
        return roles;
    }

    public Migration getMigration() {
        return migration;
    }

    public Actuator getActuator() {
        return actuator;
    }

    public Election getElection() {
        return election;
    }

    public Shedlock getShedlock() {
        return shedlock;
    }

    public Group getGroup() {
        return group;
    }
}
