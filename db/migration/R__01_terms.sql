-- Terms and tokens.
--
-- A token carries the term it was granted in, in its high bits, and a counter in its low bits:
--
--     token = (term - 1) * 2^32 + counter        1 <= term <= 2^31, 1 <= counter < 2^32
--
-- A server that was never failed over grants tokens 1, 2, 3, ... (term 1). The term of a grant is the term of the
-- (cluster, timeline) pair the server is on when it grants: the terms table gives each new pair a term above every
-- term recorded before, and never below the database clock's seconds since 2026-01-01 (the "clock floor"), and
-- never above it either (the first term, 1, aside; a server whose clock is far behind the recorded terms is the
-- exception, see current_term). So:
--   * a promoted standby (new timeline) grants tokens above every token the old primary granted, even those lost
--     with it (the promoted standby's table holds the old primary's pair, or an earlier one);
--   * a pg_upgrade (a new cluster, timeline 1 again) or a restore keeps the table and moves to a new, higher term;
--   * a timeline number reused after a promotion was undone (pg_rewind) gets a term above the discarded one as
--     long as it is made at least a second later by the database clock, which the clock floor guarantees.
-- A lease whose counter reaches 2^32 - 1 within one term can not be granted again until the next term (SQLSTATE
-- 22003); at one grant per millisecond that takes 49 days.

SET LOCAL search_path = pg_catalog, pg_temp; -- nothing a login planted in another schema is ever called

CREATE OR REPLACE FUNCTION ${flyway:defaultSchema}.token_term(p_token bigint) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    SET search_path = pg_catalog, pg_temp
AS $$ SELECT (p_token >> 32) + 1 $$;

CREATE OR REPLACE FUNCTION ${flyway:defaultSchema}.token_counter(p_token bigint) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    SET search_path = pg_catalog, pg_temp
AS $$ SELECT p_token & 4294967295 $$;

-- A token as people read it: term.counter (4294967313 reads 2.17: the 17th grant of the lease in term 2).
CREATE OR REPLACE FUNCTION ${flyway:defaultSchema}.token_text(p_token bigint) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    SET search_path = pg_catalog, pg_temp
AS $$ SELECT ((p_token >> 32) + 1)::text || '.' || (p_token & 4294967295)::text $$;

-- The term of grants made now: the term of this server's (system identifier, timeline), recorded on first use.
-- Fails with SQLSTATE 25006 on a server in recovery. A server that refuses to report its timeline to the schema
-- owner (as some managed services do) is taken as timeline 1: tokens are then unique on that server but not across
-- a promotion (pglease warns at start); one that refuses its system identifier is taken as system 0: terms then
-- survive promotions but not a pg_upgrade.
CREATE OR REPLACE FUNCTION ${flyway:defaultSchema}.current_term() RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS
$$
DECLARE
    system_id numeric := 0;
    tli       bigint := 1;
    found_term bigint;
    floor_term bigint;
