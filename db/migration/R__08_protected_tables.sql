-- Protected tables: the database itself refuses a stale or unfenced write, whoever sends it.
--
-- protect(table, lease) puts two triggers on a table the caller owns: every INSERT, UPDATE, DELETE (also COPY,
-- MERGE, INSERT ... ON CONFLICT) commits only in a transaction that called fence(lease, token) with the lease's
-- current token, from the login that holds the lease, while the lease has not expired; TRUNCATE is refused. The
-- trigger does not trust the mark fence() leaves: it checks the token against the lease row and locks the row
-- FOR KEY SHARE itself, so a rollback to a savepoint, a hand-set setting or an old token never passes, and a change
-- of holder or token waits until the writing transaction ends. A refused write fails with SQLSTATE PL002 and a
-- message naming the table, the lease, the token presented and the current one.
-- The check runs once per statement (per row on a partitioned table, so partitions attached later are covered), on
-- the whole hierarchy below the protected table, whatever session_replication_role says.
-- What it does not stop: the table's owner or a superuser (they can drop the trigger), and code running as the
-- holder's login that copies the current token on purpose. Under REPEATABLE READ the lease row is read as of the
-- transaction's snapshot: a release by the holder itself after the fence is not seen (a successor's grant still
-- waits for the transaction). A protected table can not be the target of logical replication: the apply worker
-- writes unfenced.

SET LOCAL search_path = pg_catalog, pg_temp; -- nothing a login planted in another schema is ever called

CREATE OR REPLACE FUNCTION ${flyway:defaultSchema}.protected_write_guard() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS
$$
DECLARE
    lease_name text := TG_ARGV[0];
    presented  bigint;
    current    ${flyway:defaultSchema}.leases;
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        RAISE EXCEPTION 'pglease: table %.% is protected by lease "%": TRUNCATE is refused', TG_TABLE_SCHEMA,
                        TG_TABLE_NAME, lease_name
            USING ERRCODE = 'PL002';
    END IF;
    presented := (nullif(current_setting('pglease.fenced_${flyway:defaultSchema}', true), '')::jsonb
                  ->> lease_name)::bigint;
    IF presented IS NOT NULL THEN
        PERFORM 1
           FROM ${flyway:defaultSchema}.leases l
          WHERE l.name = lease_name AND l.token = presented AND l.holder IS NOT NULL
            AND l.holder_role = session_user AND l.expires_at > clock_timestamp()
            FOR KEY SHARE;
        IF FOUND THEN
            PERFORM ${flyway:defaultSchema}.unpreparable();
            RETURN CASE WHEN TG_LEVEL = 'STATEMENT' THEN NULL WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
        END IF;
    END IF;
    SELECT * INTO current FROM ${flyway:defaultSchema}.leases l WHERE l.name = lease_name;
    RAISE EXCEPTION 'pglease: % on %.% refused: the transaction is not fenced for lease "%" with its current token '
                    '(presented: %, current: %)', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME, lease_name,
                    coalesce(presented::text, 'none'),
                    CASE WHEN current.name IS NULL THEN 'no such lease'
                         WHEN current.holder IS NULL OR current.expires_at <= clock_timestamp()
                             THEN current.token || ', not held'
                         WHEN current.holder_role <> session_user
                             THEN current.token || ', held by another login'
                         ELSE current.token::text END
        USING ERRCODE = 'PL002',
              HINT = 'Call ' || '${flyway:defaultSchema}' || '.fence(lease, token) first in the transaction.';
END
$$;

-- Protects p_table (a table the caller owns; the caller must be a member of a pglease role) with lease p_lease, and
-- with it every table below it in an inheritance or partition hierarchy: a hierarchy is protected from its root, so
-- a write through a parent never reaches an unchecked child. A partitioned table is checked per row (the trigger is
-- cloned to partitions attached later); other tables once per statement. The triggers fire whatever
-- session_replication_role says (ENABLE ALWAYS): a role allowed to set it can not switch them off. Idempotent; run it
-- again after adding inheritance children or partitions, to refuse TRUNCATE of them by name. Refuses a table protected
-- by another lease of this schema.
CREATE OR REPLACE FUNCTION ${flyway:defaultSchema}.protect(p_table regclass, p_lease text) RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS
$$
DECLARE
    rel       pg_class;
    parent    regclass;
    existing  text;
    member    record;
