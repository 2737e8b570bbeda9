-- pglease schema, version 6: crash takeover when the holder's database session ends (fast failover, opt-in).
--
-- A holder in fast-failover mode takes a session-level advisory lock for the lease on its lease connection BEFORE
-- it acquires, and keeps it until it has stepped down. After the grant it registers the (name, token) pair here,
-- which the server accepts only while that session holds the lock. PostgreSQL drops a session's advisory locks the
-- moment its backend ends (process crash, kill -9, connection closed or terminated). A candidate may then take a
-- lease that has not expired yet, with the usual token + 1, only if
--   * the current token was registered by a fast-failover holder, and
--   * the candidate's own session now holds the lease's advisory lock exclusively,
-- which together prove the registered holder's session no longer holds it: it ended, or the holder stepped down.
-- Standbys wait for the lock (shared) on a connection of their own, so PostgreSQL wakes them when it is freed.
--
-- What this weakens: a holder that is alive but lost its lease connection can be replaced before its local deadline
-- passes. Its fenced writes are refused by the token check, and it steps down at its next renewal, which it
-- refuses to run on a session other than the one that registered. A paused holder keeps its session and its lock:
-- it is replaced only when the lease expires, as without this mode.

CREATE TABLE ${flyway:defaultSchema}.fast_failover_sessions (
    name  text   NOT NULL PRIMARY KEY,
    token bigint NOT NULL
);

-- The advisory lock key of a lease: high 32 bits from the schema, low 32 bits from the lease name.
CREATE FUNCTION ${flyway:defaultSchema}.fast_failover_key(p_name text) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS
$$
SELECT (hashtext('${flyway:defaultSchema}')::bigint << 32) | (hashtext(p_name)::bigint & 4294967295)
$$;

-- Whether the calling session holds the lease's advisory lock exclusively.
CREATE FUNCTION ${flyway:defaultSchema}.fast_failover_lock_held(p_name text) RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS
$$
SELECT EXISTS (SELECT 1
                 FROM pg_locks k
                WHERE k.locktype = 'advisory'
                  AND k.pid = pg_backend_pid()
                  AND k.granted
                  AND k.mode = 'ExclusiveLock'
                  AND k.database = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())
                  AND k.classid::bigint = (${flyway:defaultSchema}.fast_failover_key(p_name) >> 32) & 4294967295
                  AND k.objid::bigint = ${flyway:defaultSchema}.fast_failover_key(p_name) & 4294967295
                  AND k.objsubid = 1)
$$;

-- Takes the lease's advisory lock for the calling session, waiting at most p_wait_ms (other candidates hold it
-- briefly while they try). Returns whether it was taken.
CREATE FUNCTION ${flyway:defaultSchema}.fast_failover_lock(p_name text, p_wait_ms integer) RETURNS boolean
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS
$$
BEGIN
    IF p_wait_ms IS NULL OR p_wait_ms < 0 OR p_wait_ms > 60000 THEN
        RAISE EXCEPTION 'pglease: fast_failover_lock wait must be between 0 and 60000 ms, got %', p_wait_ms
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_wait_ms = 0 THEN
        RETURN pg_try_advisory_lock(${flyway:defaultSchema}.fast_failover_key(p_name));
    END IF;
    PERFORM set_config('lock_timeout', p_wait_ms || 'ms', true);
    PERFORM pg_advisory_lock(${flyway:defaultSchema}.fast_failover_key(p_name));
    RETURN true;
EXCEPTION
    WHEN lock_not_available THEN
        RETURN false;
END
$$;

-- Registers the current grant of a lease for crash takeover: only its holder, with the current unexpired token,
-- from a session that holds the lease's advisory lock. Returns whether it was registered.
CREATE FUNCTION ${flyway:defaultSchema}.fast_failover_register(p_name text, p_holder text, p_token bigint)
    RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS
$$
BEGIN
    IF NOT ${flyway:defaultSchema}.fast_failover_lock_held(p_name) THEN
        RETURN false;
    END IF;
    INSERT INTO ${flyway:defaultSchema}.fast_failover_sessions AS s (name, token)
    SELECT l.name, l.token
      FROM ${flyway:defaultSchema}.leases l
     WHERE l.name = p_name AND l.holder = p_holder AND l.token = p_token AND l.expires_at > clock_timestamp()
    ON CONFLICT (name) DO UPDATE SET token = excluded.token;
    RETURN FOUND;
