-- pglease schema, version 2: least-privilege roles, guarded writes, append-only history.
--
-- Applied by PgLease.migrate(...). Placeholders (PgLease.Roles, defaults <schema>_candidate, <schema>_observer,
-- <schema>_operator); to apply this file with your own tooling replace them by hand:
--   ${flyway:defaultSchema}  the pglease schema
--   ${candidate_role}        campaigns, renews, releases, reads, writes fences
--   ${observer_role}         reads status and history
--   ${operator_role}         reads, and calls force_release() / handoff()
-- Each role is created NOLOGIN when it does not exist; existing roles are only granted to. Applications log in as
-- their own users and are made members: GRANT <schema>_candidate TO app_user.
--
-- The owner of the schema objects (the role that runs the migration) keeps every right. Every other role, even one
-- that was granted more than the rights below by mistake, goes through the guard triggers defined here:
-- lease rows change only the way the lease protocol changes them, fences only move forward, history only grows.

-- ---------------------------------------------------------------------------------------------------------------
-- Roles
-- ---------------------------------------------------------------------------------------------------------------
DO
$$
DECLARE
    wanted text[] := ARRAY['${candidate_role}', '${observer_role}', '${operator_role}'];
    kinds  text[] := ARRAY['candidate', 'observer', 'operator'];
    r      text;
BEGIN
    FOR i IN 1 .. 3 LOOP
        r := wanted[i];
        IF r = current_user OR r = session_user THEN
            RAISE EXCEPTION 'pglease: the % role must not be the role that owns the schema (%): owners bypass '
                            'every guard', kinds[i], r
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', r);
            EXCEPTION WHEN insufficient_privilege THEN
                RAISE EXCEPTION 'pglease: role % (the % role of schema %) does not exist and % may not create it',
                                r, kinds[i], '${flyway:defaultSchema}', current_user
                    USING ERRCODE = 'insufficient_privilege',
                          HINT = format('Create it first (CREATE ROLE %I NOLOGIN;), migrate as a role with CREATEROLE,'
                                        ' or pass the names of existing roles to PgLease.migrate', r);
            END;
        END IF;
        -- Say what the role is for (\du+ shows it), unless someone else already described it. Best effort: an
        -- existing role may not be ours to comment on.
        IF coalesce(pg_catalog.shobj_description((SELECT oid FROM pg_catalog.pg_roles WHERE rolname = r),
                                                 'pg_authid'), 'pglease ') LIKE 'pglease %' THEN
            BEGIN
                EXECUTE format('COMMENT ON ROLE %I IS %L', r,
                               'pglease ' || kinds[i] || ' role of schema ${flyway:defaultSchema}');
            EXCEPTION WHEN insufficient_privilege THEN
                RAISE NOTICE 'pglease: could not comment on role %', r;
            END;
        END IF;
    END LOOP;
END
$$;

-- ---------------------------------------------------------------------------------------------------------------
-- Who holds a lease: the database role that acquired it, and who made each change
-- ---------------------------------------------------------------------------------------------------------------
ALTER TABLE ${flyway:defaultSchema}.leases ADD COLUMN holder_role text NULL;
COMMENT ON COLUMN ${flyway:defaultSchema}.leases.holder_role IS
    'Database role (current_user) that acquired the lease; only that role may renew or release it. NULL when free.';

ALTER TABLE ${flyway:defaultSchema}.lease_events ADD COLUMN changed_by text NULL;
ALTER TABLE ${flyway:defaultSchema}.lease_events ALTER COLUMN changed_by SET DEFAULT session_user;
COMMENT ON COLUMN ${flyway:defaultSchema}.lease_events.changed_by IS
    'Login role (session_user) of the session that made the change; NULL for events recorded before version 2.';

-- lease_status gains the role that holds each lease (new columns go at the end of a view).
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
       l.holder_role
FROM ${flyway:defaultSchema}.leases l;

-- ---------------------------------------------------------------------------------------------------------------
-- Guard on lease writes by roles that do not own the table
-- ---------------------------------------------------------------------------------------------------------------
-- Runs with the rights of the writer (NOT security definer) so that current_user is the writer, and before the
-- version 1 guard (triggers fire in name order), so a refused change is always SQLSTATE 42501. The owner, its
-- members and superusers may hand-edit (the version 1 guard still applies to them). Every other writer may only
-- make the changes the lease protocol makes:
--   acquire  INSERT with token 1, or UPDATE of a free or expired row to a new holder with token + 1, respecting a
--            pending handoff;
--   renew    same holder, same token, only renewed_at / expires_at move, by the role that acquired it, while held;
--   release  holder to NULL, same token, expiry now, by the role that acquired it.
-- A renew of a row that expired in the meantime is skipped (0 rows, the lease is lost), as its WHERE clause would.
-- Anything else fails with SQLSTATE 42501 (insufficient_privilege).
CREATE FUNCTION ${flyway:defaultSchema}.leases_access_guard() RETURNS trigger
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
                    OR (OLD.holder IS NOT NULL AND OLD.expires_at > now_ts)
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
                    OR NEW.renewed_at > now_ts + slack OR NEW.renewed_at < OLD.renewed_at
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
                OR NEW.renewed_at > now_ts + slack OR NEW.renewed_at < OLD.renewed_at THEN
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

CREATE TRIGGER leases_access_guard
    BEFORE INSERT OR UPDATE OR DELETE ON ${flyway:defaultSchema}.leases
    FOR EACH ROW EXECUTE FUNCTION ${flyway:defaultSchema}.leases_access_guard();

CREATE TRIGGER leases_access_guard_truncate
    BEFORE TRUNCATE ON ${flyway:defaultSchema}.leases
    FOR EACH STATEMENT EXECUTE FUNCTION ${flyway:defaultSchema}.leases_access_guard();

