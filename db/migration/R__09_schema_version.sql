-- The version of the schema, readable by every pglease role: applications call it at start-up and refuse a schema
-- older or newer than the one they were built for, with a message that says how to migrate. It is the number of the
-- latest versioned migration (V<n>__*.sql); bump it with every new one.

SET LOCAL search_path = pg_catalog, pg_temp; -- nothing a login planted in another schema is ever called

CREATE OR REPLACE FUNCTION ${flyway:defaultSchema}.schema_version() RETURNS integer
    LANGUAGE sql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$ SELECT 1 $$;

COMMENT ON FUNCTION ${flyway:defaultSchema}.schema_version() IS
    'Version of the pglease schema (the number of its latest versioned migration); callable by every pglease role.';

REVOKE ALL ON FUNCTION ${flyway:defaultSchema}.schema_version() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ${flyway:defaultSchema}.schema_version()
    TO "${candidate_role}", "${observer_role}", "${operator_role}";
