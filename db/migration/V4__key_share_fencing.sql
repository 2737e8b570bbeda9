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
--    holder's renewals and release keep working. When it changes it must be the current time (within one second).
--    The fast path of a plain renewal below says so; the access guard function says the same from version 5 on.
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