-- ---------------------------------------------------------------------------------------------------------------
-- Append-only history
-- ---------------------------------------------------------------------------------------------------------------
-- Events are written by the leases_record trigger, which from now on runs with the owner's rights: no other role
-- needs (or gets) INSERT on lease_events. Pinned search_path: it names every object with its schema.
ALTER FUNCTION ${flyway:defaultSchema}.leases_record() SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION ${flyway:defaultSchema}.lease_events_append_only() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS
$$
BEGIN
    IF pg_has_role(current_user, (SELECT c.relowner FROM pg_class c WHERE c.oid = TG_RELID), 'MEMBER') THEN
        IF TG_LEVEL = 'STATEMENT' THEN
            RETURN NULL;
        ELSIF TG_OP = 'DELETE' THEN
            RETURN OLD;
        END IF;
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'pglease: lease_events is append-only: role % may not % it (only the owner of %.lease_events '
                    'may, e.g. to prune old events)', current_user, lower(TG_OP), TG_TABLE_SCHEMA
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER lease_events_append_only
    BEFORE INSERT OR UPDATE OR DELETE ON ${flyway:defaultSchema}.lease_events
    FOR EACH ROW EXECUTE FUNCTION ${flyway:defaultSchema}.lease_events_append_only();

CREATE TRIGGER lease_events_append_only_truncate
    BEFORE TRUNCATE ON ${flyway:defaultSchema}.lease_events
    FOR EACH STATEMENT EXECUTE FUNCTION ${flyway:defaultSchema}.lease_events_append_only();

-- ---------------------------------------------------------------------------------------------------------------
-- Forward-only fences, for every writer but the owner
-- ---------------------------------------------------------------------------------------------------------------
CREATE FUNCTION ${flyway:defaultSchema}.fences_guard() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS
$$
BEGIN
    IF pg_has_role(current_user, (SELECT c.relowner FROM pg_class c WHERE c.oid = TG_RELID), 'MEMBER') THEN
        IF TG_LEVEL = 'STATEMENT' THEN
            RETURN NULL;
        ELSIF TG_OP = 'DELETE' THEN
            RETURN OLD;
        END IF;
        RETURN NEW;
    END IF;
    IF TG_LEVEL = 'STATEMENT' THEN
        RAISE EXCEPTION 'pglease: fences only move forward: role % may not truncate %.fences', current_user,
                        TG_TABLE_SCHEMA
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.resource = OLD.resource AND NEW.token >= OLD.token THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'pglease: fences only move forward: role % may not % fence % (only advance its token)',
                    current_user, lower(TG_OP), quote_literal(OLD.resource)
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER fences_guard
    BEFORE UPDATE OR DELETE ON ${flyway:defaultSchema}.fences
    FOR EACH ROW EXECUTE FUNCTION ${flyway:defaultSchema}.fences_guard();

CREATE TRIGGER fences_guard_truncate
    BEFORE TRUNCATE ON ${flyway:defaultSchema}.fences
    FOR EACH STATEMENT EXECUTE FUNCTION ${flyway:defaultSchema}.fences_guard();

-- ---------------------------------------------------------------------------------------------------------------
-- Operator functions: run with the owner's rights, callable only by the operator role
-- ---------------------------------------------------------------------------------------------------------------
ALTER FUNCTION ${flyway:defaultSchema}.force_release(text) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION ${flyway:defaultSchema}.handoff(text, text) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

-- ---------------------------------------------------------------------------------------------------------------
-- Grants. Nothing for PUBLIC; each role gets exactly what it needs.
-- ---------------------------------------------------------------------------------------------------------------
REVOKE ALL ON SCHEMA ${flyway:defaultSchema} FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA ${flyway:defaultSchema} FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA ${flyway:defaultSchema} FROM PUBLIC;
-- functions the owner adds later (new migrations) are not executable by everyone either: grant them explicitly
ALTER DEFAULT PRIVILEGES IN SCHEMA ${flyway:defaultSchema} REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;

GRANT USAGE ON SCHEMA ${flyway:defaultSchema} TO "${candidate_role}", "${observer_role}", "${operator_role}";

-- observer: status, history, fences (LISTEN needs no grant)
GRANT SELECT ON ${flyway:defaultSchema}.leases, ${flyway:defaultSchema}.lease_events,
                ${flyway:defaultSchema}.lease_status, ${flyway:defaultSchema}.fences
    TO "${observer_role}";

-- candidate: read, campaign / renew / release (INSERT, UPDATE; UPDATE also allows the SELECT ... FOR SHARE of
-- fenced transactions), forward fences
GRANT SELECT ON ${flyway:defaultSchema}.leases, ${flyway:defaultSchema}.lease_events,
                ${flyway:defaultSchema}.lease_status, ${flyway:defaultSchema}.fences
    TO "${candidate_role}";
GRANT INSERT, UPDATE ON ${flyway:defaultSchema}.leases TO "${candidate_role}";
GRANT INSERT, UPDATE ON ${flyway:defaultSchema}.fences TO "${candidate_role}";
GRANT EXECUTE ON FUNCTION ${flyway:defaultSchema}.advance_fence(text, bigint) TO "${candidate_role}";

-- operator: observer rights, force release and handoff
GRANT SELECT ON ${flyway:defaultSchema}.leases, ${flyway:defaultSchema}.lease_events,
                ${flyway:defaultSchema}.lease_status, ${flyway:defaultSchema}.fences
    TO "${operator_role}";
GRANT EXECUTE ON FUNCTION ${flyway:defaultSchema}.force_release(text),
                          ${flyway:defaultSchema}.handoff(text, text)
    TO "${operator_role}";
