-- Fast failover (opt-in): a standby takes an unexpired election lease (or the shard of a lease group) over the
-- moment its holder's database session ends, instead of waiting for the lease to expire. Single-shot locks are never
-- registered.
--
--   * The holder keeps a session-level advisory lock per lease (fast_failover_key) on its lease connection, and
--     registers its grant: the server records the registering backend (pid, backend_start). Only the holder's own
--     login, holding the lock in that session, with the current unexpired token, may register.
--   * Standbys block on the same lock (shared) on a connection of their own; PostgreSQL grants it the moment the
--     holder's session ends, which wakes them.
--   * fast_failover_take_over succeeds only while the grant is registered and the registered session is no longer
--     the holder's: its backend no longer exists (pg_stat_activity), or it lives on without the lease's lock (a
--     session pooler kept the server session of a client that died and reset it with DISCARD ALL, which frees every
--     advisory lock; a holder keeps the lock in its session until it has stepped down, and only that session can
--     free it). The lock only wakes standbys: who holds it proves nothing. A grant that was not registered (plain
--     mode) is never taken early, by anyone.
--   * A registered grant is renewed only by the session that registered it (renew_all).
--   * A holder that can not watch its own lease session withdraws its registrations (fast_failover_unregister) until
--     it can again: then its grants are taken only at expiry, which it learns of at a renewal, before expiry.
-- Where the schema owner may not see other logins' backend_start (without pg_read_all_stats), a live backend with the
-- registered pid counts as the holder's session while it holds the lease's lock: a reused pid can delay a takeover
-- until the lease expires, never the other way round.

SET LOCAL search_path = pg_catalog, pg_temp; -- nothing a login planted in another schema is ever called

-- The advisory lock key of a lease: high 32 bits from the schema, low 32 bits from the lease name.
CREATE OR REPLACE FUNCTION ${flyway:defaultSchema}.fast_failover_key(p_name text) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS
$$
SELECT (hashtext('${flyway:defaultSchema}')::bigint << 32) | (hashtext(p_name)::bigint & 4294967295)
$$;

-- Whether the calling session holds the lease's advisory lock exclusively.
CREATE OR REPLACE FUNCTION ${flyway:defaultSchema}.fast_failover_lock_held(p_name text) RETURNS boolean
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
-- briefly while they try). Returns whether the session holds it. The wait is bounded here whatever lock_timeout the
-- role has. A session that holds the lock already takes it once more: two lease names can share a key, and the unlock
-- of one must leave the other's hold. A lock freed just as the wait runs out can be granted while the statement still
-- ends with its lock timeout, and a deadlock_timeout shorter than the wait can end it as a deadlock (two candidates
-- standing by for each other's lease): the answer is then read from pg_locks, since a session lock granted meanwhile
-- stays.
CREATE OR REPLACE FUNCTION ${flyway:defaultSchema}.fast_failover_lock(p_name text, p_wait_ms integer) RETURNS boolean
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
    WHEN lock_not_available OR deadlock_detected THEN
        RETURN ${flyway:defaultSchema}.fast_failover_lock_held(p_name);
END
$$;

-- Registers the caller's current grant for crash takeover. Only the login that holds the lease, with its current
-- unexpired token, from a session that holds the lease's advisory lock. Returns whether it was registered.
CREATE OR REPLACE FUNCTION ${flyway:defaultSchema}.fast_failover_register(p_name text, p_holder text, p_token bigint)
    RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS
$$
BEGIN
    IF NOT ${flyway:defaultSchema}.fast_failover_lock_held(p_name) THEN
        RETURN false;
    END IF;
    INSERT INTO ${flyway:defaultSchema}.fast_failover_sessions AS s
           (name, token, holder_role, pid, backend_start)
    SELECT l.name, l.token, session_user, pg_backend_pid(),
           coalesce((SELECT a.backend_start FROM pg_stat_activity a WHERE a.pid = pg_backend_pid()), '-infinity')
      FROM ${flyway:defaultSchema}.leases l
     WHERE l.name = p_name AND l.kind IN ('election', 'shard') AND l.holder = p_holder AND l.token = p_token
       AND l.holder_role = session_user AND l.expires_at > clock_timestamp()
    ON CONFLICT (name) DO UPDATE
       SET token = excluded.token, holder_role = excluded.holder_role, pid = excluded.pid,
           backend_start = excluded.backend_start, registered_at = clock_timestamp();
    RETURN FOUND;
END
$$;

-- Withdraws the registration of the caller's grant p_token of lease p_name: from then on it is taken only at expiry,
-- like a grant that was never registered. What a holder does while it can not watch its own lease session (it would
-- not learn at once that the session ended). Only the registering login. Returns whether a registration was removed.
CREATE OR REPLACE FUNCTION ${flyway:defaultSchema}.fast_failover_unregister(p_name text, p_token bigint)
    RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS
$$
BEGIN
    DELETE FROM ${flyway:defaultSchema}.fast_failover_sessions s
     WHERE s.name = p_name AND s.token = p_token AND s.holder_role = session_user;
    RETURN FOUND;
END
$$;

-- Whether the grant p_token of lease p_name was registered by its holder's login and the registering session is no
-- longer the holder's: its backend is not in pg_stat_activity (read afresh: a transaction otherwise keeps the
-- snapshot it took first, which can predate the holder's session) and holds no lock in pg_locks (read live) on the
-- lease's key, or the backend lives on but no longer holds the lease's lock exclusively (a session pooler reset it).
CREATE OR REPLACE FUNCTION ${flyway:defaultSchema}.holder_session_ended(p_name text, p_token bigint)
    RETURNS boolean
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS
$$
DECLARE
    registered ${flyway:defaultSchema}.fast_failover_sessions;
    key        bigint := ${flyway:defaultSchema}.fast_failover_key(p_name);
BEGIN
    SELECT s.* INTO registered
      FROM ${flyway:defaultSchema}.fast_failover_sessions s
      JOIN ${flyway:defaultSchema}.leases l ON l.name = s.name AND l.token = s.token AND l.holder_role = s.holder_role
     WHERE s.name = p_name AND s.token = p_token;
    IF registered.name IS NULL THEN
        RETURN false;
    END IF;
    PERFORM pg_stat_clear_snapshot();
    IF EXISTS (SELECT 1 FROM pg_stat_activity a
                WHERE a.pid = registered.pid
                  AND (a.backend_start IS NULL OR registered.backend_start = '-infinity'
                       OR a.backend_start = registered.backend_start)) THEN
        RETURN NOT EXISTS (SELECT 1 FROM pg_locks k
                            WHERE k.pid = registered.pid AND k.locktype = 'advisory' AND k.granted
                              AND k.mode = 'ExclusiveLock'
                              AND k.database = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())
                              AND k.classid::bigint = (key >> 32) & 4294967295
                              AND k.objid::bigint = key & 4294967295
                              AND k.objsubid = 1);
    END IF;
    RETURN NOT EXISTS (SELECT 1 FROM pg_locks k
                        WHERE k.pid = registered.pid AND k.locktype = 'advisory'
                          AND k.classid::bigint = (key >> 32) & 4294967295
                          AND k.objid::bigint = key & 4294967295);
