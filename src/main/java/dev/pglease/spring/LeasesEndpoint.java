package dev.pglease.spring;

import dev.pglease.Elector;
import dev.pglease.PgLease;
import dev.pglease.health.LeaseHealth;
import dev.pglease.internal.sql.GroupStatements;
import dev.pglease.internal.sql.OperatorStatements;
import dev.pglease.internal.sql.SqlErrors;
import dev.pglease.internal.tool.GroupJson;
import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;
import java.sql.Connection;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Supplier;
import javax.sql.DataSource;
import org.springframework.boot.actuate.endpoint.annotation.ReadOperation;
import org.springframework.boot.actuate.endpoint.annotation.Selector;
import org.springframework.boot.actuate.endpoint.annotation.WriteOperation;
import org.springframework.boot.actuate.endpoint.web.WebEndpointResponse;
import org.springframework.boot.actuate.endpoint.web.annotation.WebEndpoint;

/**
 * Actuator endpoint {@code leases} ({@code GET /actuator/leases}): this instance's lease, with its role (leader or
 * standby), fencing token and remaining validity while it leads, and the leader the database last reported while it
 * stands by; and this instance's lease groups ({@link GroupMembership}), each with the shards this member owns and
 * the group's members as the database shows them. {@code GET /actuator/leases/{group}} shows one group of the
 * schema: its members and the owner of every shard. JSON keys are lower snake_case, like the command line's.
 *
 * <p>Operator actions, off by default ({@code pglease.actuator.operations-enabled=true} turns them on), as
 * {@code POST /actuator/leases} with a JSON body:
 * <ul>
 *   <li>{@code {"action": "release"}}: this instance gives up its own lease (leader work in flight drains first) so
 *       a standby takes over at once, and campaigns again after one retry period; the application's login (a
 *       member of the candidate role) suffices;</li>
 *   <li>{@code {"action": "handoff", "to": "node2/"}} ({@code to} optional): the lease, whoever holds it, goes to
 *       another candidate (one whose holder id starts with {@code to}) through the schema's {@code handoff}
 *       function;</li>
 *   <li>{@code {"action": "handoff", "group": "invoices", "shard": 17, "to": "node2/"}}: shard 17 of the group
 *       moves to another member (one whose id starts with {@code to}) through the schema's {@code group_handoff}
 *       function.</li>
 * </ul>
 * Only the operator role may call the handoff functions: they run as the login in
 * {@code pglease.actuator.operator.username}/{@code password}, and are refused, naming the role and those
 * properties, when none is configured. A refused action answers 403 (disabled, or no operator login), 400 (unknown
 * action, bad group or shard) or 404 (no such lease) with an {@code error} naming what to set. Expose the endpoint
 * like any other ({@code management.endpoints.web.exposure.include=health,leases}) and secure its write operation.
 */
@WebEndpoint(id = "leases")
public class LeasesEndpoint {

    /** Marks an operation parameter the request may leave out (Spring reads any annotation of this name). */
    @Retention(RetentionPolicy.RUNTIME)
    @Target(ElementType.PARAMETER)
    @interface Nullable {}

    private static final int FORBIDDEN = 403;
    private final LeaderElection election;
    private final Supplier<List<GroupMembership>> groups;
    private final PgLease pglease;
    private final DataSource dataSource;
    private final boolean operationsEnabled;
    private final String operatorRole;
    private final Supplier<DataSource> operatorLogin;

    /** Without handoff (no operator login), and without groups. */
    public LeasesEndpoint(LeaderElection election, PgLease pglease, boolean operationsEnabled) {
        this(
                election,
                pglease,
                operationsEnabled,
                PgLease.Roles.defaultsFor(pglease.config().schema()).operator(),
                null);
    }

    /**
     * Without groups.
     *
     * @param operatorRole  the schema's operator role, named in the refusal of a handoff
     * @param operatorLogin the login handoffs run as (a member of the operator role), or {@code null}: handoffs
     *                      are refused
     */
    public LeasesEndpoint(
            LeaderElection election,
            PgLease pglease,
            boolean operationsEnabled,
            String operatorRole,
            Supplier<DataSource> operatorLogin) {
        this(election, List::of, pglease, null, operationsEnabled, operatorRole, operatorLogin);
    }

