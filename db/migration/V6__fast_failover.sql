-- pglease schema, version 6: crash takeover when the holder's database session ends (fast failover, opt-in).
--
-- A holder in fast-failover mode takes a session-level advisory lock for the lease on its lease connection BEFORE
-- it acquires, and keeps it until it has stepped down. After the grant it registers the (name, token) pair here,
-- which the server accepts only while that session holds the lock. PostgreSQL drops a session's advisory locks the
-- moment its backend ends (process crash, kill -9, connection closed or terminated). A candidate may then take a
-- lease that has not expired yet, with the next token (the rule of every grant), only if
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

-- The token of a takeover: the same rule as every other grant (next_token where the schema has term tokens).
CREATE FUNCTION ${flyway:defaultSchema}.fast_failover_next_token(p_old bigint) RETURNS bigint
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS
$$
DECLARE
    token bigint;
BEGIN
    IF to_regprocedure('${flyway:defaultSchema}.next_token(bigint)') IS NULL THEN
        RETURN p_old + 1;
    END IF;
    EXECUTE 'SELECT ${flyway:defaultSchema}.next_token($1)' INTO token USING p_old;
    RETURN token;
END
$$;

-- The access guard lets a candidate take an unexpired lease only when holder_session_ended says so: one condition
-- added to the guard as the earlier versions left it, everything else unchanged.
DO
$$
DECLARE
    def     text := pg_get_functiondef('${flyway:defaultSchema}.leases_access_guard()'::regprocedure);
    refusal text := 'OLD.holder IS NOT NULL AND OLD.expires_at > now_ts';
    found   int;
BEGIN
    found := (length(def) - length(replace(def, refusal, ''))) / length(refusal);
    IF found <> 1 THEN
        RAISE EXCEPTION 'pglease: the access guard should refuse an unexpired lease in exactly one place, found %', found;
    END IF;
    EXECUTE replace(def, refusal,
                    refusal || ' AND NOT ${flyway:defaultSchema}.holder_session_ended(OLD.name, OLD.token)');
END
$$;

GRANT EXECUTE ON FUNCTION ${flyway:defaultSchema}.fast_failover_key(text),
                          ${flyway:defaultSchema}.fast_failover_lock_held(text),
                          ${flyway:defaultSchema}.fast_failover_lock(text, integer),
                          ${flyway:defaultSchema}.fast_failover_register(text, text, bigint),
                          ${flyway:defaultSchema}.holder_session_ended(text, bigint),
                          ${flyway:defaultSchema}.fast_failover_next_token(bigint)
    TO "${candidate_role}";
GRANT SELECT ON ${flyway:defaultSchema}.fast_failover_sessions TO "${candidate_role}", "${observer_role}", "${operator_role}";
