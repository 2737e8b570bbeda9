-- Single-shot locks (LeaseLock, the ShedLock provider): leases of kind 'lock', taken with acquire(..., 'lock'),
-- never renewed in the background; extended and unlocked explicitly. A lock is never re-taken by its own holder
-- after a failover (acquire's earlier-term clause is for elections only), so one process can not hold one lock twice.

SET LOCAL search_path = pg_catalog, pg_temp; -- nothing a login planted in another schema is ever called

-- Extends a lock this holder and login still have with this token and that has not expired: it now expires p_ttl_ms
-- after this call (shorter or longer than before). The extension time is kept in renewed_at, from which unlock
-- measures keep-at-least. Returns whether the lock was extended.
CREATE OR REPLACE FUNCTION ${flyway:defaultSchema}.lock_extend(p_name text, p_holder text, p_token bigint,
                                                              p_ttl_ms bigint)
    RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS
$$
DECLARE
    ttl  interval := ${flyway:defaultSchema}.check_duration('lockAtMostFor', p_ttl_ms);
    term bigint;
    extended_name text;
BEGIN
    PERFORM ${flyway:defaultSchema}.durable_commit();
    term := ${flyway:defaultSchema}.current_term();
    UPDATE ${flyway:defaultSchema}.leases AS l
       SET renewed_at = clock_timestamp(), expires_at = clock_timestamp() + ttl
     WHERE l.name = p_name AND l.kind = 'lock' AND l.holder = p_holder AND l.token = p_token
       AND l.holder_role = session_user AND l.expires_at > clock_timestamp()
       AND ${flyway:defaultSchema}.token_term(l.token) >= term
    RETURNING l.name INTO extended_name;
    RETURN extended_name IS NOT NULL;
END
$$;

-- Unlocks a lock this holder and login still have with this token. If less than p_keep_ms has passed since it was
-- taken or last extended (renewed_at, database clock), the holder stays and the lock expires at
-- renewed_at + p_keep_ms (never later than it would have anyway); otherwise it is released now. Returns whether this
-- holder still had the lock.
CREATE OR REPLACE FUNCTION ${flyway:defaultSchema}.lock_unlock(p_name text, p_holder text, p_token bigint,
                                                              p_keep_ms bigint)
    RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS
$$
DECLARE
    keep interval;
    unlocked_name text;
BEGIN
    IF p_keep_ms IS NULL OR p_keep_ms < 0 OR p_keep_ms > 86400000 THEN
        RAISE EXCEPTION 'pglease: lockAtLeastFor must be between 0 and 86400000 milliseconds, got %',
                        coalesce(p_keep_ms::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    keep := p_keep_ms * interval '1 millisecond';
    PERFORM ${flyway:defaultSchema}.durable_commit();
    UPDATE ${flyway:defaultSchema}.leases AS l
       SET holder = CASE WHEN l.renewed_at + keep > n.now THEN l.holder END,
           holder_role = CASE WHEN l.renewed_at + keep > n.now THEN l.holder_role END,
           expires_at = CASE WHEN l.renewed_at + keep > n.now THEN least(l.expires_at, l.renewed_at + keep)
                             ELSE n.now END
      FROM (SELECT clock_timestamp() AS now) n
     WHERE l.name = p_name AND l.kind = 'lock' AND l.holder = p_holder AND l.token = p_token
       AND l.holder_role = session_user AND l.expires_at > n.now
    RETURNING l.name INTO unlocked_name;
    RETURN unlocked_name IS NOT NULL;
END
$$;

REVOKE ALL ON FUNCTION ${flyway:defaultSchema}.lock_extend(text, text, bigint, bigint),
                       ${flyway:defaultSchema}.lock_unlock(text, text, bigint, bigint)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ${flyway:defaultSchema}.lock_extend(text, text, bigint, bigint),
                          ${flyway:defaultSchema}.lock_unlock(text, text, bigint, bigint)
    TO "${candidate_role}";
