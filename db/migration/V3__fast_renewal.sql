-- pglease schema, version 3: renewals fire no trigger.
--
-- A node that holds thousands of leases renews them all in one UPDATE per retry period. The guards of versions 1
-- and 2 only have something to check when a row changes holder or token, or when the writer is not the role that
-- holds the lease; a WHEN condition (evaluated without calling PL/pgSQL) now lets a plain renewal by its own role
-- skip them. Every other change goes through the same functions as before.

-- Version 1 guard: DELETE always, UPDATE only when name, holder or token change.
DROP TRIGGER leases_guard ON ${flyway:defaultSchema}.leases;
CREATE TRIGGER leases_guard
    BEFORE DELETE ON ${flyway:defaultSchema}.leases
    FOR EACH ROW EXECUTE FUNCTION ${flyway:defaultSchema}.leases_guard();
CREATE TRIGGER leases_guard_update
    BEFORE UPDATE ON ${flyway:defaultSchema}.leases
    FOR EACH ROW
    WHEN (OLD.name IS DISTINCT FROM NEW.name OR OLD.holder IS DISTINCT FROM NEW.holder OR OLD.token <> NEW.token)
    EXECUTE FUNCTION ${flyway:defaultSchema}.leases_guard();

-- History and NOTIFY: only when holder or token change.
DROP TRIGGER leases_record ON ${flyway:defaultSchema}.leases;
CREATE TRIGGER leases_record
    AFTER INSERT ON ${flyway:defaultSchema}.leases
    FOR EACH ROW EXECUTE FUNCTION ${flyway:defaultSchema}.leases_record();
CREATE TRIGGER leases_record_update
    AFTER UPDATE ON ${flyway:defaultSchema}.leases
    FOR EACH ROW
    WHEN (OLD.holder IS DISTINCT FROM NEW.holder OR OLD.token <> NEW.token)
    EXECUTE FUNCTION ${flyway:defaultSchema}.leases_record();

-- Version 2 access guard: INSERT and DELETE always; UPDATE unless it is a plain renewal of a held, unexpired lease
-- by the role that acquired it (same holder, token and handoff state; only renewed_at and expires_at move
-- forward, by at most the limits the guard itself enforces).
DROP TRIGGER leases_access_guard ON ${flyway:defaultSchema}.leases;
CREATE TRIGGER leases_access_guard
    BEFORE INSERT OR DELETE ON ${flyway:defaultSchema}.leases
    FOR EACH ROW EXECUTE FUNCTION ${flyway:defaultSchema}.leases_access_guard();
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
               AND NEW.renewed_at >= OLD.renewed_at
               AND NEW.renewed_at <= clock_timestamp() + interval '1 second'))
    EXECUTE FUNCTION ${flyway:defaultSchema}.leases_access_guard();
