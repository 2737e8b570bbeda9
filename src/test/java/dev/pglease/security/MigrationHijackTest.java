package dev.pglease.security;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

import dev.pglease.PgLease;
import dev.pglease.TestDatabase;
import java.sql.SQLException;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The migration runs as the schema's owner, so nothing another login prepared beforehand may run with the owner's
 * rights or take the schema from it: not a function planted in {@code public} (writable by every login before
 * PostgreSQL 15, and in every database upgraded from one), not a schema of the same name created beforehand by
 * another login.
 */
@Tag("security")
class MigrationHijackTest {

    private static final AtomicInteger SCHEMAS = new AtomicInteger();

    @Test
    void aFunctionPlantedInThePublicSchemaNeverRunsWithTheOwnersRights() throws Exception {
        String schema = "m" + ProcessHandle.current().pid() + "_" + SCHEMAS.incrementAndGet();
        String owner = Users.create(schema + "_owner");
        String planter = Users.create(schema + "_planter");
        String log = "public." + schema + "_ran_as";
        boolean publicWasWritable =
                "t".equals(HostileSchema.query(null, "SELECT has_schema_privilege('public', 'public', 'CREATE')"));
        TestDatabase.execute("ALTER ROLE " + owner + " CREATEROLE");
        TestDatabase.execute("DO $$ BEGIN EXECUTE format('GRANT CREATE ON DATABASE %I TO " + owner
                + "', current_database()); END $$");
        TestDatabase.execute("GRANT CREATE ON SCHEMA public TO PUBLIC");
        try {
            Users.run(planter, "CREATE TABLE " + log + " (role text)");
            Users.run(planter, "GRANT INSERT ON " + log + " TO PUBLIC");
            Users.run(
                    planter,
                    "CREATE FUNCTION public.format(f text, a text) RETURNS text LANGUAGE plpgsql AS $f$"
                            + " BEGIN"
                            + "   BEGIN INSERT INTO " + log
                            + " VALUES (current_user); EXCEPTION WHEN OTHERS THEN NULL; END;"
                            + "   RETURN pg_catalog.format(f, a);"
                            + " END $f$");

            PgLease.migrate(Users.as(owner), schema);

            assertThat(HostileSchema.query(null, "SELECT string_agg(DISTINCT role, ', ') FROM " + log))
                    .as(
                            "roles a function planted in public by %s ran as while %s migrated schema %s",
                            planter, owner, schema)
                    .isNull();
        } finally {
            TestDatabase.execute("DROP FUNCTION IF EXISTS public.format(text, text)");
            TestDatabase.execute("DROP TABLE IF EXISTS " + log);
            if (!publicWasWritable) {
                TestDatabase.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC");
            }
        }
    }

    @Test
    void aSchemaCreatedBeforehandByAnotherLoginCanNotBeUsedToReplaceTheLeaseTable() throws Exception {
        String schema = "m" + ProcessHandle.current().pid() + "_" + SCHEMAS.incrementAndGet();
        String owner = Users.create(schema + "_owner");
        String squatter = Users.create(schema + "_squatter");
        TestDatabase.execute("ALTER ROLE " + owner + " CREATEROLE");
        for (String login : new String[] {owner, squatter}) {
            TestDatabase.execute("DO $$ BEGIN EXECUTE format('GRANT CREATE ON DATABASE %I TO " + login
                    + "', current_database()); END $$");
        }
        Users.run(squatter, "CREATE SCHEMA " + schema);
        Users.run(squatter, "GRANT ALL ON SCHEMA " + schema + " TO PUBLIC");

        Throwable migration = catchThrowable(() -> PgLease.migrate(Users.as(owner), schema));

        StringBuilder attack = new StringBuilder();
        for (String sql : new String[] {
            "DROP TABLE " + schema + ".leases CASCADE",
            "CREATE TABLE " + schema + ".leases (name text PRIMARY KEY, kind text NOT NULL DEFAULT 'election',"
                    + " holder text, holder_role text, token bigint NOT NULL, acquired_at timestamptz,"
                    + " renewed_at timestamptz, expires_at timestamptz, handoff_from text, handoff_to text,"
                    + " handoff_until timestamptz)"
        }) {
            try {
                Users.run(squatter, sql);
                attack.append("\n  ").append(sql).append(" -> done");
            } catch (SQLException e) {
                attack.append("\n  ").append(sql).append(" -> ").append(e.getSQLState());
            }
        }
        String leasesOwner = HostileSchema.query(
                null,
                "SELECT coalesce((SELECT relowner::regrole::text FROM" + " pg_class WHERE oid = to_regclass('" + schema
                        + ".leases')), 'none')");
        assertThat(migration != null || leasesOwner.equals(owner))
                .as(
                        "the migration into a schema %s created (%s), then the lease table's owner is %s; %s:%s",
                        squatter,
                        migration == null ? "it succeeded" : migration.getMessage(),
                        leasesOwner,
                        squatter,
                        attack)
                .isTrue();
    }
}
