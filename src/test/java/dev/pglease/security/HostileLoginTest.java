package dev.pglease.security;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.TestDatabase;
import dev.pglease.testkit.Lane;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.Timeout;

/**
 * The hostile-login suite: candidate A holds two leases (one in plain mode, one in fast-failover mode) and keeps
 * renewing them, while each other login (candidate B, an observer, an operator, a login in no pglease role) tries
 * every way in. Everything it tries is discovered from the catalog at run time, so an object added to the schema is
 * attacked without a change here:
 * <ul>
 *   <li>every function of the schema the login may execute, called with arguments made from the live victim row
 *       (its name, holder and token, the next token, the first token of the next term, the largest bigint, ...),
 *       without an advisory lock and while holding, exclusive or shared, the advisory lock that each {@code *_key(text)}
 *       function of the schema names for the victim's lease;</li>
 *   <li>each call followed, in the same transaction, by direct INSERT/UPDATE/DELETE statements shaped like a grant,
 *       a renewal, a release, a handoff and a takeover (the victim's token, the next one, the next term's first
 *       one; the attacker as holder);</li>
 *   <li>every table and view of the schema with INSERT, UPDATE of each column, DELETE and TRUNCATE.</li>
 * </ul>
 * After each case of a login that may not write leases itself, candidate B tries the same protocol-shaped statements
 * (with and without each advisory lock), so that preparing a takeover for a candidate counts as an attack too.
 * After each case the victim's row names the victim with its token, its expiry was moved by no one but the victim,
 * no event of the victim's leases was made by the attacker's login, and at the end of each role's cases the victim
 * still leads, never revoked. The operator's own functions (those {@code function-acl.txt} grants the operator:
 * force release and handoff) are its job and are not counted as attacks by the operator.
 */
@Timeout(value = 180)
@Tag("security")
class HostileLoginTest {

    private static final long MAX = Long.MAX_VALUE;
    private static final long TERM = 1L << 32;

    private static HostileSchema h;
    private static final Map<Boolean, Victim> victims = new LinkedHashMap<>();
    /** A member of a lease group holding its shards: the group functions are called with its live values. */
    private static GroupVictim groupVictim;

    private static int generation;
    private static List<FunctionAcl.Function> functions;
    private static List<String> keyFunctions;
    private static Map<String, Set<String>> acl;

    @BeforeAll
    static void setUp() throws Exception {
        h = HostileSchema.create();
        functions = FunctionAcl.inCatalog(h.schema);
        keyFunctions = functions.stream()
                .filter(f -> f.signature().matches("[a-z0-9_]*_key\\(text\\)"))
                .map(FunctionAcl.Function::call)
                .toList();
        acl = FunctionAcl.documented();
        victims.put(false, Victim.start(h, "victim-plain", false));
        if (Lane.pooler() != Lane.PGBOUNCER_TRANSACTION) { // where pglease refuses fast failover (no server session)
            victims.put(true, Victim.start(h, "victim-ff", true));
        }
        groupVictim = GroupVictim.start(h, "victim-group");
    }

    @AfterAll
    static void tearDown() {
        victims.values().forEach(Victim::close);
        groupVictim.close();
    }

    @TestFactory
    Stream<DynamicTest> noLoginChangesTheVictimsLeaseThroughAnyFunctionOrTable() {
        List<DynamicTest> tests = new ArrayList<>();
        for (String login : h.attackers()) {
            String role = h.roleOf(login);
            for (FunctionAcl.Function f : functions) {
                if (role.equals("operator")
                        && acl.getOrDefault(f.signature(), Set.of()).contains("operator")) {
                    continue; // the operator's own actions (force release, handoff) are its job
                }
                tests.add(DynamicTest.dynamicTest(role + " calls " + f.signature(), () -> {
                    if (!executable(login, f.oid())) {
                        // not executable by this login: still called once, the refusal is the outcome
                        attackWith(login, f, true);
                    } else {
                        attackWith(login, f, false);
                    }
                }));
            }
            tests.add(DynamicTest.dynamicTest(role + " writes every table and view", () -> attackTables(login)));
            tests.add(DynamicTest.dynamicTest(role + ": the victims still lead, never revoked", () -> {
                for (Victim v : victims.values()) {
                    v.awaitRenewals(2);
                    v.assertIntact("every attack by " + role + " " + login);
                }
                groupVictim.awaitRenewal();
                assertThat(groupVictim.broken(login))
                        .as("the group victim after every attack by %s %s", role, login)
                        .isEmpty();
            }));
        }
        return tests.stream();
    }

