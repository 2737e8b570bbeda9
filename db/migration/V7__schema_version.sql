-- pglease schema, version 7: the schema says which version it is, to every pglease role.
--
-- Applications that only campaign (members of the candidate role) and observers may not read Flyway's history
-- table, and should not have to: they call schema_version() at start-up and refuse to run against a schema older
-- than the one they were built for, with a message that says how to migrate it. Every later migration replaces
-- this function with one that returns its own version.
CREATE OR REPLACE FUNCTION ${flyway:defaultSchema}.schema_version() RETURNS integer
    LANGUAGE sql
    IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS
$$
SELECT 7
$$;

COMMENT ON FUNCTION ${flyway:defaultSchema}.schema_version() IS
    'Version of the pglease schema (the number of its latest migration); callable by every pglease role.';

REVOKE ALL ON FUNCTION ${flyway:defaultSchema}.schema_version() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ${flyway:defaultSchema}.schema_version()
    TO "${candidate_role}", "${observer_role}", "${operator_role}";
