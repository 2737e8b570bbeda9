-- pglease schema, version 5: term tokens.
--
-- Every promotion of a standby gives PostgreSQL a new, higher timeline. A token now carries the timeline it was
-- granted on (its term) in its high bits and a counter in its low bits:
--
--     token = (term - 1) * 2^32 + counter        1 <= term <= 2^31, 1 <= counter < 2^32
--
-- A server that was never failed over is on timeline 1: its tokens are 1, 2, 3, ... as in earlier versions. A token
-- stays one positive bigint that only grows, and every token granted on timeline T+1 is greater than every
-- token granted on timeline T or before, even one granted by a lost primary whose last grants never reached the
-- promoted standby. A grant of an earlier term can not be renewed: after a failover every lease moves to the new
-- term (its holder may take it again at once, with a new token).
--
-- Overflow: a lease whose counter reaches 2^32 - 1 within one term can not be granted again until the next term
-- (the grant fails with SQLSTATE 22003); at one grant per millisecond that is 49 days of non-stop handovers.
-- A timeline of 2^31 or more is refused the same way (PostgreSQL starts at 1 and adds 1 per promotion).
--
-- Servers that do not report their timeline (pg_current_wal_lsn() or pg_walfile_name() refused or not supported,
-- as on some managed services) stay in the term of the lease's last token (term 1 for a new lease): tokens are the
-- plain counter of earlier versions, unique on that server but not across a promotion of an asynchronous standby.
-- pglease warns at start when this happens.
-- A server in recovery (a read-only standby) answers every lease statement with SQLSTATE 25006.
--
-- Existing rows keep their tokens: plain counters below 2^32, read as term 1. On a server still on timeline 1
-- nothing changes. On a server with timeline T > 1 the next grant of each lease jumps to (T - 1) * 2^32 + 1, above
-- every token it had, and a lease held while this migration runs moves to term T at its next renewal, like after
-- a failover.

-- The term of new grants: the server's current timeline, 1 when the server does not report it.
CREATE FUNCTION ${flyway:defaultSchema}.current_term() RETURNS bigint
    LANGUAGE plpgsql VOLATILE PARALLEL RESTRICTED
    SET search_path = pg_catalog, pg_temp
AS
$$
DECLARE
    walfile text;
    term    bigint;
BEGIN
    IF pg_is_in_recovery() THEN
        RAISE EXCEPTION 'pglease: the database is in recovery (a read-only standby); lease statements need the primary'
            USING ERRCODE = 'read_only_sql_transaction',
                  HINT = 'Connect to the primary, e.g. with a multi-host JDBC URL and targetServerType=primary.';
    END IF;
    BEGIN
        walfile := pg_walfile_name(pg_current_wal_lsn());
    EXCEPTION WHEN insufficient_privilege OR feature_not_supported OR undefined_function THEN
        RETURN 1;
    END;
    term := ('x' || lpad(substr(walfile, 1, 8), 16, '0'))::bit(64)::bigint;
    IF term > 2147483648 THEN
        RAISE EXCEPTION 'pglease: timeline % is too high for a term (at most 2147483648)', term
            USING ERRCODE = 'numeric_value_out_of_range';
    END IF;
    RETURN term;
END
$$;

COMMENT ON FUNCTION ${flyway:defaultSchema}.current_term() IS
    'Term of new pglease grants: the server''s timeline (first 8 hex digits of the current WAL file name), '
    '1 when the server does not report it. Fails with SQLSTATE 25006 on a server in recovery.';

CREATE FUNCTION ${flyway:defaultSchema}.token_term(p_token bigint) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    AS $$ SELECT (p_token >> 32) + 1 $$;

CREATE FUNCTION ${flyway:defaultSchema}.token_counter(p_token bigint) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    AS $$ SELECT p_token & 4294967295 $$;

