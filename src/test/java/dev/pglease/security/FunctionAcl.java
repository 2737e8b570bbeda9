package dev.pglease.security;

import dev.pglease.TestDatabase;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * The documented table of who may execute each function of the pglease schema
 * ({@code function-acl.txt} beside this class), and the functions a schema has, read from the catalog.
 */
final class FunctionAcl {

    static final List<String> ROLES = List.of("candidate", "observer", "operator");

    private FunctionAcl() {}

    /** Signature (name and argument types) to the roles that may execute it. */
    static Map<String, Set<String>> documented() {
        Map<String, Set<String>> table = new LinkedHashMap<>();
        try (InputStream in = FunctionAcl.class.getResourceAsStream("function-acl.txt")) {
            if (in == null) {
                throw new IllegalStateException("function-acl.txt is missing from the test resources");
            }
            BufferedReader r = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8));
            String line;
            while ((line = r.readLine()) != null) {
                line = line.strip();
                if (line.isEmpty() || line.startsWith("#")) {
                    continue;
                }
                int close = line.lastIndexOf(')');
                if (close < 0) {
                    throw new IllegalStateException("function-acl.txt: no signature in line: " + line);
                }
                String signature = line.substring(0, close + 1)
                        .replaceAll("\\s*,\\s*", ", ")
                        .replaceAll("\\(\\s+", "(")
                        .replaceAll("\\s+\\)", ")");
                String who = line.substring(close + 1).strip();
                Set<String> roles = new TreeSet<>();
                if (!who.equals("-")) {
                    for (String role : who.split(",")) {
                        String r2 = role.strip();
                        if (!ROLES.contains(r2)) {
                            throw new IllegalStateException("function-acl.txt: unknown role " + r2 + " in: " + line
                                    + " (roles: " + ROLES + ", or - for none)");
                        }
                        roles.add(r2);
                    }
                }
                if (table.put(signature, roles) != null) {
                    throw new IllegalStateException("function-acl.txt lists " + signature + " twice");
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return table;
    }

    /** A function of the schema as the catalog has it. */
    record Function(
            long oid,
            String signature,
            String call,
            List<String> argTypes,
            boolean trigger,
            boolean securityDefiner,
            boolean procedure) {}

    /** Every function (and procedure) of {@code schema}, from pg_proc. */
    static List<Function> inCatalog(String schema) throws SQLException {
        List<Function> out = new java.util.ArrayList<>();
        try (Connection c = TestDatabase.dataSource().getConnection();
                PreparedStatement ps = c.prepareStatement("""
                     SELECT p.oid, p.proname || '(' || oidvectortypes(p.proargtypes) || ')',
                            p.oid::regproc::text,
                            ARRAY(SELECT format_type(t, NULL) FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY AS a(t, i)
                                  ORDER BY i),
                            p.prorettype = 'trigger'::regtype, p.prosecdef, p.prokind = 'p'
                       FROM pg_proc p
                      WHERE p.pronamespace = ?::regnamespace
                      ORDER BY 2
                     """)) {
            ps.setString(1, schema);
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    out.add(new Function(
                            rs.getLong(1),
                            rs.getString(2),
                            schema + "." + rs.getString(2).replaceAll("\\(.*", ""),
                            List.of((String[]) rs.getArray(4).getArray()),
                            rs.getBoolean(5),
                            rs.getBoolean(6),
                            rs.getBoolean(7)));
                }
            }
        }
        return out;
    }
}