BEGIN
    PERFORM ${flyway:defaultSchema}.check_lease_name(p_lease);
    SELECT * INTO rel FROM pg_class c WHERE c.oid = p_table;
    IF rel.oid IS NULL OR rel.relkind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION 'pglease: only a table can be protected, got %', coalesce(p_table::text, 'NULL')
            USING ERRCODE = 'wrong_object_type';
    END IF;
    IF rel.relnamespace = '${flyway:defaultSchema}'::regnamespace THEN
        RAISE EXCEPTION 'pglease: % is a table of pglease itself; it has its own guards', p_table
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT i.inhparent::regclass INTO parent FROM pg_inherits i WHERE i.inhrelid = p_table LIMIT 1;
    IF parent IS NOT NULL THEN
        RAISE EXCEPTION 'pglease: % inherits from %: protect the root of its hierarchy (writes through a parent '
                        'would not reach the check of a child)', p_table, parent
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR member IN SELECT t.relid::regclass AS tab, c.relkind, c.relowner
                    FROM pg_partition_tree(p_table) t JOIN pg_class c ON c.oid = t.relid
                  UNION
                  SELECT d.oid::regclass, d.relkind, d.relowner FROM ${flyway:defaultSchema}.inheritors(p_table) d
    LOOP
        IF NOT pg_has_role(current_user, member.relowner, 'USAGE') THEN
            RAISE EXCEPTION 'pglease: only the owner of % (role %) may protect it; % is not', member.tab,
                            member.relowner::regrole, current_user
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        SELECT ${flyway:defaultSchema}.trigger_lease(t.tgargs) INTO existing
          FROM pg_trigger t
         WHERE t.tgrelid = member.tab AND t.tgname = '${flyway:defaultSchema}_no_truncate';
        IF existing IS NOT NULL AND existing <> p_lease THEN
            RAISE EXCEPTION 'pglease: % is protected by lease "%" already; unprotect it first', member.tab, existing
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END LOOP;
    FOR member IN SELECT t.relid::regclass AS tab, c.relkind, t.relid = p_table::oid AS root
                    FROM pg_partition_tree(p_table) t JOIN pg_class c ON c.oid = t.relid
                  UNION
                  SELECT d.oid::regclass, d.relkind, d.oid = p_table::oid FROM ${flyway:defaultSchema}.inheritors(p_table) d
    LOOP
        IF EXISTS (SELECT 1 FROM pg_trigger t
                    WHERE t.tgrelid = member.tab AND t.tgname = '${flyway:defaultSchema}_no_truncate') THEN
            EXECUTE format('DROP TRIGGER %I ON %s', '${flyway:defaultSchema}_no_truncate', member.tab);
        END IF;
        EXECUTE format('CREATE TRIGGER %I BEFORE TRUNCATE ON %s FOR EACH STATEMENT '
                       'EXECUTE FUNCTION ${flyway:defaultSchema}.protected_write_guard(%L)',
                       '${flyway:defaultSchema}_no_truncate', member.tab, p_lease);
        EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER %I', member.tab, '${flyway:defaultSchema}_no_truncate');
        IF rel.relkind = 'p' AND NOT member.root THEN
            CONTINUE; -- partitions get the write check as a clone of the root's row trigger
        END IF;
        IF EXISTS (SELECT 1 FROM pg_trigger t
                    WHERE t.tgrelid = member.tab AND t.tgname = '${flyway:defaultSchema}_fence' AND t.tgparentid = 0) THEN
            EXECUTE format('DROP TRIGGER %I ON %s', '${flyway:defaultSchema}_fence', member.tab);
        END IF;
        EXECUTE format('CREATE TRIGGER %I BEFORE INSERT OR UPDATE OR DELETE ON %s FOR EACH %s '
                       'EXECUTE FUNCTION ${flyway:defaultSchema}.protected_write_guard(%L)',
                       '${flyway:defaultSchema}_fence', member.tab,
                       CASE WHEN member.relkind = 'p' THEN 'ROW' ELSE 'STATEMENT' END, p_lease);
        EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER %I', member.tab, '${flyway:defaultSchema}_fence');
    END LOOP;
END
$$;

-- Removes the protection of p_table (a table the caller owns) and of every table below it. Returns whether it was
-- protected.
CREATE OR REPLACE FUNCTION ${flyway:defaultSchema}.unprotect(p_table regclass) RETURNS boolean
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS
$$
DECLARE
    was    boolean;
    member regclass;