    // ---- one function, all argument variants, all lock modes, both victims ----

    private static void attackWith(String login, FunctionAcl.Function f, boolean once) throws Exception {
        Map<Boolean, Snapshot> before = snapshot();
        List<String> succeeded = new ArrayList<>();
        Connection c = attackerConnection(login);
        try {
            for (Victim v : victims.values()) {
                HostileSchema.Row live = h.row(v.lease);
                List<String> calls = calls(f, v.lease, live);
                if (once) {
                    calls = calls.subList(0, 1);
                }
                for (String lock : lockModes(v.lease)) {
                    for (String call : calls) {
                        if (c.isClosed()) { // the server ended the attacker's session (seen once under load): a new one
                            c = attackerConnection(login);
                        }
                        exec(c, "SELECT pg_advisory_unlock_all()", null);
                        if (lock != null) {
                            exec(c, lock, null);
                        }
                        c.setAutoCommit(false);
                        exec(c, call, succeeded);
                        for (String dml : protocolShapes(v.lease, live)) {
                            exec(c, dml, succeeded);
                        }
                        commit(c, succeeded, call);
                        if (!c.isClosed()) {
                            c.setAutoCommit(true);
                        }
                    }
                }
                if (!c.isClosed()) {
                    exec(c, "SELECT pg_advisory_unlock_all()", null);
                }
            }
            for (int k = 0; k < GroupVictim.SHARDS; k++) {
                String shard = groupVictim.shard(k);
                HostileSchema.Row live = h.row(shard);
                List<String> calls = groupCalls(f, shard, live);
                if (once) {
                    calls = calls.subList(0, 1);
                }
                for (String lock : lockModes(shard)) {
                    for (String call : calls) {
                        if (c.isClosed()) { // the server ended the attacker's session (seen once under load): a new one
                            c = attackerConnection(login);
                        }
                        exec(c, "SELECT pg_advisory_unlock_all()", null);
                        if (lock != null) {
                            exec(c, lock, null);
                        }
                        c.setAutoCommit(false);
                        exec(c, call, succeeded);
                        for (String dml : protocolShapes(shard, live)) {
                            exec(c, dml, succeeded);
                        }
                        commit(c, succeeded, call);
                        if (!c.isClosed()) {
                            c.setAutoCommit(true);
                        }
                    }
                }
                if (!c.isClosed()) {
                    exec(c, "SELECT pg_advisory_unlock_all()", null);
                }
            }
        } finally {
            c.close();
        }
        accomplice(login, succeeded);
        check(login, "calls of " + f.signature(), before, succeeded);
    }

    private static List<String> lockModes(String lease) throws SQLException {
        List<String> modes = new ArrayList<>();
        modes.add(null);
        for (String keyFunction : keyFunctions) {
            // computed by the superuser: the formula is public, an attacker need not be allowed to call it
            String key = HostileSchema.query(null, "SELECT " + keyFunction + "(" + literal(lease) + ")");
            modes.add("SELECT pg_try_advisory_lock(" + key + "::bigint)");
            modes.add("SELECT pg_try_advisory_lock_shared(" + key + "::bigint)");
        }
        return modes;
    }

    /** The calls of {@code f}: all arguments the live values, then each argument in turn varied. */
    private static List<String> calls(FunctionAcl.Function f, String lease, HostileSchema.Row live) {
        List<List<String>> values = new ArrayList<>();
        for (String type : f.argTypes()) {
            values.add(values(type, lease, live));
        }
        List<String> out = new ArrayList<>();
        List<String> base = values.stream().map(v -> v.get(0)).toList();
        out.add(call(f, base));
        for (int i = 0; i < values.size(); i++) {
            for (String variant : values.get(i).subList(1, values.get(i).size())) {
                List<String> args = new ArrayList<>(base);
                args.set(i, variant);
                out.add(call(f, args));
            }
        }
        return out;
    }