BEGIN
    IF pg_is_in_recovery() THEN
        RAISE EXCEPTION 'pglease: the database is in recovery (a read-only standby); lease statements need the primary'
            USING ERRCODE = 'read_only_sql_transaction',
                  HINT = 'Connect to the primary, e.g. with a multi-host JDBC URL and targetServerType=primary.';
    END IF;
    BEGIN
        tli := ('x' || lpad(substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8), 16, '0'))::bit(64)::bigint;
    EXCEPTION WHEN insufficient_privilege OR feature_not_supported OR undefined_function THEN
        tli := 1;
    END;
    BEGIN
        SELECT c.system_identifier INTO system_id FROM pg_control_system() c;
    EXCEPTION WHEN insufficient_privilege OR feature_not_supported OR undefined_function THEN
        system_id := 0;
    END;
    SELECT t.term INTO found_term
      FROM ${flyway:defaultSchema}.terms t
     WHERE t.system_identifier = system_id AND t.timeline = tli;
    IF found_term IS NOT NULL THEN
        RETURN found_term;
    END IF;
    -- A pair not seen before: serialise with any other session recording one.
    LOCK TABLE ${flyway:defaultSchema}.terms IN SHARE ROW EXCLUSIVE MODE;
    SELECT t.term INTO found_term
      FROM ${flyway:defaultSchema}.terms t
     WHERE t.system_identifier = system_id AND t.timeline = tli;
    IF found_term IS NOT NULL THEN
        RETURN found_term;
    END IF;
    SELECT max(t.term) INTO found_term FROM ${flyway:defaultSchema}.terms t;
    IF found_term IS NULL THEN
        found_term := 1;
    ELSE
        found_term := found_term + 1;
        floor_term := ${flyway:defaultSchema}.clock_term();
        -- Never ahead of the clock, so that a later term made a second later is higher still: when two pairs appear
        -- within one second, wait for the next (a clock far behind the recorded terms can not be waited for).
        IF found_term > floor_term AND found_term <= floor_term + 1 THEN
            PERFORM pg_sleep(1 - (extract(epoch FROM clock_timestamp()) - floor(extract(epoch FROM clock_timestamp()))));
            floor_term := ${flyway:defaultSchema}.clock_term();
        END IF;
        found_term := greatest(found_term, floor_term);
    END IF;
    IF found_term > 2147483648 THEN
        RAISE EXCEPTION 'pglease: no term is left (the highest recorded is %)', found_term - 1
            USING ERRCODE = 'numeric_value_out_of_range';
    END IF;
    INSERT INTO ${flyway:defaultSchema}.terms (term, system_identifier, timeline) VALUES (found_term, system_id, tli);
    RETURN found_term;
END
$$;

COMMENT ON FUNCTION ${flyway:defaultSchema}.current_term() IS
    'Term of grants made now: recorded per (system identifier, timeline), each new pair above every term before.';

-- The clock floor of a new term: whole seconds since 2026-01-01 by the database clock (2^31 of them reach 2094).
CREATE OR REPLACE FUNCTION ${flyway:defaultSchema}.clock_term() RETURNS bigint
    LANGUAGE sql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS
$$
SELECT least(2147483648 - 16777216, greatest(1, floor(extract(epoch FROM clock_timestamp()) - 1767225600)))::bigint
$$;

-- What the schema's owner can see of the server's identity: the timeline (without it, tokens survive no promotion)
-- and the system identifier (without it, terms survive promotions but not a pg_upgrade). pglease warns at start when
-- either is hidden, as some managed services do.
CREATE OR REPLACE FUNCTION ${flyway:defaultSchema}.term_sources(OUT timeline_visible boolean,
                                                                OUT system_identifier_visible boolean)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS
$$
BEGIN
    timeline_visible := has_function_privilege('pg_catalog.pg_current_wal_lsn()', 'EXECUTE')
                        AND has_function_privilege('pg_catalog.pg_walfile_name(pg_lsn)', 'EXECUTE');
    system_identifier_visible := has_function_privilege('pg_catalog.pg_control_system()', 'EXECUTE');
END
$$;

-- The token of the next grant after p_old (0 for a new lease) in term p_term: the next counter value, or the first
-- token of p_term when p_old is of an earlier term.
CREATE OR REPLACE FUNCTION ${flyway:defaultSchema}.next_token(p_old bigint, p_term bigint) RETURNS bigint
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

REVOKE ALL ON FUNCTION ${flyway:defaultSchema}.token_term(bigint), ${flyway:defaultSchema}.token_counter(bigint),
                       ${flyway:defaultSchema}.token_text(bigint), ${flyway:defaultSchema}.current_term(),
                       ${flyway:defaultSchema}.clock_term(), ${flyway:defaultSchema}.next_token(bigint, bigint),
                       ${flyway:defaultSchema}.term_sources()
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ${flyway:defaultSchema}.token_term(bigint), ${flyway:defaultSchema}.token_counter(bigint),
                          ${flyway:defaultSchema}.token_text(bigint), ${flyway:defaultSchema}.term_sources()
    TO "${candidate_role}", "${observer_role}", "${operator_role}";