-- A token as people read it: term.counter, e.g. 2.17 (the 17th grant of the lease on timeline 2).
CREATE FUNCTION ${flyway:defaultSchema}.token_text(p_token bigint) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    AS $$ SELECT ((p_token >> 32) + 1)::text || '.' || (p_token & 4294967295)::text $$;

-- The token of the next grant after p_old (0 for a new lease) in term p_term.
CREATE FUNCTION ${flyway:defaultSchema}.next_token(p_old bigint, p_term bigint) RETURNS bigint
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE STRICT
    SET search_path = pg_catalog, pg_temp
AS
$$
BEGIN
    IF (p_old >> 32) + 1 < p_term THEN
        RETURN ((p_term - 1) << 32) + 1;
    END IF;
    IF (p_old & 4294967295) = 4294967295 THEN
        RAISE EXCEPTION 'pglease: token % (term %) has used every counter value of its term; the lease can be '
                        'granted again in the next term', p_old, (p_old >> 32) + 1
            USING ERRCODE = 'numeric_value_out_of_range';
    END IF;
    RETURN p_old + 1;
END
$$;

-- The token of the next grant after p_old (0 for a new lease) in the current term.
CREATE FUNCTION ${flyway:defaultSchema}.next_token(p_old bigint) RETURNS bigint
    LANGUAGE sql VOLATILE PARALLEL RESTRICTED STRICT
    AS $$ SELECT ${flyway:defaultSchema}.next_token(p_old, ${flyway:defaultSchema}.current_term()) $$;

COMMENT ON FUNCTION ${flyway:defaultSchema}.next_token(bigint) IS
    'Token of the next pglease grant after the given one: the next counter value in the current term, or the '
    'first token of the current term when the given one is of an earlier term.';

-- Operators: force_release and handoff move the token to the current term too.
CREATE OR REPLACE FUNCTION ${flyway:defaultSchema}.force_release(p_name text) RETURNS bigint
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS
$$
DECLARE
    new_token bigint;
BEGIN
    PERFORM set_config('pglease.event_kind', 'force_released', true);
    UPDATE ${flyway:defaultSchema}.leases
       SET holder = NULL, token = ${flyway:defaultSchema}.next_token(token), expires_at = clock_timestamp(),
           renewed_at = clock_timestamp()
     WHERE name = p_name AND holder IS NOT NULL
    RETURNING token INTO new_token;
    PERFORM set_config('pglease.event_kind', '', true);
    RETURN new_token;
END
$$;

CREATE OR REPLACE FUNCTION ${flyway:defaultSchema}.handoff(p_name text, p_to_prefix text DEFAULT NULL) RETURNS bigint
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS
$$
DECLARE
    new_token bigint;
BEGIN
    IF p_to_prefix IS NOT NULL AND p_to_prefix = '' THEN
        RAISE EXCEPTION 'pglease: handoff target prefix must not be empty (use NULL for any other candidate)'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM set_config('pglease.event_kind', 'handed_off', true);
    UPDATE ${flyway:defaultSchema}.leases
       SET handoff_from  = holder,
           handoff_to    = p_to_prefix,
           handoff_until = clock_timestamp() + greatest(expires_at - renewed_at, interval '1 second'),
           holder        = NULL,
           token         = ${flyway:defaultSchema}.next_token(token),
           expires_at    = clock_timestamp(),
           renewed_at    = clock_timestamp()
     WHERE name = p_name AND holder IS NOT NULL AND expires_at > clock_timestamp()
    RETURNING token INTO new_token;
    PERFORM set_config('pglease.event_kind', '', true);
    RETURN new_token;
END
$$;

