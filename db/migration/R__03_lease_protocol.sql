-- The lease protocol: the only way a candidate changes a lease. Every function is one call in the caller's
-- transaction (a single auto-commit statement for a lease statement), reads time only with clock_timestamp(), runs
-- with the owner's rights, and checks the caller's login (session_user) against the lease row: a lease is renewed,
-- released and fenced only by the login that acquired it. 0 rows (false, no token) is a normal answer.
--
--   acquire   takes a free or expired lease (or, for an election, this holder's own grant of an earlier term)
--   renew     extends this holder's unexpired grant of the current term; renew_all does many in one statement
--   release   gives this holder's grant back now
--   fence     locks the lease row for the rest of the caller's transaction if the caller holds the lease with this
--             token and it has not expired, bounds the transaction on the server and marks it fenced
--   status    who holds a lease now, by the database clock
--
-- Durations are whole milliseconds, 1 ms to 1 day. Lease statements and fenced transactions commit durably:
-- synchronous_commit is raised to on for the transaction where the session would acknowledge a commit earlier.

SET LOCAL search_path = pg_catalog, pg_temp; -- nothing a login planted in another schema is ever called

CREATE OR REPLACE FUNCTION ${flyway:defaultSchema}.check_name(p_what text, p_value text, p_max integer)
    RETURNS void
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS
$$
BEGIN
    IF p_value IS NULL OR char_length(p_value) NOT BETWEEN 1 AND p_max OR p_value ~ '[[:cntrl:]]'
            OR p_value !~ '[^[:space:]]'
            OR p_value ~ '[\u00AD\u061C\u115F\u1160\u180E\u200B-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u206F\u2800\u3164\uFEFF\uFFA0]' THEN
        RAISE EXCEPTION 'pglease: % must be 1 to % characters, not blank, without control, invisible or '
                        'direction-changing characters, got %', p_what, p_max,
                        coalesce(quote_literal(regexp_replace(left(p_value, 210), '[^[:print:]]', '?', 'g')), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION ${flyway:defaultSchema}.check_duration(p_what text, p_millis bigint) RETURNS interval
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS
$$
BEGIN
    IF p_millis IS NULL OR p_millis NOT BETWEEN 1 AND 86400000 THEN
        RAISE EXCEPTION 'pglease: % must be between 1 and 86400000 milliseconds (1 ms to 1 day), got %',
                        p_what, coalesce(p_millis::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN p_millis * interval '1 millisecond';
END
$$;

-- An acknowledged grant, renewal, release or fenced write must survive a crash of the server.
CREATE OR REPLACE FUNCTION ${flyway:defaultSchema}.durable_commit() RETURNS void
    LANGUAGE sql
    SET search_path = pg_catalog, pg_temp
AS
$$
SELECT set_config('synchronous_commit', 'on', true)
 WHERE current_setting('synchronous_commit') IN ('off', 'local');
$$;

-- Whether p_holder may take the lease while a handoff is pending: not the holder it was handed off from, and one
-- whose id starts with the target prefix when one was given (a prefix is a label the holder chose: no access control).
CREATE OR REPLACE FUNCTION ${flyway:defaultSchema}.handoff_allows(p_from text, p_to text, p_until timestamptz,
                                                                 p_holder text)
    RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS
$$
SELECT p_until IS NULL OR p_until <= clock_timestamp()
    OR (p_holder IS DISTINCT FROM p_from AND (p_to IS NULL OR starts_with(p_holder, p_to)));
$$;

-- Takes the lease if it is free or expired (or, for an election, held by this holder and login with a token of an
-- earlier term, after a failover); the token is the next one by the term rule. Otherwise says who holds it and how
-- many milliseconds remain (database clock), counting a pending handoff. A lease held under the caller's holder id by
-- another login is not the caller's: its holder is then answered as "<holder id> (another login)", so that no caller
-- takes it for a grant of its own whose answer it lost. p_kind: 'election', 'lock' or 'shard'; a lease name is of
-- one kind (SQLSTATE PL003 when asked for as another), except that the shard names "<group>/<k>" of an existing
-- group are the group's: a member's acquire takes such a row of another kind when it is free (and makes it a shard). A shard is refused (SQLSTATE 42501) to a login that
-- names as holder a live member of its group that another login joined.
CREATE OR REPLACE FUNCTION ${flyway:defaultSchema}.acquire(p_name text, p_holder text, p_ttl_ms bigint,
                                                          p_kind text DEFAULT 'election')
    RETURNS TABLE (granted boolean, token bigint, holder text, wait_ms bigint)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS
$$
#variable_conflict use_column
DECLARE
    ttl     interval := ${flyway:defaultSchema}.check_duration('the lease duration', p_ttl_ms);
    term    bigint;
    granted_token bigint;
    current ${flyway:defaultSchema}.leases;
BEGIN
    PERFORM ${flyway:defaultSchema}.check_name('a lease name', p_name, 200);
    PERFORM ${flyway:defaultSchema}.check_name('a holder id', p_holder, 255);
    IF p_kind IS NULL OR p_kind NOT IN ('election', 'lock', 'shard') THEN
        RAISE EXCEPTION 'pglease: the kind of a lease must be election, lock or shard, got %', coalesce(p_kind, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_kind = 'shard' AND EXISTS (SELECT 1 FROM ${flyway:defaultSchema}.group_members m
                                     WHERE m.group_name = substring(p_name FROM '^(.*)/[0-9]+$')
                                       AND m.member = p_holder AND m.member_role <> session_user
                                       AND m.expires_at > clock_timestamp()) THEN
        RAISE EXCEPTION 'pglease: holder id % is a live member of the group of shard % that another login joined: '
                        'only that login may hold the group''s shards under it', quote_literal(p_holder),
                        quote_literal(p_name)
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM ${flyway:defaultSchema}.durable_commit();
    term := ${flyway:defaultSchema}.current_term();
    -- Lock the row first (only if it can be taken): a change of token waits for the fenced transactions on it, and
    -- the grant's times are read after that wait.
    PERFORM 1
       FROM ${flyway:defaultSchema}.leases l
      WHERE l.name = p_name
        AND (l.kind = p_kind
             -- a group reclaims a free row of another kind named as one of its shards (see leases_guard)
             OR (p_kind = 'shard' AND (l.holder IS NULL OR l.expires_at <= clock_timestamp())
                 AND (l.handoff_until IS NULL OR l.handoff_until <= clock_timestamp())
                 AND ${flyway:defaultSchema}.is_group_shard(p_name)))
        AND (l.holder IS NULL OR l.expires_at <= clock_timestamp()
             OR (p_kind = 'election' AND l.holder = p_holder AND l.holder_role = session_user
                 AND ${flyway:defaultSchema}.token_term(l.token) < term))
        AND ${flyway:defaultSchema}.handoff_allows(l.handoff_from, l.handoff_to, l.handoff_until, p_holder)
        FOR UPDATE;
    IF FOUND THEN
        UPDATE ${flyway:defaultSchema}.leases AS l
           SET kind = p_kind, holder = p_holder, holder_role = session_user, token = l.token + 1,
               acquired_at = clock_timestamp(), renewed_at = clock_timestamp(), expires_at = clock_timestamp() + ttl,
               handoff_from = NULL, handoff_to = NULL, handoff_until = NULL
         WHERE l.name = p_name
        RETURNING l.token INTO granted_token;
    END IF;
    IF granted_token IS NOT NULL THEN
        RETURN QUERY SELECT true, granted_token, p_holder, 0::bigint;
        RETURN;
    END IF;
    SELECT * INTO current FROM ${flyway:defaultSchema}.leases l WHERE l.name = p_name;
    IF NOT FOUND THEN
        BEGIN
            INSERT INTO ${flyway:defaultSchema}.leases AS l
                   (name, kind, holder, holder_role, token, acquired_at, renewed_at, expires_at)
            VALUES (p_name, p_kind, p_holder, session_user, 1, clock_timestamp(), clock_timestamp(),
                    clock_timestamp() + ttl)
            RETURNING l.token INTO granted_token;
            RETURN QUERY SELECT true, granted_token, p_holder, 0::bigint;
            RETURN;
        EXCEPTION WHEN unique_violation THEN
            -- another first acquire of this name committed first: it holds the lease now
            SELECT * INTO current FROM ${flyway:defaultSchema}.leases l WHERE l.name = p_name;
        END;
    END IF;
    -- a group's shard held as another kind: refused as any held lease is, until it is free for the group
    IF current.kind <> p_kind AND NOT (p_kind = 'shard' AND ${flyway:defaultSchema}.is_group_shard(p_name)) THEN
        RAISE EXCEPTION 'pglease: "%" is a lease of kind %, not %: an elector, a lock and a lease group must not '
                        'share a name', p_name, current.kind, p_kind
            USING ERRCODE = 'PL003',
                  HINT = 'Give locks a prefix of their own (PgLeaseLockProvider(pglease, "lock:")), or rename.';
    END IF;
    RETURN QUERY
    SELECT false, current.token,
           CASE WHEN current.holder IS NULL OR current.expires_at <= clock_timestamp() THEN NULL
                WHEN current.holder = p_holder AND current.holder_role <> session_user
                THEN current.holder || ' (another login)'
                ELSE current.holder END,
           greatest(0, ceil(extract(epoch FROM greatest(current.expires_at,
                                                        coalesce(current.handoff_until, current.expires_at))
                                              - clock_timestamp()) * 1000))::bigint;
END
$$;

-- Renews the listed grants of p_holder (lease names and their tokens) for p_ttl_ms more, in one statement; returns
-- the names renewed. A grant is renewed only while it is unexpired, of the current term, held by this holder and
-- login, and, when registered for fast failover, asked for by the session that registered it.
CREATE OR REPLACE FUNCTION ${flyway:defaultSchema}.renew_all(p_holder text, p_names text[], p_tokens bigint[],
                                                            p_ttl_ms bigint)
    RETURNS SETOF text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS
$$
DECLARE
    ttl  interval := ${flyway:defaultSchema}.check_duration('the lease duration', p_ttl_ms);
    term bigint;
BEGIN
    IF cardinality(p_names) IS DISTINCT FROM cardinality(p_tokens) THEN
        RAISE EXCEPTION 'pglease: renew_all needs one token per lease name, got % names and % tokens',
                        coalesce(cardinality(p_names), 0), coalesce(cardinality(p_tokens), 0)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM ${flyway:defaultSchema}.durable_commit();
    term := ${flyway:defaultSchema}.current_term();
    RETURN QUERY
    UPDATE ${flyway:defaultSchema}.leases AS l
       SET renewed_at = clock_timestamp(), expires_at = clock_timestamp() + ttl
      FROM unnest(p_names, p_tokens) AS r(name, token)
     WHERE l.name = r.name AND l.token = r.token AND l.holder = p_holder AND l.holder_role = session_user
       AND l.expires_at > clock_timestamp() AND ${flyway:defaultSchema}.token_term(l.token) >= term
       AND NOT EXISTS (SELECT 1 FROM ${flyway:defaultSchema}.fast_failover_sessions f
                        WHERE f.name = l.name AND f.token = l.token AND f.pid <> pg_backend_pid())
    RETURNING l.name;
END
$$;

CREATE OR REPLACE FUNCTION ${flyway:defaultSchema}.renew(p_name text, p_holder text, p_token bigint, p_ttl_ms bigint)
    RETURNS boolean
    LANGUAGE sql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS
$$
SELECT EXISTS (SELECT 1 FROM ${flyway:defaultSchema}.renew_all(p_holder, ARRAY[p_name], ARRAY[p_token], p_ttl_ms));
$$;

-- Gives the lease back now if this holder and login still have it with this token. Returns whether it did.
CREATE OR REPLACE FUNCTION ${flyway:defaultSchema}.release(p_name text, p_holder text, p_token bigint)
    RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS
$$
DECLARE
    released_name text;
BEGIN
    PERFORM ${flyway:defaultSchema}.durable_commit();
    UPDATE ${flyway:defaultSchema}.leases AS l
       SET holder = NULL, holder_role = NULL, expires_at = clock_timestamp(), renewed_at = clock_timestamp()
     WHERE l.name = p_name AND l.holder = p_holder AND l.token = p_token AND l.holder_role = session_user
    RETURNING l.name INTO released_name;
    IF released_name IS NULL THEN
        RETURN false;
    END IF;
    DELETE FROM ${flyway:defaultSchema}.fast_failover_sessions f WHERE f.name = p_name;
    RETURN true;
END
$$;

-- Fences the caller's open transaction for lease p_name with token p_token: locks the lease row FOR KEY SHARE (every
-- change of holder or token then waits until the transaction ends, while the holder's renewals go on) if, and only
-- if, the caller's login holds the lease with this token and it has not expired; bounds the rest of the transaction
-- on the server (statement, lock and idle-in-transaction timeouts, and on PostgreSQL 17+ transaction_timeout) by the
-- lease's remaining time, or p_max_ms when that is shorter; makes its commit durable and the transaction impossible to
-- prepare; and marks the transaction as fenced for the lease, which is what a protected table (R__08) checks. Otherwise fails with SQLSTATE PL001 and a
-- message naming the lease, the token presented and the current one. Returns p_token.
CREATE OR REPLACE FUNCTION ${flyway:defaultSchema}.fence(p_name text, p_token bigint, p_max_ms bigint DEFAULT NULL)
    RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS
$$
DECLARE
    expires timestamptz;
    bound   bigint;
    current ${flyway:defaultSchema}.leases;
    fenced  jsonb;
    began   timestamptz := clock_timestamp();
    left_ms bigint;
BEGIN
    -- A transaction_timeout timer already running (a role or session default) is not re-armed by a value set inside
    -- the transaction: stop it, so that the bound below starts it afresh from this call (PostgreSQL 17+).
    IF current_setting('server_version_num')::int >= 170000 THEN
        PERFORM set_config('transaction_timeout', '0', true);
    END IF;
    IF p_max_ms IS NOT NULL THEN
        PERFORM ${flyway:defaultSchema}.check_duration('the fence bound', p_max_ms);
        PERFORM ${flyway:defaultSchema}.bound_transaction(p_max_ms);
    END IF;
    SELECT l.expires_at INTO expires
      FROM ${flyway:defaultSchema}.leases l
     WHERE l.name = p_name AND l.token = p_token AND l.holder IS NOT NULL AND l.holder_role = session_user
       AND l.expires_at > clock_timestamp()
       FOR KEY SHARE;
    IF expires IS NULL THEN
        SELECT * INTO current FROM ${flyway:defaultSchema}.leases l WHERE l.name = p_name;
        RAISE EXCEPTION 'pglease: lease "%" is not held with token % by login %: %', p_name,
                        coalesce(p_token::text, 'NULL'), session_user,
                        CASE WHEN current.name IS NULL THEN 'no such lease'
                             WHEN current.holder IS NULL THEN 'it is free (token ' || current.token || ')'
                             WHEN current.expires_at <= clock_timestamp() THEN 'it expired (token ' || current.token || ')'
                             WHEN current.token <> p_token THEN 'the current token is ' || current.token
                             ELSE 'it is held by another login (token ' || current.token || ')' END
            USING ERRCODE = 'PL001';
    END IF;
    bound := greatest(1, ceil(extract(epoch FROM expires - clock_timestamp()) * 1000))::bigint;
    IF p_max_ms IS NOT NULL THEN
        -- what is left of the caller's bound, which started at the top of this call
        left_ms := p_max_ms - floor(extract(epoch FROM clock_timestamp() - began) * 1000)::bigint;
        bound := least(bound, greatest(1, left_ms));
    END IF;
    -- The timer the caller's bound started is not re-armed by a shorter value: stop it, so the bound below starts it
    -- afresh from now, never later than the caller's own deadline (PostgreSQL 17+, which also leaves the statement and
    -- idle timeouts unarmed when they are not below transaction_timeout).
    IF current_setting('server_version_num')::int >= 170000 THEN
        PERFORM set_config('transaction_timeout', '0', true);
    END IF;
    PERFORM ${flyway:defaultSchema}.bound_transaction(bound);
    PERFORM ${flyway:defaultSchema}.durable_commit();
    PERFORM ${flyway:defaultSchema}.unpreparable();
    fenced := coalesce(nullif(current_setting('pglease.fenced_${flyway:defaultSchema}', true), '')::jsonb, '{}');
    PERFORM set_config('pglease.fenced_${flyway:defaultSchema}', (fenced || jsonb_build_object(p_name, p_token))::text,
                       true);
    RETURN p_token;
END
$$;

-- Makes the caller's transaction impossible to PREPARE (two-phase commit): PostgreSQL refuses to prepare a transaction
-- that touched a temporary table, and a prepared transaction would keep the lease row locked past every bound, across
-- disconnects and restarts. The session's table is created on its first fence (a server that denies the owner
-- TEMPORARY on the database loses only this protection).
CREATE OR REPLACE FUNCTION ${flyway:defaultSchema}.unpreparable() RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS
$$
BEGIN
    IF to_regclass('pg_temp.pglease_fenced_transaction') IS NULL THEN
        BEGIN
            CREATE TEMPORARY TABLE pglease_fenced_transaction (x integer);
        EXCEPTION WHEN insufficient_privilege THEN
            RETURN;
        END;
    END IF;
    PERFORM 1 FROM pg_temp.pglease_fenced_transaction;
END
$$;

-- Bounds the rest of the caller's transaction on the server to p_ms: each statement, each lock wait, each idle gap,
-- and on PostgreSQL 17+ the transaction as a whole (counted from now where no transaction_timeout was running
-- already: a running timer is not re-armed, so clients also abort at their own deadline).
CREATE OR REPLACE FUNCTION ${flyway:defaultSchema}.bound_transaction(p_ms bigint) RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS
$$
DECLARE
    ms text := greatest(1, p_ms)::text || 'ms';
BEGIN
    PERFORM set_config('statement_timeout', ms, true);
    PERFORM set_config('lock_timeout', ms, true);
    PERFORM set_config('idle_in_transaction_session_timeout', ms, true);
    IF current_setting('server_version_num')::int >= 170000 THEN
        PERFORM set_config('transaction_timeout', ms, true);
    END IF;
END
$$;

-- What psql users and other languages read: who holds each lease now, by the database clock.
DROP VIEW IF EXISTS ${flyway:defaultSchema}.lease_status;
CREATE VIEW ${flyway:defaultSchema}.lease_status AS
WITH t AS MATERIALIZED (SELECT clock_timestamp() AS now)
SELECT l.name,
       l.holder,
       l.token,
       (l.holder IS NOT NULL AND l.expires_at > t.now)                                AS held,
       CASE WHEN l.holder IS NOT NULL AND l.expires_at > t.now
            THEN date_trunc('milliseconds', l.expires_at - t.now) END     AS remaining,
       l.acquired_at,
       l.renewed_at,
       l.expires_at,
       (SELECT max(e.at) FROM ${flyway:defaultSchema}.lease_events e WHERE e.name = l.name) AS last_change,
       l.holder_role,
       ${flyway:defaultSchema}.token_text(l.token)                                    AS term_token,
       ${flyway:defaultSchema}.token_term(l.token)                                    AS term,
       ${flyway:defaultSchema}.token_counter(l.token)                                 AS counter,
       l.kind
FROM t, ${flyway:defaultSchema}.leases l;

-- Who holds p_name now (no row when nobody does), with the milliseconds left by the database clock.
CREATE OR REPLACE FUNCTION ${flyway:defaultSchema}.status(p_name text)
    RETURNS TABLE (holder text, token bigint, remaining_ms bigint, expires_at timestamptz)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS
$$
SELECT l.holder, l.token, greatest(0, ceil(extract(epoch FROM l.expires_at - clock_timestamp()) * 1000))::bigint,
       l.expires_at
  FROM ${flyway:defaultSchema}.leases l
 WHERE l.name = p_name AND l.holder IS NOT NULL AND l.expires_at > clock_timestamp();
$$;

REVOKE ALL ON FUNCTION ${flyway:defaultSchema}.check_name(text, text, integer),
                       ${flyway:defaultSchema}.check_duration(text, bigint),
                       ${flyway:defaultSchema}.durable_commit(),
                       ${flyway:defaultSchema}.handoff_allows(text, text, timestamptz, text),
                       ${flyway:defaultSchema}.acquire(text, text, bigint, text),
                       ${flyway:defaultSchema}.renew_all(text, text[], bigint[], bigint),
                       ${flyway:defaultSchema}.renew(text, text, bigint, bigint),
                       ${flyway:defaultSchema}.release(text, text, bigint),
                       ${flyway:defaultSchema}.fence(text, bigint, bigint),
                       ${flyway:defaultSchema}.bound_transaction(bigint),
                       ${flyway:defaultSchema}.unpreparable(),
                       ${flyway:defaultSchema}.status(text)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ${flyway:defaultSchema}.acquire(text, text, bigint, text),
                          ${flyway:defaultSchema}.renew_all(text, text[], bigint[], bigint),
                          ${flyway:defaultSchema}.renew(text, text, bigint, bigint),
                          ${flyway:defaultSchema}.release(text, text, bigint),
                          ${flyway:defaultSchema}.fence(text, bigint, bigint)
    TO "${candidate_role}";
GRANT EXECUTE ON FUNCTION ${flyway:defaultSchema}.status(text)
    TO "${candidate_role}", "${observer_role}", "${operator_role}";
GRANT SELECT ON ${flyway:defaultSchema}.lease_status TO "${candidate_role}", "${observer_role}", "${operator_role}";
