-- The rules every change of a lease row obeys, whoever makes it (the protocol functions, the operator functions,
-- or the owner editing rows by hand), and the history they leave.
--
--   * Only the schema's owner writes lease rows: candidates and operators go through the protocol and operator
--     functions, which run as the owner. Any other role, even one granted every table right by mistake, is refused.
--   * A lease row is never deleted and never renamed; the table is never truncated. Its kind never changes, except
--     that a lease group reclaims its shard names: a free row (no holder, or expired, and no pending handoff) named
--     "<group>/<k>" of an existing group, k below its number of shards, becomes a shard when a member acquires it.
--   * The token is never chosen by a writer: whenever a change gives the lease a new holder or asks for a new token,
--     this trigger sets the token to next_token(old token, current term). So tokens only grow, a new holder always
--     comes with a new token, and every grant of a term is above every token of an earlier term.
--   * Every change of holder or token is recorded in lease_events and announced with NOTIFY on the channel
--     "<schema>.leases". A notification is a wake-up, not a fact: listeners re-read the tables.

SET LOCAL search_path = pg_catalog, pg_temp; -- nothing a login planted in another schema is ever called

-- Whether p_name is "<group>/<k>" of an existing lease group, k below its number of shards.
CREATE OR REPLACE FUNCTION ${flyway:defaultSchema}.is_group_shard(p_name text) RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS
$$
SELECT EXISTS (SELECT 1 FROM ${flyway:defaultSchema}.lease_groups g
                WHERE g.name = substring(p_name FROM '^(.*)/(?:0|[1-9][0-9]{0,5})$')
                  AND substring(p_name FROM '/(0|[1-9][0-9]{0,5})$')::integer < g.shards);
$$;

-- Runs with the writer's rights (current_user is the writer; the protocol functions write as the owner).
CREATE OR REPLACE FUNCTION ${flyway:defaultSchema}.leases_guard() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS
$$
BEGIN
    IF NOT pg_has_role(current_user, (SELECT c.relowner FROM pg_class c WHERE c.oid = TG_RELID), 'MEMBER') THEN
        RAISE EXCEPTION 'pglease: role % may not write %.leases directly: candidates change leases through '
                        'acquire, renew, release and fence, operators through force_release and handoff',
                        current_user, TG_TABLE_SCHEMA
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF TG_LEVEL = 'STATEMENT' THEN
        RAISE EXCEPTION 'pglease: the leases table can not be truncated: tokens would start again'
            USING ERRCODE = 'restrict_violation';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'pglease: lease rows are never deleted (lease "%"): release it instead', OLD.name
            USING ERRCODE = 'restrict_violation';
    END IF;
    IF TG_OP = 'INSERT' THEN
        NEW.token := ${flyway:defaultSchema}.next_token(0, ${flyway:defaultSchema}.current_term());
        NEW.holder_role := CASE WHEN NEW.holder IS NULL THEN NULL ELSE coalesce(NEW.holder_role, session_user::text) END;
        RETURN NEW;
    END IF;
    IF NEW.name IS DISTINCT FROM OLD.name THEN
        RAISE EXCEPTION 'pglease: lease "%" can not be renamed', OLD.name
            USING ERRCODE = 'restrict_violation';
    END IF;
    IF NEW.kind IS DISTINCT FROM OLD.kind
       AND NOT (NEW.kind = 'shard' AND NEW.holder IS NOT NULL
                AND (OLD.holder IS NULL OR OLD.expires_at <= clock_timestamp())
                AND (OLD.handoff_until IS NULL OR OLD.handoff_until <= clock_timestamp())
                AND ${flyway:defaultSchema}.is_group_shard(OLD.name)) THEN
        RAISE EXCEPTION 'pglease: lease "%" is a lease of kind %; its kind can not change', OLD.name, OLD.kind
            USING ERRCODE = 'restrict_violation';
    END IF;
    IF NEW.token <> OLD.token OR (NEW.holder IS NOT NULL AND NEW.holder IS DISTINCT FROM OLD.holder) THEN
        NEW.token := ${flyway:defaultSchema}.next_token(OLD.token, ${flyway:defaultSchema}.current_term());
    END IF;
    IF NEW.holder IS NULL THEN
        NEW.holder_role := NULL;
    ELSIF NEW.holder IS DISTINCT FROM OLD.holder AND NEW.holder_role IS NOT DISTINCT FROM OLD.holder_role THEN
        NEW.holder_role := session_user::text;
    END IF;
    RETURN NEW;
END
$$;

DROP TRIGGER IF EXISTS leases_guard ON ${flyway:defaultSchema}.leases;
DROP TRIGGER IF EXISTS leases_guard_update ON ${flyway:defaultSchema}.leases;
DROP TRIGGER IF EXISTS leases_guard_truncate ON ${flyway:defaultSchema}.leases;
CREATE TRIGGER leases_guard
    BEFORE INSERT OR DELETE ON ${flyway:defaultSchema}.leases
    FOR EACH ROW EXECUTE FUNCTION ${flyway:defaultSchema}.leases_guard();
-- A renewal by the protocol (only renewed_at and expires_at move, written as the owner) fires no trigger: a node
-- renews thousands of leases in one UPDATE. Any other writer, and any change of holder or token, goes through it.
DO
$$
BEGIN
    EXECUTE format($t$
        CREATE TRIGGER leases_guard_update
            BEFORE UPDATE ON ${flyway:defaultSchema}.leases
            FOR EACH ROW
            WHEN (current_user <> %L
                  OR OLD.name IS DISTINCT FROM NEW.name OR OLD.kind IS DISTINCT FROM NEW.kind
                  OR OLD.holder IS DISTINCT FROM NEW.holder OR OLD.token <> NEW.token
                  OR OLD.holder_role IS DISTINCT FROM NEW.holder_role)
            EXECUTE FUNCTION ${flyway:defaultSchema}.leases_guard()$t$,
        (SELECT c.relowner::regrole::text FROM pg_class c
          WHERE c.oid = '${flyway:defaultSchema}.leases'::regclass));