END
$$;

-- Takes over an unexpired election or shard lease whose registered holder's session has ended, with the next token
-- by the term rule, for p_ttl_ms, respecting a pending handoff. Returns the new token, or NULL when the lease is not
-- taken.
CREATE OR REPLACE FUNCTION ${flyway:defaultSchema}.fast_failover_take_over(p_name text, p_holder text, p_ttl_ms bigint)
    RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS
$$
DECLARE
    ttl interval := ${flyway:defaultSchema}.check_duration('the lease duration', p_ttl_ms);
    new_token bigint;
BEGIN
    PERFORM ${flyway:defaultSchema}.check_name('a holder id', p_holder, 255);
    PERFORM ${flyway:defaultSchema}.durable_commit();
    PERFORM 1
       FROM ${flyway:defaultSchema}.leases l
      WHERE l.name = p_name AND l.kind IN ('election', 'shard') AND l.holder IS NOT NULL AND l.holder <> p_holder
        AND l.expires_at > clock_timestamp()
        AND ${flyway:defaultSchema}.holder_session_ended(l.name, l.token)
        AND ${flyway:defaultSchema}.handoff_allows(l.handoff_from, l.handoff_to, l.handoff_until, p_holder)
        FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    UPDATE ${flyway:defaultSchema}.leases AS l
       SET holder = p_holder, holder_role = session_user, token = l.token + 1,
           acquired_at = clock_timestamp(), renewed_at = clock_timestamp(), expires_at = clock_timestamp() + ttl,
           handoff_from = NULL, handoff_to = NULL, handoff_until = NULL
     WHERE l.name = p_name
    RETURNING l.token INTO new_token;
    IF new_token IS NOT NULL THEN
        DELETE FROM ${flyway:defaultSchema}.fast_failover_sessions s WHERE s.name = p_name AND s.token <> new_token;
    END IF;
    RETURN new_token;
END
$$;

REVOKE ALL ON FUNCTION ${flyway:defaultSchema}.fast_failover_key(text),
                       ${flyway:defaultSchema}.fast_failover_lock_held(text),
                       ${flyway:defaultSchema}.fast_failover_lock(text, integer),
                       ${flyway:defaultSchema}.fast_failover_register(text, text, bigint),
                       ${flyway:defaultSchema}.fast_failover_unregister(text, bigint),
                       ${flyway:defaultSchema}.holder_session_ended(text, bigint),
                       ${flyway:defaultSchema}.fast_failover_take_over(text, text, bigint)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ${flyway:defaultSchema}.fast_failover_key(text),
                          ${flyway:defaultSchema}.fast_failover_lock_held(text),
                          ${flyway:defaultSchema}.fast_failover_lock(text, integer),
                          ${flyway:defaultSchema}.fast_failover_register(text, text, bigint),
                          ${flyway:defaultSchema}.fast_failover_unregister(text, bigint),
                          ${flyway:defaultSchema}.fast_failover_take_over(text, text, bigint)
    TO "${candidate_role}";
