package dev.pglease.internal.tool;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.pglease.TestDatabase;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import javax.sql.DataSource;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/** Where the embedded servers of the tests keep their files, and that they take them away again. */
class EmbeddedPostgresServerTest {

    private static final Path MEMORY = Path.of("/dev/shm");

    @Test
    void theTestServerKeepsItsFilesOnTheMemoryFileSystemWhereThereIsOneWithRoom() throws Exception {
        Assumptions.assumeTrue(TestDatabase.isEmbedded(), "the tests use the server at " + TestDatabase.URL_VARIABLE);
        Assumptions.assumeTrue(
                Files.isDirectory(MEMORY)
                        && Files.getFileStore(MEMORY).getUsableSpace() >= EmbeddedPostgresServer.LEAST_FREE_SPACE,
                "this machine has no /dev/shm with 2 GiB free");
        assertThat(dataDirectory(TestDatabase.dataSource())).startsWith(MEMORY + "/pglease-pg-");
    }

    @Test
    void aClosedServerLeavesNoFilesBehind() throws Exception {
        Path directory;
        try (EmbeddedPostgresServer server = EmbeddedPostgresServer.start()) {
            directory = Path.of(dataDirectory(server.dataSource())).getParent();
            assertThat(directory).isDirectory();
        }
        assertThat(directory).doesNotExist();
    }

    @Test
    void aDirectoryThatIsNotOneIsRefusedByName() throws IOException {
        Path file = Files.createTempFile("pglease-not-a-directory", ".txt");
        try {
            assertThatThrownBy(() -> EmbeddedPostgresServer.privateDirectory(file.toString(), "x-"))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining(EmbeddedPostgresServer.DIRECTORY_PROPERTY + " = \"" + file + "\"")
                    .hasMessageContaining("not a writable directory");
        } finally {
            Files.delete(file);
        }
    }

    private static String dataDirectory(DataSource dataSource) throws SQLException {
        try (Connection c = dataSource.getConnection();
                Statement s = c.createStatement();
                ResultSet rs = s.executeQuery("SHOW data_directory")) {
            rs.next();
            return rs.getString(1);
        }
    }
}
