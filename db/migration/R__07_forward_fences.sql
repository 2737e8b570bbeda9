-- Forward-only fences for resources outside the lease row (a file, a remote service, a table in another system):
-- a write carrying token t for a resource is accepted only if no write with a higher token was accepted before.
-- Call advance_fence in the same transaction as the resource change; false means the token is stale: roll back.
-- A token is accepted only while it is the lease's current grant, held and unexpired (a receiving service that got
-- the token from a request can call it too: the database knows the grants); and a resource belongs to the lease it
-- was first fenced with, so nobody can push a resource's fence with the tokens of another lease.

CREATE OR REPLACE FUNCTION ${flyway:defaultSchema}.advance_fence(p_resource text, p_lease text, p_token bigint)
    RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS
$$
DECLARE
    current  ${flyway:defaultSchema}.leases;
    bound_to text;
    accepted boolean;
BEGIN
    PERFORM ${flyway:defaultSchema}.check_name('a fence resource', p_resource, 200);
    IF p_token IS NULL OR p_token < 1 THEN
        RAISE EXCEPTION 'pglease: a fence token must be 1 or more, got %', coalesce(p_token::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT f.lease INTO bound_to FROM ${flyway:defaultSchema}.fences f WHERE f.resource = p_resource;
    IF bound_to IS NOT NULL AND bound_to IS DISTINCT FROM p_lease THEN
        RAISE EXCEPTION 'pglease: resource % is fenced by lease "%", not "%"', quote_literal(p_resource), bound_to,
                        p_lease
            USING ERRCODE = 'PL001';
    END IF;
    SELECT * INTO current FROM ${flyway:defaultSchema}.leases l WHERE l.name = p_lease;
    IF current.name IS NULL OR p_token > current.token THEN
        RAISE EXCEPTION 'pglease: lease "%" has not granted token % (%)', p_lease, p_token,
                        CASE WHEN current.name IS NULL THEN 'no such lease'
                             ELSE 'its latest token is ' || current.token END
            USING ERRCODE = 'PL001';
    END IF;
    IF p_token < current.token OR current.holder IS NULL OR current.expires_at <= clock_timestamp() THEN
        RETURN false; -- a token of an earlier grant, or of a grant that ended: stale
    END IF;
    PERFORM ${flyway:defaultSchema}.durable_commit();
    WITH advanced AS (
        INSERT INTO ${flyway:defaultSchema}.fences AS f (resource, lease, token)
        VALUES (p_resource, p_lease, p_token)
        ON CONFLICT (resource) DO UPDATE
            SET token = excluded.token, advanced_at = clock_timestamp()
            WHERE f.token <= excluded.token AND f.lease = excluded.lease
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
