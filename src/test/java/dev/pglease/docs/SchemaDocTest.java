package dev.pglease.docs;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.TestDatabase;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * The {@code lease_status} columns the docs show are the view's, read from a freshly migrated schema: the column
 * table of docs/schema.md (names, in order), and the header of every {@code psql} output of
 * {@code SELECT * FROM pglease.lease_status} on any page.
 */
class SchemaDocTest {

    @Test
    void theLeaseStatusColumnsTheDocsShowAreTheViews() throws Exception {
        List<String> columns = viewColumns(TestDatabase.freshSchema(), "lease_status");
        assertThat(columns).contains("name", "holder", "token", "term_token");

        Docs.Page schema = Docs.page("docs/schema.md");
        String text = schema.text();
        String table =
                text.substring(text.indexOf("<!-- lease-status:begin -->"), text.indexOf("<!-- lease-status:end -->"));
        List<String> documented = Pattern.compile("(?m)^\\| `([a-z_]+)` \\|")
                .matcher(table)
                .results()
                .map(r -> r.group(1))
                .toList();
        assertThat(documented).as("the lease_status table of docs/schema.md").isEqualTo(columns);

        int outputs = 0;
        for (Docs.Page page : Docs.pages()) {
            List<String> lines = page.lines();
            for (int i = 0; i + 1 < lines.size(); i++) {
                if (lines.get(i).matches(".*SELECT \\* FROM [a-z_]+\\.lease_status;.*")) {
                    String header = lines.get(i + 1);
                    List<String> shown = Arrays.stream(header.split("\\|"))
                            .map(String::strip)
                            .toList();
                    assertThat(shown)
                            .as("psql header after " + page.name() + ":" + (i + 1))
                            .isEqualTo(columns);
                    outputs++;
                }
            }
        }
        assertThat(outputs).as("psql outputs of lease_status in the docs").isPositive();
    }

    private static List<String> viewColumns(String schema, String view) throws Exception {
        List<String> columns = new ArrayList<>();
        try (Connection c = TestDatabase.dataSource().getConnection();
                PreparedStatement ps = c.prepareStatement("SELECT column_name FROM information_schema.columns"
                        + " WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position")) {
            ps.setString(1, schema);
            ps.setString(2, view);
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    columns.add(rs.getString(1));
                }
            }
        }
        return columns;
    }
}
