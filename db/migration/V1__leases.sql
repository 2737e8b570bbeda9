-- pglease schema, version 1.
-- Applied by PgLease.migrate(...) with Flyway into its own schema (default "pglease") and its own history table.
-- To apply it with your own tooling, replace ${flyway:defaultSchema} with the schema name.

CREATE TABLE ${flyway:defaultSchema}.leases (
    name          text        NOT NULL PRIMARY KEY,
    holder        text        NULL,
    token         bigint      NOT NULL,
    acquired_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    renewed_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    expires_at    timestamptz NOT NULL,
    handoff_from  text        NULL,
    handoff_to    text        NULL,
    handoff_until timestamptz NULL,
    CONSTRAINT leases_name_valid CHECK (char_length(name) BETWEEN 1 AND 200 AND name !~ '[[:cntrl:]]'),
    CONSTRAINT leases_holder_valid CHECK (holder IS NULL OR (char_length(holder) BETWEEN 1 AND 255 AND holder !~ '[[:cntrl:]]')),
    CONSTRAINT leases_token_positive CHECK (token >= 1)
);

COMMENT ON TABLE ${flyway:defaultSchema}.leases IS
    'One row per lease. The token grows with every change of holder; rows are never deleted.';

CREATE TABLE ${flyway:defaultSchema}.lease_events (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            text        NOT NULL,
    token           bigint      NOT NULL,
    holder          text        NULL,
    previous_holder text        NULL,
    kind            text        NOT NULL,
    at              timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT lease_events_kind_valid CHECK (kind IN
        ('acquired', 'taken_over', 'released', 'force_released', 'handed_off'))
);

CREATE INDEX lease_events_name_id ON ${flyway:defaultSchema}.lease_events (name, id);

COMMENT ON TABLE ${flyway:defaultSchema}.lease_events IS
    'Every change of holder or token of a lease, written by a trigger on leases (also for hand edits).';

-- Guards the token rules against any writer, including hand edits by an operator:
-- the token never decreases, a new holder always comes with a higher token, rows are never deleted.
CREATE FUNCTION ${flyway:defaultSchema}.leases_guard() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'pglease: lease rows are never deleted (lease "%"); release it instead', OLD.name
            USING ERRCODE = 'restrict_violation';
    END IF;
    IF NEW.name IS DISTINCT FROM OLD.name THEN
        RAISE EXCEPTION 'pglease: lease "%" can not be renamed', OLD.name
            USING ERRCODE = 'restrict_violation';
    END IF;
    IF NEW.token < OLD.token THEN
        RAISE EXCEPTION 'pglease: the token of lease "%" can not decrease (% -> %)', OLD.name, OLD.token, NEW.token
            USING ERRCODE = 'restrict_violation';
    END IF;
    IF NEW.holder IS NOT NULL AND NEW.holder IS DISTINCT FROM OLD.holder AND NEW.token <= OLD.token THEN
        RAISE EXCEPTION 'pglease: a new holder of lease "%" needs a token above %', OLD.name, OLD.token
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER leases_guard
    BEFORE UPDATE OR DELETE ON ${flyway:defaultSchema}.leases
    FOR EACH ROW EXECUTE FUNCTION ${flyway:defaultSchema}.leases_guard();

CREATE FUNCTION ${flyway:defaultSchema}.leases_refuse_truncate() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    RAISE EXCEPTION 'pglease: the leases table can not be truncated: tokens would restart'
        USING ERRCODE = 'restrict_violation';
END
$$;

CREATE TRIGGER leases_refuse_truncate
    BEFORE TRUNCATE ON ${flyway:defaultSchema}.leases
    FOR EACH STATEMENT EXECUTE FUNCTION ${flyway:defaultSchema}.leases_refuse_truncate();

-- Records every change of holder or token in lease_events and wakes listeners with NOTIFY.
-- Operator functions label their change through the transaction-local setting pglease.event_kind.
CREATE FUNCTION ${flyway:defaultSchema}.leases_record() RETURNS trigger
    LANGUAGE plpgsql AS
$$
DECLARE
    event_kind text;
    previous   text;