    /**
     * The calls of {@code f} against the group victim's shard {@code shard}: the text arguments in order the group's
     * name, the member's holder id, the shard's lease name (so {@code group_join(group, member, ...)},
     * {@code group_renew(member, ARRAY[group], ARRAY[shard], ...)} are called with the live values together), then
     * each argument in turn varied over those values, a prefix of the holder id, another id and the kind.
     */
    private static List<String> groupCalls(FunctionAcl.Function f, String shard, HostileSchema.Row live) {
        String group = groupVictim.group;
        String holder = live.holder();
        List<String> texts = List.of(group, holder, shard, holder.substring(0, 3), "attacker", "shard");
        List<List<String>> values = new ArrayList<>();
        int text = 0;
        int array = 0;
        for (String type : f.argTypes()) {
            switch (type) {
                case "text", "character varying", "name" -> {
                    String first = texts.get(Math.min(text++, 2));
                    List<String> v = new ArrayList<>();
                    v.add(literal(first) + "::" + type);
                    texts.stream().filter(t -> !t.equals(first)).forEach(t -> v.add(literal(t) + "::" + type));
                    values.add(v);
                }
                case "text[]" -> {
                    List<String> arrays = List.of(group, shard, holder);
                    String first = arrays.get(Math.min(array++, 1));
                    List<String> v = new ArrayList<>();
                    v.add("ARRAY[" + literal(first) + "]::text[]");
                    arrays.stream()
                            .filter(t -> !t.equals(first))
                            .forEach(t -> v.add("ARRAY[" + literal(t) + "]::text[]"));
                    values.add(v);
                }
                default -> values.add(values(type, shard, live));
            }
        }
        List<String> out = new ArrayList<>();
        List<String> base = values.stream().map(v -> v.get(0)).toList();
        out.add(call(f, base));
        for (int i = 0; i < values.size(); i++) {
            for (String variant : values.get(i).subList(1, values.get(i).size())) {
                List<String> args = new ArrayList<>(base);
                args.set(i, variant);
                out.add(call(f, args));
            }
        }
        return out;
    }

    private static String call(FunctionAcl.Function f, List<String> args) {
        return (f.procedure() ? "CALL " : "SELECT ") + f.call() + "(" + String.join(", ", args) + ")";
    }

    private static List<String> values(String type, String lease, HostileSchema.Row live) {
        long t = live.token();
        long nextTerm = ((t >> 32) + 1) * TERM + 1;
        String holder = live.holder();
        return switch (type) {
            case "text", "character varying", "name" ->
                List.of(
                        literal(lease) + "::" + type,
                        literal(holder) + "::" + type,
                        literal(holder.substring(0, 3)) + "::" + type,
                        literal("attacker") + "::" + type);
            case "bigint" ->
                List.of(t + "::bigint", (t + 1) + "::bigint", MAX + "::bigint", nextTerm + "::bigint", "0::bigint");
            case "integer", "smallint" ->
                List.of(
                        "1::" + type,
                        "0::" + type,
                        "-1::" + type,
                        (type.equals("integer") ? "2147483647" : "32767") + "::" + type);
            case "numeric" -> List.of(t + "::numeric", (t + 1) + "::numeric", "1e30::numeric");
            case "boolean" -> List.of("true", "false");
            case "interval" -> List.of("interval '1 day'", "interval '-1 day'", "interval '0'");
            case "timestamp with time zone" ->
                List.of("clock_timestamp() + interval '1 day'", "'-infinity'::timestamptz", "'infinity'::timestamptz");
            case "regclass" ->
                List.of(
                        literal(h.schema + ".leases") + "::regclass",
                        literal(h.schema + ".lease_events") + "::regclass");
            case "text[]" -> List.of("ARRAY[" + literal(lease) + "]::text[]", "ARRAY[" + literal(holder) + "]::text[]");
            case "bigint[]" -> List.of("ARRAY[" + t + "]::bigint[]", "ARRAY[" + (t + 1) + "]::bigint[]");
            default -> List.of("NULL::" + type);
        };
    }

