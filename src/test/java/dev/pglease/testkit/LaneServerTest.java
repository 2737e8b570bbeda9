package dev.pglease.testkit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.pglease.Required;
import dev.pglease.TestDatabase;
import dev.pglease.pgbouncer.PgBouncer;
import java.nio.file.Files;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.Statement;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * A lane's claim rests on what ran: the tests' connections reach the embedded server through PgBouncer, in the
 * lane's pool mode, in a pooler lane, and directly in every other. (The PostgreSQL major is checked by
 * ServerVersionTest, the JDK by the lanes runner from the JVM the test reports name.)
 */
@Tag("core")
@Tag("security")
class LaneServerTest {

    @Test
    void theTestsReachTheEmbeddedServerThroughPgBouncerInAPoolerLaneAndDirectlyOtherwise() throws Exception {
        assumeTrue(
                TestDatabase.isEmbedded(),
                "the tests run against " + TestDatabase.URL_VARIABLE + ", which no lane chooses");
        Matcher url = Pattern.compile("//[^:/]+:(\\d+)/").matcher(TestDatabase.jdbcUrl());
        assertThat(url.find()).as("a port in %s", TestDatabase.jdbcUrl()).isTrue();
        int urlPort = Integer.parseInt(url.group(1));
        int serverPort;
        try (Connection c = TestDatabase.dataSource().getConnection();
                Statement s = c.createStatement();
                ResultSet rs = s.executeQuery("SELECT inet_server_port()")) {
            rs.next();
            serverPort = rs.getInt(1);
        }
        Lane lane = Lane.pooler();
        if (lane == null) {
            assertThat(TestDatabase.pooler())
                    .as("a PgBouncer outside the pooler lanes")
                    .isEmpty();
            assertThat(serverPort)
                    .as("the port of the server the statements ran on (the tests connect to %d)", urlPort)
                    .isEqualTo(urlPort);
            return;
        }
        Required.assume(Files.isExecutable(PgBouncer.PSQL), "psql (" + PgBouncer.PSQL + ", package postgresql-client)");
        PgBouncer bouncer = TestDatabase.pooler().orElseThrow();
        assertThat(urlPort).as("the port the tests connect to (PgBouncer's)").isEqualTo(bouncer.port());
        assertThat(serverPort)
                .as("the port of the server the statements ran on (PgBouncer listens on %d)", bouncer.port())
                .isNotEqualTo(bouncer.port())
                .isPositive();
        assertThat(bouncer.setting("pool_mode")).as("PgBouncer's pool_mode").isEqualTo(lane.poolMode());
    }
}
