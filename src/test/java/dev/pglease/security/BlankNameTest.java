package dev.pglease.security;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

import java.sql.SQLException;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * Lease names and holder ids are not blank: the database refuses what the Java side refuses, whoever calls the
 * protocol (SQLSTATE 22023).
 */
@Tag("security")
class BlankNameTest {

    @Test
    void theProtocolRefusesBlankLeaseNamesAndHolderIds() throws Exception {
        HostileSchema h = HostileSchema.create();
        for (String[] call : new String[][] {{"'   '", "'holder-a'"}, {"'blank-holder'", "'   '"}}) {
            String sql = "SELECT token FROM " + h.schema + ".acquire(" + call[0] + ", " + call[1] + ", 60000)";
            Throwable t = catchThrowable(() -> HostileSchema.run(h.candA, sql));
            assertThat(t).as("%s as a candidate", sql).isInstanceOf(SQLException.class);
            assertThat(((SQLException) t).getSQLState())
                    .as("SQLSTATE of %s: %s", sql, t.getMessage())
                    .isEqualTo("22023");
        }
    }
}
