-- Forward-only fences for resources outside the lease row (a file, a remote service, a table in another system):
-- a write carrying token t for a resource is accepted only if no write with a higher token was accepted before.
-- Call advance_fence in the same transaction as the resource change; false means the token is stale: roll back.
-- A token is accepted only if the lease has granted it (it is not above the lease's current token), so nobody can
-- push a fence past every future grant.

CREATE OR REPLACE FUNCTION ${flyway:defaultSchema}.advance_fence(p_resource text, p_lease text, p_token bigint)
    RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS
$$
DECLARE
    granted bigint;
    accepted boolean;
BEGIN
    PERFORM ${flyway:defaultSchema}.check_name('a fence resource', p_resource, 200);
    IF p_token IS NULL OR p_token < 0 THEN
        RAISE EXCEPTION 'pglease: a fence token must be 0 or more, got %', coalesce(p_token::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT l.token INTO granted FROM ${flyway:defaultSchema}.leases l WHERE l.name = p_lease;
    IF granted IS NULL OR p_token > granted THEN
        RAISE EXCEPTION 'pglease: lease "%" has not granted token % (%)', p_lease, p_token,
                        CASE WHEN granted IS NULL THEN 'no such lease' ELSE 'its latest token is ' || granted END
            USING ERRCODE = 'PL001';
    END IF;
    PERFORM ${flyway:defaultSchema}.durable_commit();
    WITH advanced AS (
        INSERT INTO ${flyway:defaultSchema}.fences AS f (resource, lease, token)
        VALUES (p_resource, p_lease, p_token)
        ON CONFLICT (resource) DO UPDATE
            SET token = excluded.token, lease = excluded.lease, advanced_at = clock_timestamp()
            WHERE f.token <= excluded.token
        RETURNING 1
    )
    SELECT EXISTS (SELECT 1 FROM advanced) INTO accepted;
    RETURN accepted;
END
$$;

-- A fence only moves forward, whoever writes it (the owner included): no lower token, no renaming, no delete. The
-- owner may truncate the table to start over (a maintenance act).
CREATE OR REPLACE FUNCTION ${flyway:defaultSchema}.fences_guard() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS
$$
BEGIN
    IF TG_LEVEL = 'STATEMENT' THEN
        IF pg_has_role(current_user, (SELECT c.relowner FROM pg_class c WHERE c.oid = TG_RELID), 'MEMBER') THEN
            RETURN NULL;
        END IF;
        RAISE EXCEPTION 'pglease: fences only move forward: role % may not truncate %.%', current_user,
                        TG_TABLE_SCHEMA, TG_TABLE_NAME
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NOT pg_has_role(current_user, (SELECT c.relowner FROM pg_class c WHERE c.oid = TG_RELID), 'MEMBER') THEN
        RAISE EXCEPTION 'pglease: role % may not % fence % directly: fences move only through advance_fence',
                        current_user, lower(TG_OP), quote_literal(OLD.resource)
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.resource = OLD.resource AND NEW.token >= OLD.token THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'pglease: fences only move forward: % of fence % refused (only advance its token)',
                    lower(TG_OP), quote_literal(OLD.resource)
        USING ERRCODE = 'restrict_violation';
END
$$;

DROP TRIGGER IF EXISTS fences_guard ON ${flyway:defaultSchema}.fences;
DROP TRIGGER IF EXISTS fences_guard_truncate ON ${flyway:defaultSchema}.fences;
CREATE TRIGGER fences_guard
    BEFORE UPDATE OR DELETE ON ${flyway:defaultSchema}.fences
    FOR EACH ROW EXECUTE FUNCTION ${flyway:defaultSchema}.fences_guard();
CREATE TRIGGER fences_guard_truncate
    BEFORE TRUNCATE ON ${flyway:defaultSchema}.fences
    FOR EACH STATEMENT EXECUTE FUNCTION ${flyway:defaultSchema}.fences_guard();

REVOKE ALL ON FUNCTION ${flyway:defaultSchema}.advance_fence(text, text, bigint),
                       ${flyway:defaultSchema}.fences_guard()
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ${flyway:defaultSchema}.advance_fence(text, text, bigint) TO "${candidate_role}";