END
$$;
CREATE TRIGGER leases_guard_truncate
    BEFORE TRUNCATE ON ${flyway:defaultSchema}.leases
    FOR EACH STATEMENT EXECUTE FUNCTION ${flyway:defaultSchema}.leases_guard();

-- A wake-up for listeners, the one way every change tells them: a notification on the schema's channel. A queue more
-- than half full (a listener that stopped reading, or a flood) would make the change's commit fail when it fills up:
-- the change goes through without a wake-up then (a WARNING names p_what), and listeners look at the expiries they
-- were told. Called by the schema's own functions only.
CREATE OR REPLACE FUNCTION ${flyway:defaultSchema}.wake_listeners(p_payload json, p_what text) RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS
$$
BEGIN
    IF pg_notification_queue_usage() < 0.5 THEN
        PERFORM pg_notify('${flyway:defaultSchema}.leases', p_payload::text);
    ELSE
        RAISE WARNING 'pglease: the notification queue is % %% full: % changed without a wake-up for listeners',
                      round(pg_notification_queue_usage() * 100), p_what;
    END IF;
END
$$;

-- Records every change of holder or token. The kind is inferred from the change, except for the operator functions,
-- which leave a mark for their transaction in operator_marks (a table only the owner writes).
CREATE OR REPLACE FUNCTION ${flyway:defaultSchema}.leases_record() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS
$$
DECLARE
    event_kind    text;
    previous      text;
    previous_role text;
BEGIN
    previous := CASE WHEN TG_OP = 'UPDATE' THEN OLD.holder END;
    previous_role := CASE WHEN TG_OP = 'UPDATE' THEN OLD.holder_role END;
    SELECT m.kind INTO event_kind FROM ${flyway:defaultSchema}.operator_marks m WHERE m.txid = txid_current();
    IF event_kind IS NULL THEN
        event_kind := CASE
            WHEN NEW.holder IS NULL THEN 'released'
            WHEN previous IS NULL OR (previous = NEW.holder AND previous_role = NEW.holder_role) THEN 'acquired'
            ELSE 'taken_over'
        END;
    END IF;
    INSERT INTO ${flyway:defaultSchema}.lease_events (name, token, holder, previous_holder, kind)
    VALUES (NEW.name, NEW.token, NEW.holder, previous, event_kind);
    PERFORM ${flyway:defaultSchema}.wake_listeners(
        json_build_object('name', NEW.name, 'holder', NEW.holder, 'token', NEW.token, 'kind', event_kind),
        'lease ' || NEW.name);
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS leases_record ON ${flyway:defaultSchema}.leases;
DROP TRIGGER IF EXISTS leases_record_update ON ${flyway:defaultSchema}.leases;
CREATE TRIGGER leases_record
    AFTER INSERT ON ${flyway:defaultSchema}.leases
    FOR EACH ROW EXECUTE FUNCTION ${flyway:defaultSchema}.leases_record();
CREATE TRIGGER leases_record_update
    AFTER UPDATE ON ${flyway:defaultSchema}.leases
    FOR EACH ROW
    WHEN (OLD.holder IS DISTINCT FROM NEW.holder OR OLD.token <> NEW.token)
    EXECUTE FUNCTION ${flyway:defaultSchema}.leases_record();

-- History only grows. Only the owner (and its members) may prune it.
CREATE OR REPLACE FUNCTION ${flyway:defaultSchema}.lease_events_append_only() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS
$$
BEGIN
    IF pg_has_role(current_user, (SELECT c.relowner FROM pg_class c WHERE c.oid = TG_RELID), 'MEMBER') THEN
        RETURN CASE WHEN TG_LEVEL = 'STATEMENT' THEN NULL WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    END IF;
    RAISE EXCEPTION 'pglease: lease_events is append-only: role % may not % it (only the owner of %.lease_events '
                    'may, e.g. to prune old events)', current_user, lower(TG_OP), TG_TABLE_SCHEMA
        USING ERRCODE = 'insufficient_privilege';
END
$$;

DROP TRIGGER IF EXISTS lease_events_append_only ON ${flyway:defaultSchema}.lease_events;
DROP TRIGGER IF EXISTS lease_events_append_only_truncate ON ${flyway:defaultSchema}.lease_events;
CREATE TRIGGER lease_events_append_only
    BEFORE INSERT OR UPDATE OR DELETE ON ${flyway:defaultSchema}.lease_events
    FOR EACH ROW EXECUTE FUNCTION ${flyway:defaultSchema}.lease_events_append_only();
CREATE TRIGGER lease_events_append_only_truncate
    BEFORE TRUNCATE ON ${flyway:defaultSchema}.lease_events
    FOR EACH STATEMENT EXECUTE FUNCTION ${flyway:defaultSchema}.lease_events_append_only();

REVOKE ALL ON FUNCTION ${flyway:defaultSchema}.leases_guard(), ${flyway:defaultSchema}.leases_record(),
                       ${flyway:defaultSchema}.is_group_shard(text), ${flyway:defaultSchema}.wake_listeners(json, text),
                       ${flyway:defaultSchema}.lease_events_append_only()
    FROM PUBLIC;