    /**
     * @param election      the application's election, or {@code null} when it has none
     * @param groups        the application's lease groups, looked up at every request
     * @param dataSource    where the groups' members and shards are read (the application's login may read them),
     *                      or {@code null}: groups are shown without what the database says of them
     * @param operatorRole  the schema's operator role, named in the refusal of a handoff
     * @param operatorLogin the login handoffs run as (a member of the operator role), or {@code null}: handoffs
     *                      are refused
     */
    public LeasesEndpoint(
            LeaderElection election,
            Supplier<List<GroupMembership>> groups,
            PgLease pglease,
            DataSource dataSource,
            boolean operationsEnabled,
            String operatorRole,
            Supplier<DataSource> operatorLogin) {
        this.election = election;
        this.groups = groups;
        this.pglease = pglease;
        this.dataSource = dataSource;
        this.operationsEnabled = operationsEnabled;
        this.operatorRole = operatorRole;
        this.operatorLogin = operatorLogin;
    }

    /** This instance's lease and lease groups. */
    @ReadOperation
    public Map<String, Object> leases() {
        List<Map<String, Object>> leases = new ArrayList<>();
        if (election != null) {
            Map<String, Object> lease = new LinkedHashMap<>();
            lease.put("lease", election.leaseName());
            Elector elector = election.elector().orElse(null);
            if (elector == null) {
                lease.put("role", "stopped");
            } else {
                LeaseHealth health = LeaseHealth.of(elector);
                lease.putAll(PgLeaseHealthIndicator.details(health));
                lease.put(
                        "leader",
                        health.isLeader() ? pglease.holderId() : health.leader().orElse(null));
            }
            leases.add(lease);
        }
        List<Map<String, Object>> memberships = new ArrayList<>();
        for (GroupMembership g : groups.get()) {
            memberships.add(membership(g));
        }
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("holder", pglease.holderId());
        body.put("leases", leases);
        body.put("groups", memberships);
        body.put("operations_enabled", operationsEnabled);
        body.put("handoff_enabled", operationsEnabled && operatorLogin != null);
        return body;
    }

    /** One group of the schema: its members and the owner of every shard, as the database shows them now. */
    @ReadOperation
    public WebEndpointResponse<Map<String, Object>> group(@Selector String group) {
        if (dataSource == null) {
            return refused(WebEndpointResponse.STATUS_NOT_FOUND, "this endpoint reads no groups");
        }
        GroupStatements sql = new GroupStatements(pglease.config().schema());
        try (Connection c = dataSource.getConnection()) {
            List<GroupStatements.GroupSummary> found = sql.groups(c, group);
            if (found.isEmpty()) {
                return refused(
                        WebEndpointResponse.STATUS_NOT_FOUND,
                        "no lease group named " + group + " in schema "
                                + pglease.config().schema());
            }
            Map<String, Object> body = new LinkedHashMap<>(GroupJson.summary(found.get(0)));
            body.put("members", GroupJson.members(sql.members(c, group)));
            body.put("shard_owners", GroupJson.shards(sql.shardStatus(c, group)));
            return new WebEndpointResponse<>(body);
        } catch (SQLException e) {
            return refused(
                    WebEndpointResponse.STATUS_SERVICE_UNAVAILABLE,
                    "could not read group " + group + ": " + e.getMessage() + " (SQLState " + e.getSQLState() + ")");
        }
    }