    /** Direct statements shaped like each protocol step, against the victim's lease, the attacker as holder. */
    private static List<String> protocolShapes(String lease, HostileSchema.Row live) {
        String s = h.schema;
        long t = live.token();
        long nextTerm = ((t >> 32) + 1) * TERM + 1;
        String where = " WHERE name = " + literal(lease);
        List<String> out = new ArrayList<>();
        for (long token : new long[] {t, t + 1, nextTerm}) {
            out.add(
                    "INSERT INTO " + s + ".leases (name, holder, token, expires_at) VALUES (" + literal(lease)
                            + ", 'attacker', " + token + ", clock_timestamp() + interval '30 seconds')"
                            + " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, token = excluded.token,"
                            + " acquired_at = clock_timestamp(), renewed_at = clock_timestamp(), expires_at = excluded.expires_at");
            out.add("UPDATE " + s + ".leases SET holder = 'attacker', token = " + token
                    + ", acquired_at = clock_timestamp(), renewed_at = clock_timestamp(),"
                    + " expires_at = clock_timestamp() + interval '30 seconds', handoff_from = NULL, handoff_to = NULL,"
                    + " handoff_until = NULL" + where);
            out.add("UPDATE " + s + ".leases SET handoff_from = holder, handoff_to = 'attacker',"
                    + " handoff_until = clock_timestamp() + interval '1 minute', holder = NULL, token = " + token
                    + ", expires_at = clock_timestamp(), renewed_at = clock_timestamp()" + where);
        }
        out.add("UPDATE " + s + ".leases SET holder = 'attacker'" + where);
        out.add("UPDATE " + s + ".leases SET renewed_at = clock_timestamp(),"
                + " expires_at = clock_timestamp() + interval '1 day'" + where);
        out.add("UPDATE " + s + ".leases SET renewed_at = clock_timestamp(), expires_at = clock_timestamp()" + where);
        out.add("UPDATE " + s + ".leases SET holder = NULL, expires_at = clock_timestamp(),"
                + " renewed_at = clock_timestamp()" + where);
        out.add("DELETE FROM " + s + ".leases" + where);
        return out;
    }

    // ---- every table and view ----