-- The access guard of version 2, with renewed_at free to follow the database clock back (see version 4) and the
-- grant rules of terms: a grant carries the next token of the current
-- term (or, from a client of an earlier version, the plain next counter value), and the holder of a grant of an
-- earlier term may take its lease again at once.
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
        IF NOT privileged AND (NEW.token NOT IN (1, ${flyway:defaultSchema}.next_token(0)) OR NEW.holder IS NULL
                OR NEW.handoff_from IS NOT NULL OR NEW.handoff_to IS NOT NULL OR NEW.handoff_until IS NOT NULL
                OR NEW.expires_at > now_ts + max_ttl
                OR NEW.acquired_at > now_ts + slack OR NEW.acquired_at < now_ts - max_ttl
                OR NEW.renewed_at > now_ts + slack OR NEW.renewed_at < now_ts - max_ttl) THEN
            RAISE EXCEPTION 'pglease: role % may only create lease "%" by acquiring it (token %, a holder, '
                            'timestamps from clock_timestamp(), a lease duration of at most %)',
                            current_user, NEW.name, ${flyway:defaultSchema}.next_token(0), max_ttl
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        NEW.holder_role := CASE WHEN NEW.holder IS NULL THEN NULL ELSE current_user::text END;
        RETURN NEW;
    END IF;

    -- UPDATE
    IF NEW.holder IS NOT NULL AND (NEW.holder IS DISTINCT FROM OLD.holder OR NEW.token <> OLD.token) THEN
        -- a grant (acquire or takeover)
        IF NOT privileged THEN
            IF NEW.token NOT IN (OLD.token + 1, ${flyway:defaultSchema}.next_token(OLD.token))
                    OR (OLD.holder IS NOT NULL AND OLD.expires_at > now_ts
                        AND NOT (NEW.holder = OLD.holder AND OLD.holder_role = current_user
                                 AND ${flyway:defaultSchema}.token_term(OLD.token) < ${flyway:defaultSchema}.current_term()))
                    OR NEW.handoff_from IS NOT NULL OR NEW.handoff_to IS NOT NULL OR NEW.handoff_until IS NOT NULL
                    OR NEW.expires_at > now_ts + max_ttl
                    OR NEW.acquired_at > now_ts + slack OR NEW.acquired_at < now_ts - max_ttl
                    OR NEW.renewed_at > now_ts + slack OR NEW.renewed_at < now_ts - max_ttl THEN
                RAISE EXCEPTION 'pglease: role % may not take lease "%" this way: a candidate may only acquire a '
                                'free or expired lease (or its own grant of an earlier term), with token % and a lease duration of '
                                'at most %', current_user, OLD.name, ${flyway:defaultSchema}.next_token(OLD.token), max_ttl
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
-- lease_status shows the term and the counter next to the raw token (new columns go at the end of a view).
CREATE OR REPLACE VIEW ${flyway:defaultSchema}.lease_status AS
SELECT l.name,
       l.holder,
       l.token,
       (l.holder IS NOT NULL AND l.expires_at > clock_timestamp())                    AS held,
       CASE WHEN l.holder IS NOT NULL AND l.expires_at > clock_timestamp()
            THEN date_trunc('milliseconds', l.expires_at - clock_timestamp()) END     AS remaining,
       l.acquired_at,
       l.renewed_at,
       l.expires_at,
       (SELECT max(e.at) FROM ${flyway:defaultSchema}.lease_events e WHERE e.name = l.name) AS last_change,
       l.holder_role,
       ${flyway:defaultSchema}.token_text(l.token)                                         AS term_token,
       ${flyway:defaultSchema}.token_term(l.token)                                         AS term,
       ${flyway:defaultSchema}.token_counter(l.token)                                      AS counter
FROM ${flyway:defaultSchema}.leases l;

GRANT EXECUTE ON FUNCTION ${flyway:defaultSchema}.current_term(), ${flyway:defaultSchema}.token_term(bigint), ${flyway:defaultSchema}.token_counter(bigint),
                          ${flyway:defaultSchema}.token_text(bigint), ${flyway:defaultSchema}.next_token(bigint, bigint), ${flyway:defaultSchema}.next_token(bigint)
    TO "${candidate_role}", "${observer_role}", "${operator_role}";