    /** This member's view of {@code g}, and the group's members as the database shows them. */
    private Map<String, Object> membership(GroupMembership g) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("group", g.group());
        m.put("shards", g.shards());
        m.put("running", g.isRunning());
        m.put("weight", g.config().weight());
        m.put("priority", g.config().priority());
        List<Integer> owned = new ArrayList<>(g.ownedShards());
        m.put("owned_shards", owned);
        m.put("shards_owned", owned.size());
        if (dataSource != null) {
            try (Connection c = dataSource.getConnection()) {
                m.put(
                        "members",
                        GroupJson.members(new GroupStatements(pglease.config().schema()).members(c, g.group())));
            } catch (SQLException e) {
                m.put("members_error", e.getMessage() + " (SQLState " + e.getSQLState() + ")");
            }
        }
        return m;
    }

    /** Operator action {@code release} or {@code handoff} of the application's lease (see the class description). */
    public WebEndpointResponse<Map<String, Object>> operate(String action, String to) throws InterruptedException {
        return operate(action, to, null, null);
    }

    /**
     * Operator action {@code release} or {@code handoff} (see the class description).
     *
     * @param action {@code release} or {@code handoff}
     * @param to     for {@code handoff}: the prefix of the holder id that may take the lease or shard (any other
     *               candidate or member when absent)
     * @param group  for the {@code handoff} of a shard: the group
     * @param shard  for the {@code handoff} of a shard: the shard
     */
    @WriteOperation
    public WebEndpointResponse<Map<String, Object>> operate(
            String action, @Nullable String to, @Nullable String group, @Nullable Integer shard)
            throws InterruptedException {
        if (!operationsEnabled) {
            return refused(
                    FORBIDDEN,
                    "lease operations are disabled: set " + "pglease.actuator.operations-enabled=true to allow them");
        }
        if (!"release".equals(action) && !"handoff".equals(action)) {
            return refused(
                    WebEndpointResponse.STATUS_BAD_REQUEST,
                    "unknown lease action '" + action + "': the actions are release and handoff");
        }
        if ((group == null) != (shard == null) || (group != null && "release".equals(action))) {
            return refused(
                    WebEndpointResponse.STATUS_BAD_REQUEST,
                    "give both group and shard to hand off one shard of a lease group (release takes neither), got "
                            + "group " + group + " and shard " + shard);
        }
        if (group == null && election == null) {
            return refused(
                    WebEndpointResponse.STATUS_BAD_REQUEST,
                    "this application runs no election (pglease.election.enabled=false): " + action
                            + " a shard with group and shard");
        }
        if ("release".equals(action)) {
            return new WebEndpointResponse<>(release());
        }
        if (operatorLogin == null) {
            return refused(
                    FORBIDDEN,
                    "handoff calls " + pglease.config().schema()
                            + "." + (group == null ? "handoff" : "group_handoff") + ", which only the role "
                            + operatorRole + " may execute, and the application's login is a candidate: set "
                            + "pglease.actuator.operator.username and pglease.actuator.operator.password to a login "
                            + "that is a member of " + operatorRole + " (or use `pglease handoff "
                            + (group == null ? election.leaseName() : group + "/" + shard) + "` as the operator)");
        }
        return handoff(to == null || to.isBlank() ? null : to, group, shard);
    }

    private Map<String, Object> release() throws InterruptedException {
        boolean wasLeader = election.isLeader();
        Duration pause = pglease.config().retryPeriod();
        election.releaseAndRejoin(pause);
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("lease", election.leaseName());
        body.put("action", "release");
        body.put("released", wasLeader);
        body.put("campaigns_again_after_ms", pause.toMillis());
        return body;
    }

    /** One statement, as the operator login: the holder and token before, and the schema's handoff function. */
    private WebEndpointResponse<Map<String, Object>> handoff(String to, String group, Integer shard) {
        String schema = pglease.config().schema();
        String name = group == null ? election.leaseName() : group + "/" + shard;
        try (Connection c = operatorLogin.get().getConnection()) {
            OperatorStatements operator = new OperatorStatements(schema);
            Optional<OperatorStatements.Change> found =
                    group == null ? operator.handoff(c, name, to) : operator.groupHandoff(c, group, shard, to);
            if (found.isEmpty()) {
                return refused(WebEndpointResponse.STATUS_NOT_FOUND, "no lease named " + name + " in schema " + schema);
            }
            OperatorStatements.Change change = found.get();
            Map<String, Object> body = new LinkedHashMap<>();
            body.put("lease", name);
            if (group != null) {
                body.put("group", group);
                body.put("shard", shard);
            }
            body.put("action", "handoff");
            body.put("previous_holder", change.previousHolder());
            body.put("previous_token", change.previousToken());
            body.put("handed_off", change.done());
            body.put("token", change.done() ? change.token() : change.previousToken());
            body.put("to_prefix", to);
            return new WebEndpointResponse<>(body);
        } catch (SQLException e) {
            if (SqlErrors.insufficientPrivilege(e)) {
                return refused(
                        FORBIDDEN,
                        "the login in pglease.actuator.operator."
                                + "username may not hand off: it must be a member of the role " + operatorRole + " ("
                                + e.getMessage() + ")");
            }
            if ("22023".equals(e.getSQLState())) {
                return refused(
                        WebEndpointResponse.STATUS_BAD_REQUEST, "handoff of " + name + " refused: " + e.getMessage());
            }
            return refused(
                    WebEndpointResponse.STATUS_SERVICE_UNAVAILABLE,
                    "handoff of lease " + name + " failed: " + e.getMessage() + " (SQLState " + e.getSQLState() + ")");
        }
    }

    private static WebEndpointResponse<Map<String, Object>> refused(int status, String message) {
        return new WebEndpointResponse<>(Map.of("error", message), status);
    }
}
