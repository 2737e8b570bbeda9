-- Operator functions: the only way besides the protocol that a lease changes holder. They run with the owner's
-- rights; only the operator role may call them. Each leaves a mark for its own transaction in operator_marks, which
-- the history trigger reads to label the change (force_released, handed_off); the token moves on by the term rule,
-- so the holder's fenced writes fail at once and every fenced transaction it has open is waited for.

SET LOCAL search_path = pg_catalog, pg_temp; -- nothing a login planted in another schema is ever called

-- Takes a lease away from its holder now. Returns the new token, or NULL when the lease is not held.
CREATE OR REPLACE FUNCTION ${flyway:defaultSchema}.force_release(p_name text) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS
$$
DECLARE
    new_token bigint;
BEGIN
    PERFORM ${flyway:defaultSchema}.durable_commit();
    INSERT INTO ${flyway:defaultSchema}.operator_marks (txid, kind) VALUES (txid_current(), 'force_released')
    ON CONFLICT (txid) DO UPDATE SET kind = excluded.kind;
    -- the token changes: wait for the holder's fenced transactions first, then take the time
    PERFORM 1 FROM ${flyway:defaultSchema}.leases l WHERE l.name = p_name AND l.holder IS NOT NULL FOR UPDATE;
    UPDATE ${flyway:defaultSchema}.leases AS l
       SET holder = NULL, token = l.token + 1, expires_at = clock_timestamp(), renewed_at = clock_timestamp()
     WHERE l.name = p_name AND l.holder IS NOT NULL
    RETURNING l.token INTO new_token;
    DELETE FROM ${flyway:defaultSchema}.operator_marks m WHERE m.txid = txid_current();
    DELETE FROM ${flyway:defaultSchema}.fast_failover_sessions s WHERE s.name = p_name;
    RETURN new_token;
END
$$;

-- Moves a lease away from its holder to another candidate. The holder loses it now and may not take it back for one
-- lease duration (its last renewal's); with p_to_prefix, only a holder whose id starts with that prefix may take it
-- during that time (holder ids are labels their processes choose: this steers a handoff, it does not control access).
-- The shard of a lease group ("<group>/<k>", kind shard) is announced to its group as well: the members read the
-- group, whose assignment then gives the shard to a member the handoff allows (R__10_groups.sql).
-- Returns the new token, or NULL when the lease is not held.
CREATE OR REPLACE FUNCTION ${flyway:defaultSchema}.handoff(p_name text, p_to_prefix text DEFAULT NULL) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS
$$
DECLARE
    new_token   bigint;
    handed_kind text;
BEGIN
    IF p_to_prefix IS NOT NULL THEN
        IF p_to_prefix = '' THEN
            RAISE EXCEPTION 'pglease: handoff target prefix must not be empty (use NULL for any other candidate)'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        PERFORM ${flyway:defaultSchema}.check_name('a handoff target prefix', p_to_prefix, 255);
    END IF;
    PERFORM ${flyway:defaultSchema}.durable_commit();
    INSERT INTO ${flyway:defaultSchema}.operator_marks (txid, kind) VALUES (txid_current(), 'handed_off')
    ON CONFLICT (txid) DO UPDATE SET kind = excluded.kind;
    PERFORM 1 FROM ${flyway:defaultSchema}.leases l
      WHERE l.name = p_name AND l.holder IS NOT NULL AND l.expires_at > clock_timestamp() FOR UPDATE;
    UPDATE ${flyway:defaultSchema}.leases AS l
       SET handoff_from  = l.holder,
           handoff_to    = p_to_prefix,
           handoff_until = clock_timestamp() + greatest(l.expires_at - l.renewed_at, interval '1 second'),
           holder        = NULL,
           token         = l.token + 1,
           expires_at    = clock_timestamp(),
           renewed_at    = clock_timestamp()
     WHERE l.name = p_name AND l.holder IS NOT NULL AND l.expires_at > clock_timestamp()
    RETURNING l.token, l.kind INTO new_token, handed_kind;
    DELETE FROM ${flyway:defaultSchema}.operator_marks m WHERE m.txid = txid_current();
    DELETE FROM ${flyway:defaultSchema}.fast_failover_sessions s WHERE s.name = p_name;
    IF handed_kind = 'shard' THEN
        PERFORM ${flyway:defaultSchema}.wake_listeners(
            json_build_object('name', substring(p_name FROM '^(.*)/[0-9]+$'), 'kind', 'shard_handed_off',
                              'lease', p_name),
            'shard ' || p_name);
    END IF;
    RETURN new_token;
END
$$;

REVOKE ALL ON FUNCTION ${flyway:defaultSchema}.force_release(text), ${flyway:defaultSchema}.handoff(text, text)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ${flyway:defaultSchema}.force_release(text), ${flyway:defaultSchema}.handoff(text, text)
    TO "${operator_role}";
