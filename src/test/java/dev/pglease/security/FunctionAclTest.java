package dev.pglease.security;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.TestDatabase;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * Who may execute what: every function of a migrated schema, its EXECUTE rights read from the catalog, compared
 * with the documented table {@code function-acl.txt}. A function nobody decided about can not ship, and no function
 * is executable by PUBLIC or by a role the table does not name.
 */
@Tag("security")
class FunctionAclTest {

    private static HostileSchema h;
    private static List<FunctionAcl.Function> functions;
    private static Map<String, Set<String>> table;

    @BeforeAll
    static void setUp() throws SQLException {
        h = HostileSchema.create();
        functions = FunctionAcl.inCatalog(h.schema);
        table = FunctionAcl.documented();
    }

    @Test
    void everyFunctionOfTheSchemaIsListedInTheDocumentedTable() {
        assertThat(functions).as("functions of %s", h.schema).isNotEmpty();
        List<String> missing = functions.stream()
                .map(FunctionAcl.Function::signature)
                .filter(s -> !table.containsKey(s))
                .toList();
        assertThat(missing)
                .as("functions in the catalog with no line in function-acl.txt (decide who may execute "
                        + "them, and add the line)")
                .isEmpty();
    }

    @Test
    void noFunctionIsExecutableByPublic() throws SQLException {
        List<String> byPublic = new ArrayList<>();
        try (Connection c = TestDatabase.dataSource().getConnection();
                PreparedStatement ps = c.prepareStatement("""
                     SELECT p.proname || '(' || oidvectortypes(p.proargtypes) || ')'
                       FROM pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                      WHERE p.pronamespace = ?::regnamespace AND a.grantee = 0 AND a.privilege_type = 'EXECUTE'
                      ORDER BY 1
                     """)) {
            ps.setString(1, h.schema);
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    byPublic.add(rs.getString(1));
                }
            }
        }
        assertThat(byPublic)
                .as("functions of %s executable by PUBLIC (so by every login, in a pglease role or " + "not)", h.schema)
                .isEmpty();
    }

    @Test
    void eachRoleMayExecuteExactlyTheFunctionsTheTableGivesIt() throws SQLException {
        Map<String, String> loginOf = Map.of("candidate", h.candB, "observer", h.observer, "operator", h.operator);
        List<String> wrong = new ArrayList<>();
        for (FunctionAcl.Function f : functions) {
            Set<String> allowed = table.getOrDefault(f.signature(), Set.of());
            for (String role : FunctionAcl.ROLES) {
                boolean may = executable(loginOf.get(role), f.oid());
                if (may != allowed.contains(role)) {
                    wrong.add(f.signature() + ": " + role
                            + (may
                                    ? " may execute it, the table says not"
                                    : " may not execute it, the table says it may"));
                }
            }
        }
        assertThat(wrong)
                .as("EXECUTE rights of %s that differ from function-acl.txt", h.schema)
                .isEmpty();
    }

    @Test
    void aLoginInNoPgleaseRoleMayExecuteNoFunctionOfTheSchema() throws SQLException {
        List<String> executable = new ArrayList<>();
        for (FunctionAcl.Function f : functions) {
            if (executable(h.nobody, f.oid())) {
                executable.add(f.signature());
            }
        }
        assertThat(executable)
                .as("functions of %s that login %s (in no pglease role) may execute", h.schema, h.nobody)
                .isEmpty();
    }

    private static boolean executable(String login, long oid) throws SQLException {
        try (Connection c = TestDatabase.dataSource().getConnection();
                PreparedStatement ps = c.prepareStatement("SELECT has_function_privilege(?, ?::oid, 'EXECUTE')")) {
            ps.setString(1, login);
            ps.setLong(2, oid);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                return rs.getBoolean(1);
            }
        }
    }
}