    private static void attackTables(String login) throws Exception {
        Map<Boolean, Snapshot> before = snapshot();
        List<String> succeeded = new ArrayList<>();
        List<String[]> relations = new ArrayList<>();
        try (Connection c = TestDatabase.dataSource().getConnection();
                PreparedStatement ps = c.prepareStatement(
                        "SELECT c.relname, c.relkind::text FROM pg_class c"
                                + " WHERE c.relnamespace = ?::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f') ORDER BY 1")) {
            ps.setString(1, h.schema);
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    relations.add(new String[] {rs.getString(1), rs.getString(2)});
                }
            }
        }
        assertThat(relations).as("tables of %s", h.schema).isNotEmpty();
        try (Connection c = attackerConnection(login)) {
            for (Victim v : victims.values()) {
                HostileSchema.Row live = h.row(v.lease);
                for (String[] rel : relations) {
                    String table = h.schema + "." + rel[0];
                    List<String[]> columns = columns(rel[0]);
                    List<String> statements = new ArrayList<>();
                    statements.add("INSERT INTO " + table + " DEFAULT VALUES");
                    statements.add("INSERT INTO " + table + " SELECT * FROM " + table);
                    statements.add(insertOf(table, columns, v.lease, live));
                    for (String[] col : columns) {
                        statements.add("UPDATE " + table + " SET " + quoteIdent(col[0]) + " = NULL");
                        for (String value : values(col[1], v.lease, live)) {
                            statements.add("UPDATE " + table + " SET " + quoteIdent(col[0]) + " = " + value);
                        }
                    }
                    statements.add("DELETE FROM " + table);
                    statements.add("TRUNCATE " + table);
                    statements.add("TRUNCATE " + table + " CASCADE");
                    for (String st : statements) {
                        exec(c, st, succeeded);
                    }
                }
            }
        }
        accomplice(login, succeeded);
        check(login, "writes to every table and view", before, succeeded);
    }

    /**
     * After a login that may not write leases (observer, operator, none) has done what it could, candidate B tries
     * to finish the job: with and without each advisory lock, every protocol-shaped statement against the victims.
     */
    private static void accomplice(String login, List<String> succeeded) throws Exception {
        if (login.equals(h.candB)) {
            return;
        }
        try (Connection c = attackerConnection(h.candB)) {
            for (Victim v : victims.values()) {
                HostileSchema.Row live = h.row(v.lease);
                for (String lock : lockModes(v.lease)) {
                    exec(c, "SELECT pg_advisory_unlock_all()", null);
                    if (lock != null) {
                        exec(c, lock, null);
                    }
                    List<String> done = new ArrayList<>();
                    for (String dml : protocolShapes(v.lease, live)) {
                        exec(c, dml, done);
                    }
                    done.forEach(d -> succeeded.add("(candidate B, after) " + d));
                }
                exec(c, "SELECT pg_advisory_unlock_all()", null);
            }
        }
    }

    private static String insertOf(String table, List<String[]> columns, String lease, HostileSchema.Row live) {
        List<String> names = new ArrayList<>();
        List<String> vals = new ArrayList<>();
        for (String[] col : columns) {
            names.add(quoteIdent(col[0]));
            String v = switch (col[0]) {
                case "name", "resource" -> literal(lease);
                case "holder", "previous_holder", "handoff_to", "handoff_from" -> literal("attacker");
                case "kind" -> literal("force_released");
                case "token" -> String.valueOf(live.token() + 1);
                case "holder_role", "changed_by" -> literal(h.candA);
                default -> values(col[1], lease, live).get(0);
            };
            vals.add(v);
        }
        return "INSERT INTO " + table + " (" + String.join(", ", names) + ") OVERRIDING SYSTEM VALUE VALUES ("
                + String.join(", ", vals) + ")";
    }

    private static List<String[]> columns(String relation) throws SQLException {
        List<String[]> out = new ArrayList<>();
        try (Connection c = TestDatabase.dataSource().getConnection();
                PreparedStatement ps =
                        c.prepareStatement("SELECT a.attname, format_type(a.atttypid, NULL) FROM pg_attribute a"
                                + " WHERE a.attrelid = (quote_ident(?) || '.' || quote_ident(?))::regclass AND a.attnum > 0"
                                + " AND NOT a.attisdropped ORDER BY a.attnum")) {
            ps.setString(1, h.schema);
            ps.setString(2, relation);
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    out.add(new String[] {rs.getString(1), rs.getString(2)});
                }
            }
        }
        return out;
    }

    // ---- checks ----

    /** What a victim's lease looked like before a case: its row, and how many events its leases had. */
    private record Snapshot(HostileSchema.Row row, List<String> events) {}

    private static Map<Boolean, Snapshot> snapshot() throws SQLException {
        Map<Boolean, Snapshot> out = new LinkedHashMap<>();
        for (Map.Entry<Boolean, Victim> e : victims.entrySet()) {
            out.put(e.getKey(), new Snapshot(h.row(e.getValue().lease), h.events(e.getValue().lease)));
        }
        return out;
    }

    private static void check(String login, String what, Map<Boolean, Snapshot> before, List<String> succeeded)
            throws Exception {
        List<String> broken = new ArrayList<>();
        for (Map.Entry<Boolean, Victim> e : victims.entrySet()) {
            Victim v = e.getValue();
            String mode = e.getKey() ? "fast-failover" : "plain";
            HostileSchema.Row row = h.row(v.lease);
            String expiry = HostileSchema.query(
                    null,
                    "SELECT expires_at > clock_timestamp() AND expires_at"
                            + " <= clock_timestamp() + interval '31 seconds' FROM " + h.schema + ".leases WHERE name = "
                            + literal(v.lease));
            List<String> events = h.events(v.lease);
            List<String> lost = new ArrayList<>(before.get(e.getKey()).events());
            lost.removeAll(events);
            List<String> byAttacker =
                    events.stream().filter(ev -> ev.endsWith(" " + login)).toList();
            if (row == null || !v.leadership.holder().equals(row.holder()) || row.token() != v.leadership.token()) {
                broken.add(mode + " victim " + v.lease + ": row is now " + row + ", the victim holds token "
                        + v.leadership.token());
            }
            if (!"t".equals(expiry)) {
                broken.add(mode + " victim " + v.lease + ": expiry is no longer within the victim's own lease "
                        + "duration from now");
            }
            if (!byAttacker.isEmpty() || !lost.isEmpty()) {
                broken.add(mode + " victim " + v.lease + ": events made by " + login + ": " + byAttacker
                        + ", events gone: " + lost);
            }
            if (!v.revocations.isEmpty()) {
                broken.add(mode + " victim " + v.lease + ": revoked: " + v.revocations);
            }
        }
        broken.addAll(groupVictim.broken(login));
        if (!broken.isEmpty()) {
            replaceBrokenVictims();
        }
        assertThat(broken)
                .as(
                        "%s by %s (%s) broke the victim; statements that went through:\n%s",
                        what,
                        login,
                        h.roleOf(login),
                        String.join("\n", succeeded.subList(0, Math.min(40, succeeded.size()))))
                .isEmpty();
    }

    /** A broken victim is replaced by a fresh one on a new lease, so every case starts from a healthy holder. */
    private static void replaceBrokenVictims() throws Exception {
        for (Map.Entry<Boolean, Victim> e : victims.entrySet()) {
            Victim v = e.getValue();
            if (!v.intact()) {
                v.close();
                generation++;
                e.setValue(Victim.start(h, (e.getKey() ? "victim-ff-" : "victim-plain-") + generation, e.getKey()));
            }
        }
        if (!groupVictim.broken(h.candB).isEmpty()) {
            groupVictim.close();
            generation++;
            groupVictim = GroupVictim.start(h, "victim-group-" + generation);
        }
    }

    // ---- plumbing ----

    private static Connection attackerConnection(String login) throws SQLException {
        Connection c = h.as(login).getConnection();
        // each statement of a transaction in a savepoint of its own: one refusal does not end the attack
        c.unwrap(org.postgresql.PGConnection.class).setAutosave(org.postgresql.jdbc.AutoSave.ALWAYS);
        try (Statement s = c.createStatement()) {
            s.execute("SET statement_timeout = '2s'; SET lock_timeout = '500ms'");
        }
        return c;
    }

    private static void exec(Connection c, String sql, List<String> succeeded) {
        try (Statement s = c.createStatement()) {
            boolean result = s.execute(sql);
            if (succeeded != null) {
                String answer = result ? firstValue(s.getResultSet()) : s.getUpdateCount() + " rows";
                if (result || s.getUpdateCount() > 0) {
                    succeeded.add(sql + " -> " + answer);
                }
            }
        } catch (SQLException e) {
            // a refusal: the outcome an attack should have
        }
    }

    private static void commit(Connection c, List<String> succeeded, String call) {
        try {
            c.commit();
        } catch (SQLException e) {
            succeeded.add("COMMIT after " + call + " refused: " + e.getSQLState());
            try {
                c.rollback();
            } catch (SQLException ignored) {
                // the session is gone: the next case opens a new one
            }
        }
    }

    private static String firstValue(ResultSet rs) throws SQLException {
        try (rs) {
            return rs.next() ? String.valueOf(rs.getString(1)) : "(no row)";
        }
    }

    private static boolean executable(String login, long oid) throws SQLException {
        return "t"
                .equals(HostileSchema.query(
                        null, "SELECT has_function_privilege(" + literal(login) + ", " + oid + "::oid, 'EXECUTE')"));
    }

    private static String literal(String s) {
        return "'" + s.replace("'", "''") + "'";
    }

    private static String quoteIdent(String s) {
        return "\"" + s.replace("\"", "\"\"") + "\"";
    }
}