BEGIN
    was := EXISTS (SELECT 1 FROM pg_trigger t
                    WHERE t.tgrelid = p_table AND t.tgname = '${flyway:defaultSchema}_no_truncate');
    FOR member IN SELECT t.relid::regclass FROM pg_partition_tree(p_table) t
                  UNION
                  SELECT d.oid::regclass FROM ${flyway:defaultSchema}.inheritors(p_table) d
    LOOP
        IF EXISTS (SELECT 1 FROM pg_trigger t
                    WHERE t.tgrelid = member AND t.tgname = '${flyway:defaultSchema}_fence' AND t.tgparentid = 0) THEN
            EXECUTE format('DROP TRIGGER %I ON %s', '${flyway:defaultSchema}_fence', member);
        END IF;
        IF EXISTS (SELECT 1 FROM pg_trigger t
                    WHERE t.tgrelid = member AND t.tgname = '${flyway:defaultSchema}_no_truncate') THEN
            EXECUTE format('DROP TRIGGER %I ON %s', '${flyway:defaultSchema}_no_truncate', member);
        END IF;
    END LOOP;
    RETURN was;
END
$$;

-- p_table and every table that inherits from it, at any depth (plain inheritance; partitions are in
-- pg_partition_tree).
CREATE OR REPLACE FUNCTION ${flyway:defaultSchema}.inheritors(p_table regclass)
    RETURNS TABLE (oid oid, relkind "char", relowner oid)
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS
$$
WITH RECURSIVE tree(oid) AS (
    SELECT p_table::oid
    UNION
    SELECT i.inhrelid FROM pg_inherits i JOIN tree ON i.inhparent = tree.oid
)
SELECT c.oid, c.relkind, c.relowner FROM tree JOIN pg_class c ON c.oid = tree.oid;
$$;

CREATE OR REPLACE FUNCTION ${flyway:defaultSchema}.check_lease_name(p_lease text) RETURNS void
    LANGUAGE sql IMMUTABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$ SELECT ${flyway:defaultSchema}.check_name('a lease name', p_lease, 200) $$;

-- The lease named by a protection trigger's argument.
CREATE OR REPLACE FUNCTION ${flyway:defaultSchema}.trigger_lease(p_args bytea) RETURNS text
    LANGUAGE sql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$ SELECT convert_from(substring(p_args FROM 1 FOR position('\x00'::bytea IN p_args) - 1), 'UTF8') $$;

-- Every table protected by a lease of this schema, read from the catalog (it can not drift from the triggers): the
-- roots of protected hierarchies and each table below them, with how its writes are checked.
CREATE OR REPLACE VIEW ${flyway:defaultSchema}.protected_tables AS
SELECT t.tgrelid::regclass                                                 AS table_name,
       ${flyway:defaultSchema}.trigger_lease(t.tgargs)                      AS lease,
       CASE WHEN f.tgtype & 1 = 1 THEN 'row'
            WHEN f.oid IS NOT NULL THEN 'statement'
            ELSE 'through its parent' END                                   AS checked_per
  FROM pg_trigger t
  LEFT JOIN pg_trigger f ON f.tgrelid = t.tgrelid AND f.tgname = '${flyway:defaultSchema}_fence'
 WHERE t.tgfoid = '${flyway:defaultSchema}.protected_write_guard()'::regprocedure
   AND t.tgname = '${flyway:defaultSchema}_no_truncate';

REVOKE ALL ON FUNCTION ${flyway:defaultSchema}.protected_write_guard(),
                       ${flyway:defaultSchema}.protect(regclass, text),
                       ${flyway:defaultSchema}.unprotect(regclass),
                       ${flyway:defaultSchema}.check_lease_name(text),
                       ${flyway:defaultSchema}.trigger_lease(bytea),
                       ${flyway:defaultSchema}.inheritors(regclass)
    FROM PUBLIC;
-- protect and unprotect run with the caller's rights (only a table's owner can create or drop its triggers), and
-- creating the trigger needs EXECUTE on the trigger function (which can not be called directly). The owner of a table
-- to protect must be a member of one of the three pglease roles (the observer role is enough): only they may use the
-- schema at all.
GRANT EXECUTE ON FUNCTION ${flyway:defaultSchema}.protected_write_guard(),
                          ${flyway:defaultSchema}.protect(regclass, text),
                          ${flyway:defaultSchema}.unprotect(regclass),
                          ${flyway:defaultSchema}.check_lease_name(text),
                          ${flyway:defaultSchema}.trigger_lease(bytea),
                          ${flyway:defaultSchema}.inheritors(regclass)
    TO "${candidate_role}", "${observer_role}", "${operator_role}";
GRANT SELECT ON ${flyway:defaultSchema}.protected_tables TO "${candidate_role}", "${observer_role}", "${operator_role}";
