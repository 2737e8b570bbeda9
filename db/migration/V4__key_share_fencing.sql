-- pglease schema, version 4: fenced writers never hold up their own holder, and the holder keeps working when the
-- database clock steps back.
--
-- 1. A fenced transaction locks the lease row FOR KEY SHARE. With the token part of a unique key, an UPDATE that
--    changes the token (a takeover, force_release, handoff) counts as a key update and waits for every fenced
--    transaction on the row, while the holder's renewal and release (which only move expires_at, renewed_at and
--    holder) take a weaker lock that does not conflict with key-share lockers. So the holder's own renewals never
--    queue behind its fenced writers, and a change of holder still waits until they have committed or rolled back.
ALTER TABLE ${flyway:defaultSchema}.leases
    ADD CONSTRAINT leases_name_token_key UNIQUE (name, token);

-- 2. renewed_at is the database time of the holder's last renewal or release. When the database clock steps back
--    (an NTP correction, a failover to a primary whose clock lags), it may now move back with it: the rightful
--    holder's renewals and release keep working. It must still be the current time (within one second).
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

DROP TRIGGER leases_access_guard_update ON ${flyway:defaultSchema}.leases;
CREATE TRIGGER leases_access_guard_update
    BEFORE UPDATE ON ${flyway:defaultSchema}.leases
    FOR EACH ROW
    WHEN (NOT (OLD.holder IS NOT NULL
               AND NEW.holder IS NOT DISTINCT FROM OLD.holder
               AND NEW.token = OLD.token
               AND NEW.name = OLD.name
               AND OLD.holder_role = current_user
               AND NEW.holder_role IS NOT DISTINCT FROM OLD.holder_role
               AND NEW.acquired_at = OLD.acquired_at
               AND NEW.handoff_from IS NOT DISTINCT FROM OLD.handoff_from
               AND NEW.handoff_to IS NOT DISTINCT FROM OLD.handoff_to
               AND NEW.handoff_until IS NOT DISTINCT FROM OLD.handoff_until
               AND OLD.expires_at > clock_timestamp()
               AND NEW.expires_at <= clock_timestamp() + interval '1 day'
               AND (NEW.renewed_at = OLD.renewed_at
                    OR NEW.renewed_at BETWEEN clock_timestamp() - interval '1 second'
                                          AND clock_timestamp() + interval '1 second')))
    EXECUTE FUNCTION ${flyway:defaultSchema}.leases_access_guard();
