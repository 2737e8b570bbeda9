package dev.pglease.spring;

import dev.pglease.Elector;
import dev.pglease.PgLease;
import dev.pglease.health.LeaseHealth;
import dev.pglease.internal.sql.OperatorStatements;
import dev.pglease.internal.sql.SqlErrors;
import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;
import java.sql.Connection;
import java.sql.SQLException;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Supplier;
import javax.sql.DataSource;
import org.springframework.boot.actuate.endpoint.annotation.ReadOperation;
import org.springframework.boot.actuate.endpoint.annotation.WriteOperation;
import org.springframework.boot.actuate.endpoint.web.WebEndpointResponse;
import org.springframework.boot.actuate.endpoint.web.annotation.WebEndpoint;

/**
 * Actuator endpoint {@code leases} ({@code GET /actuator/leases}): this instance's leases, each with its role
 * (leader or standby), fencing token and remaining validity while it leads, and the leader the database last
 * reported while it stands by.
 *
 * <p>Operator actions, off by default ({@code pglease.actuator.operations-enabled=true} turns them on), as
 * {@code POST /actuator/leases} with a JSON body:
 * <ul>
 *   <li>{@code {"action": "release"}}: this instance gives up its own lease (leader work in flight drains first) so
 *       a standby takes over at once, and campaigns again after one retry period; the application's login (a
 *       member of the candidate role) suffices;</li>
 *   <li>{@code {"action": "handoff", "to": "node2/"}} ({@code to} optional): the lease, whoever holds it, goes to
 *       another candidate (one whose holder id starts with {@code to}) through the schema's {@code handoff}
 *       function, which only the operator role may call: it runs as the login in
 *       {@code pglease.actuator.operator.username}/{@code password}, and is refused, naming the role and those
 *       properties, when none is configured.</li>
 * </ul>
 * A refused action answers 403 (disabled, or no operator login) or 400 (unknown action) with an {@code error}
 * naming what to set. Expose the endpoint like any other
 * ({@code management.endpoints.web.exposure.include=health,leases}) and secure its write operation.
 */
@WebEndpoint(id = "leases")
public class LeasesEndpoint {

    /** Marks an operation parameter the request may leave out (Spring reads any annotation of this name). */
    @Retention(RetentionPolicy.RUNTIME)
    @Target(ElementType.PARAMETER)
    @interface Nullable {}

    private static final int FORBIDDEN = 403;
    private final LeaderElection election;
    private final PgLease pglease;
    private final boolean operationsEnabled;
    private final String operatorRole;
    private final Supplier<DataSource> operatorLogin;

    /** Without handoff (no operator login). */
    public LeasesEndpoint(LeaderElection election, PgLease pglease, boolean operationsEnabled) {
        this(
                election,
                pglease,
                operationsEnabled,
                PgLease.Roles.defaultsFor(pglease.config().schema()).operator(),
                null);
    }

    /**
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
        this.election = election;
        this.pglease = pglease;
        this.operationsEnabled = operationsEnabled;
        this.operatorRole = operatorRole;
        this.operatorLogin = operatorLogin;
    }

    /** This instance's leases. */
    @ReadOperation
    public Map<String, Object> leases() {
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
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("holder", pglease.holderId());
        body.put("leases", List.of(lease));
        body.put("operationsEnabled", operationsEnabled);
        body.put("handoffEnabled", operationsEnabled && operatorLogin != null);
        return body;
    }

    /**
     * Operator action {@code release} or {@code handoff} (see the class description).
     *
     * @param action {@code release} or {@code handoff}
     * @param to     for {@code handoff}: the prefix of the holder id that may take the lease (any other candidate
     *               when absent)
     */
    @WriteOperation
    public WebEndpointResponse<Map<String, Object>> operate(String action, @Nullable String to)
            throws InterruptedException {
        if (!operationsEnabled) {
            return refused(
                    FORBIDDEN,
                    "lease operations are disabled: set " + "pglease.actuator.operations-enabled=true to allow them");
        }
        if ("release".equals(action)) {
            return new WebEndpointResponse<>(release());
        }
        if ("handoff".equals(action)) {
            if (operatorLogin == null) {
                return refused(
                        FORBIDDEN,
                        "handoff calls " + pglease.config().schema()
                                + ".handoff, which only the role " + operatorRole
                                + " may execute, and the application's "
                                + "login is a candidate: set pglease.actuator.operator.username and "
                                + "pglease.actuator.operator.password to a login that is a member of " + operatorRole
                                + " (or use `pglease handoff " + election.leaseName() + "` as the operator)");
            }
            return handoff(to);
        }
        return refused(
                WebEndpointResponse.STATUS_BAD_REQUEST,
                "unknown lease action '" + action + "': the actions are release and handoff");
    }

    private Map<String, Object> release() throws InterruptedException {
        boolean wasLeader = election.isLeader();
        Duration pause = pglease.config().retryPeriod();
        election.releaseAndRejoin(pause);
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("lease", election.leaseName());
        body.put("action", "release");
        body.put("released", wasLeader);
        body.put("campaignsAgainAfterMillis", pause.toMillis());
        return body;
    }

    /** One statement, as the operator login: the holder and token before, and the schema's handoff function. */
    private WebEndpointResponse<Map<String, Object>> handoff(String to) {
        String schema = pglease.config().schema();
        String name = election.leaseName();
        try (Connection c = operatorLogin.get().getConnection()) {
            Optional<OperatorStatements.Change> found =
                    new OperatorStatements(schema).handoff(c, name, to == null || to.isBlank() ? null : to);
            if (found.isEmpty()) {
                return refused(WebEndpointResponse.STATUS_NOT_FOUND, "no lease named " + name + " in schema " + schema);
            }
            OperatorStatements.Change change = found.get();
            Map<String, Object> body = new LinkedHashMap<>();
            body.put("lease", name);
            body.put("action", "handoff");
            body.put("previousHolder", change.previousHolder());
            body.put("previousToken", change.previousToken());
            body.put("handedOff", change.done());
            body.put("token", change.done() ? change.token() : change.previousToken());
            body.put("to", to);
            return new WebEndpointResponse<>(body);
        } catch (SQLException e) {
            if (SqlErrors.insufficientPrivilege(e)) {
                return refused(
                        FORBIDDEN,
                        "the login in pglease.actuator.operator."
                                + "username may not hand off: it must be a member of the role " + operatorRole + " ("
                                + e.getMessage() + ")");
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