BEGIN
    IF TG_OP = 'INSERT' THEN
        previous := NULL;
    ELSIF NEW.holder IS NOT DISTINCT FROM OLD.holder AND NEW.token = OLD.token THEN
        RETURN NULL;
    ELSE
        previous := OLD.holder;
    END IF;

    event_kind := nullif(current_setting('pglease.event_kind', true), '');
    IF event_kind IS NULL THEN
        event_kind := CASE
            WHEN NEW.holder IS NULL THEN 'released'
            WHEN TG_OP = 'INSERT' OR OLD.holder IS NULL OR OLD.holder = NEW.holder THEN 'acquired'
            ELSE 'taken_over'
        END;
    END IF;

    INSERT INTO ${flyway:defaultSchema}.lease_events (name, token, holder, previous_holder, kind)
    VALUES (NEW.name, NEW.token, NEW.holder, previous, event_kind);

    PERFORM pg_notify(TG_TABLE_SCHEMA || '.leases',
                      json_build_object('name', NEW.name, 'holder', NEW.holder,
                                        'token', NEW.token, 'kind', event_kind)::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER leases_record
    AFTER INSERT OR UPDATE ON ${flyway:defaultSchema}.leases
    FOR EACH ROW EXECUTE FUNCTION ${flyway:defaultSchema}.leases_record();

-- What an operator reads in psql. "held" and "remaining" use the database clock.
CREATE VIEW ${flyway:defaultSchema}.lease_status AS
SELECT l.name,
       l.holder,
       l.token,
       (l.holder IS NOT NULL AND l.expires_at > clock_timestamp())                    AS held,
       CASE WHEN l.holder IS NOT NULL AND l.expires_at > clock_timestamp()
            THEN date_trunc('milliseconds', l.expires_at - clock_timestamp()) END     AS remaining,
       l.acquired_at,
       l.renewed_at,
       l.expires_at,
       (SELECT max(e.at) FROM ${flyway:defaultSchema}.lease_events e WHERE e.name = l.name) AS last_change
FROM ${flyway:defaultSchema}.leases l;

-- Operator: take a lease away from its holder now. The token moves on, so the holder's guarded
-- writes fail at once; a standby acquires it (with a higher token still). Returns the new token,
-- or NULL when the lease is not held.
CREATE FUNCTION ${flyway:defaultSchema}.force_release(p_name text) RETURNS bigint
    LANGUAGE plpgsql AS
$$
DECLARE
    new_token bigint;
BEGIN
    PERFORM set_config('pglease.event_kind', 'force_released', true);
    UPDATE ${flyway:defaultSchema}.leases
       SET holder = NULL, token = token + 1, expires_at = clock_timestamp(), renewed_at = clock_timestamp()
     WHERE name = p_name AND holder IS NOT NULL
    RETURNING token INTO new_token;
    PERFORM set_config('pglease.event_kind', '', true);
    RETURN new_token;
END
$$;

-- Operator: move a lease away from its holder to another candidate. The current holder loses it now
-- and may not take it back for one lease duration; with p_to_prefix only a holder whose id starts with
-- that prefix may take it during that time. Returns the new token, or NULL when the lease is not held.
CREATE FUNCTION ${flyway:defaultSchema}.handoff(p_name text, p_to_prefix text DEFAULT NULL) RETURNS bigint
    LANGUAGE plpgsql AS
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
           token         = token + 1,
           expires_at    = clock_timestamp(),
           renewed_at    = clock_timestamp()
     WHERE name = p_name AND holder IS NOT NULL AND expires_at > clock_timestamp()
    RETURNING token INTO new_token;
    PERFORM set_config('pglease.event_kind', '', true);
    RETURN new_token;
END
$$;

-- Forward-only fences for resources outside the lease row: a write carrying token t is accepted only
-- if no write with a higher token was accepted before.
CREATE TABLE ${flyway:defaultSchema}.fences (
    resource    text        NOT NULL PRIMARY KEY,
    token       bigint      NOT NULL,
    advanced_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT fences_resource_valid CHECK (char_length(resource) BETWEEN 1 AND 200),
    CONSTRAINT fences_token_valid CHECK (token >= 0)
);

-- Check-and-advance for callers that are not in Java (e.g. a receiving service in another language).
-- Call it in the same transaction as the resource change; false means the token is stale: roll back.
CREATE FUNCTION ${flyway:defaultSchema}.advance_fence(p_resource text, p_token bigint) RETURNS boolean
    LANGUAGE sql AS
$$
    WITH advanced AS (
        INSERT INTO ${flyway:defaultSchema}.fences AS f (resource, token)
        VALUES (p_resource, p_token)
        ON CONFLICT (resource) DO UPDATE
            SET token = excluded.token, advanced_at = clock_timestamp()
            WHERE f.token <= excluded.token
        RETURNING 1
    )
    SELECT EXISTS (SELECT 1 FROM advanced);
$$;
