package dev.pglease;

import static org.assertj.core.api.Assertions.assertThat;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The PostgreSQL major the suite ran against is the one the build chose (property postgres-binaries.version,
 * switched by the profiles pg13 to pg18), so a compatibility claim can not rest on a profile that silently used
 * another server.
 */
@Tag("core")
class ServerVersionTest {

    @Test
    void theEmbeddedServerIsTheMajorTheBuildSelected() throws Exception {
        Assumptions.assumeTrue(
                TestDatabase.isEmbedded(),
                "the tests run against " + TestDatabase.URL_VARIABLE + ", whose version the build does not choose");
        String binaries = System.getProperty("pglease.postgresBinaries");
        assertThat(binaries)
                .as("system property pglease.postgresBinaries (set by the pom)")
                .isNotBlank();
        int expectedMajor = Integer.parseInt(binaries.substring(0, binaries.indexOf('.')));

        try (Connection c = TestDatabase.dataSource().getConnection();
                PreparedStatement ps = c.prepareStatement("SELECT current_setting('server_version_num')::int / 10000");
                ResultSet rs = ps.executeQuery()) {
            rs.next();
            assertThat(rs.getInt(1)).isEqualTo(expectedMajor);
        }
    }
}