END
$$;

-- True when the lease's current grant was registered for crash takeover and the calling session holds the lease's
-- advisory lock exclusively: the registered holder's session no longer holds it.
CREATE FUNCTION ${flyway:defaultSchema}.holder_session_ended(p_name text, p_token bigint) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS
$$
SELECT EXISTS (SELECT 1 FROM ${flyway:defaultSchema}.fast_failover_sessions s
                WHERE s.name = p_name AND s.token = p_token)
   AND ${flyway:defaultSchema}.fast_failover_lock_held(p_name)
$$;

-- The access guard lets a candidate take an unexpired lease only when holder_session_ended says so (one condition
-- added to the version 4 guard; everything else unchanged).
CREATE OR REPLACE FUNCTION ${flyway:defaultSchema}.leases_access_guard() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS
$$
DECLARE
    privileged boolean;
    now_ts     timestamptz := clock_timestamp();
    max_ttl    constant interval := interval '1 day';
    slack      constant interval := interval '1 second';
BEGIN
    privileged := pg_has_role(current_user,
                              (SELECT c.relowner FROM pg_class c WHERE c.oid = TG_RELID), 'MEMBER');

    IF TG_OP IN ('DELETE', 'TRUNCATE') THEN
        IF NOT privileged THEN
            RAISE EXCEPTION 'pglease: role % may not % lease rows: they are never deleted (release a lease instead)',
                            current_user, lower(TG_OP)
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        RETURN CASE WHEN TG_LEVEL = 'ROW' THEN OLD END;
    END IF;

    IF NOT privileged AND nullif(current_setting('pglease.event_kind', true), '') IS NOT NULL THEN
        RAISE EXCEPTION 'pglease: role % may not label lease events (pglease.event_kind is set by the operator '
                        'functions only)', current_user
            USING ERRCODE = 'insufficient_privilege';
    END IF;

    IF TG_OP = 'INSERT' THEN
        IF NOT privileged AND (NEW.token <> 1 OR NEW.holder IS NULL
                OR NEW.handoff_from IS NOT NULL OR NEW.handoff_to IS NOT NULL OR NEW.handoff_until IS NOT NULL
                OR NEW.expires_at > now_ts + max_ttl
                OR NEW.acquired_at > now_ts + slack OR NEW.acquired_at < now_ts - max_ttl
                OR NEW.renewed_at > now_ts + slack OR NEW.renewed_at < now_ts - max_ttl) THEN
            RAISE EXCEPTION 'pglease: role % may only create lease "%" by acquiring it (token 1, a holder, '
                            'timestamps from clock_timestamp(), a lease duration of at most %)',
                            current_user, NEW.name, max_ttl
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        NEW.holder_role := CASE WHEN NEW.holder IS NULL THEN NULL ELSE current_user::text END;
        RETURN NEW;
    END IF;

    -- UPDATE
    IF NEW.holder IS NOT NULL AND (NEW.holder IS DISTINCT FROM OLD.holder OR NEW.token <> OLD.token) THEN
        -- a grant (acquire or takeover)
        IF NOT privileged THEN
            IF NEW.token <> OLD.token + 1
                    OR (OLD.holder IS NOT NULL AND OLD.expires_at > now_ts
                        AND NOT ${flyway:defaultSchema}.holder_session_ended(OLD.name, OLD.token))
                    OR NEW.handoff_from IS NOT NULL OR NEW.handoff_to IS NOT NULL OR NEW.handoff_until IS NOT NULL
                    OR NEW.expires_at > now_ts + max_ttl
                    OR NEW.acquired_at > now_ts + slack OR NEW.acquired_at < now_ts - max_ttl
                    OR NEW.renewed_at > now_ts + slack OR NEW.renewed_at < now_ts - max_ttl THEN
                RAISE EXCEPTION 'pglease: role % may not take lease "%" this way: a candidate may only acquire a '
                                'free or expired lease, with token % and a lease duration of at most %',
                                current_user, OLD.name, OLD.token + 1, max_ttl
                    USING ERRCODE = 'insufficient_privilege';
            END IF;
            IF OLD.handoff_until IS NOT NULL AND OLD.handoff_until > now_ts
                    AND (NEW.holder IS NOT DISTINCT FROM OLD.handoff_from
                         OR (OLD.handoff_to IS NOT NULL AND NOT starts_with(NEW.holder, OLD.handoff_to))) THEN
                RAISE EXCEPTION 'pglease: lease "%" is being handed off until %; % may not take it', OLD.name,
                                OLD.handoff_until, NEW.holder
                    USING ERRCODE = 'insufficient_privilege';
            END IF;
        END IF;
        NEW.holder_role := current_user::text;
        RETURN NEW;
    END IF;

    IF NEW.holder IS NULL THEN
        IF OLD.holder IS NULL THEN
            -- free stays free: only the owner may touch a free row
            IF NOT privileged AND NEW IS DISTINCT FROM OLD THEN
                RAISE EXCEPTION 'pglease: role % may not change the free lease "%"', current_user, OLD.name
                    USING ERRCODE = 'insufficient_privilege';
            END IF;
            RETURN NEW;
        END IF;
        -- a release (by the holder) or a force release (operator functions run as the owner)
        IF NOT privileged THEN
            IF OLD.holder_role IS NOT NULL AND OLD.holder_role <> current_user THEN
                RAISE EXCEPTION 'pglease: lease "%" was acquired by role %; role % may not release it '
                                '(operators use force_release)', OLD.name, OLD.holder_role, current_user
                    USING ERRCODE = 'insufficient_privilege';
            END IF;
            IF NEW.token <> OLD.token OR NEW.expires_at > now_ts + slack
                    OR NEW.acquired_at IS DISTINCT FROM OLD.acquired_at
                    OR (NEW.renewed_at IS DISTINCT FROM OLD.renewed_at
                        AND (NEW.renewed_at > now_ts + slack OR NEW.renewed_at < now_ts - slack))
                    OR NEW.handoff_from IS DISTINCT FROM OLD.handoff_from
                    OR NEW.handoff_to IS DISTINCT FROM OLD.handoff_to
                    OR NEW.handoff_until IS DISTINCT FROM OLD.handoff_until THEN
                RAISE EXCEPTION 'pglease: role % may not release lease "%" this way: a release keeps the token '
                                'and ends the lease now', current_user, OLD.name
                    USING ERRCODE = 'insufficient_privilege';
            END IF;
        END IF;
        NEW.holder_role := NULL;
        RETURN NEW;
    END IF;

    -- same holder, same token: a renewal (or a no-op)
    IF NOT privileged AND NEW IS DISTINCT FROM OLD THEN
        IF OLD.holder_role IS NOT NULL AND OLD.holder_role <> current_user THEN
            RAISE EXCEPTION 'pglease: lease "%" was acquired by role %; role % may not renew or change it',
                            OLD.name, OLD.holder_role, current_user
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF NEW.acquired_at IS DISTINCT FROM OLD.acquired_at
                OR NEW.handoff_from IS DISTINCT FROM OLD.handoff_from
                OR NEW.handoff_to IS DISTINCT FROM OLD.handoff_to
                OR NEW.handoff_until IS DISTINCT FROM OLD.handoff_until
                OR NEW.holder_role IS DISTINCT FROM OLD.holder_role
                OR NEW.expires_at > now_ts + max_ttl
                OR (NEW.renewed_at IS DISTINCT FROM OLD.renewed_at
                        AND (NEW.renewed_at > now_ts + slack OR NEW.renewed_at < now_ts - slack)) THEN
            RAISE EXCEPTION 'pglease: role % may not change lease "%" this way: a renewal only moves renewed_at '
                            'and expires_at (at most % ahead)', current_user, OLD.name, max_ttl
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF OLD.expires_at <= now_ts THEN
            RETURN NULL; -- expired in the meantime: not renewed, the lease is lost
        END IF;
    END IF;
    NEW.holder_role := OLD.holder_role;
    RETURN NEW;
END
$$;

GRANT EXECUTE ON FUNCTION ${flyway:defaultSchema}.fast_failover_key(text),
                          ${flyway:defaultSchema}.fast_failover_lock_held(text),
                          ${flyway:defaultSchema}.fast_failover_lock(text, integer),
                          ${flyway:defaultSchema}.fast_failover_register(text, text, bigint),
                          ${flyway:defaultSchema}.holder_session_ended(text, bigint)
    TO "${candidate_role}";
GRANT SELECT ON ${flyway:defaultSchema}.fast_failover_sessions TO "${candidate_role}", "${observer_role}", "${operator_role}";
