-- Lease groups: N shards spread over the live members of a group. Shard k of group g is the ordinary lease "g/k" of
-- kind 'shard', taken, renewed, released and fenced with the protocol functions like any other lease; this file adds
-- only membership and the reads members need to agree on an assignment:
--
--   group_join    a candidate joins a group (or refreshes its weight and priority), by its own login
--   group_leave   a member leaves at once (on shutdown)
--   group_renew   renews the caller's member rows and its leases in one statement (renew_all for the leases)
--   group_state   the group's shard count, its live members and who owns each shard now, in one read
--
-- Members compute the assignment themselves from group_state (every member computes the same one); nothing here
-- assigns a shard, and nothing here can give a shard to anyone: only acquire does, by the lease rules.
-- Membership changes are announced on the schema's notification channel ("<schema>.leases") with the group's name:
-- a wake-up only, like every notification.

SET LOCAL search_path = pg_catalog, pg_temp; -- nothing a login planted in another schema is ever called

-- Only the owner writes the group tables (the functions below run as the owner).
CREATE OR REPLACE FUNCTION ${flyway:defaultSchema}.group_tables_guard() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS
$$
BEGIN
    IF pg_has_role(current_user, (SELECT c.relowner FROM pg_class c WHERE c.oid = TG_RELID), 'MEMBER') THEN
        RETURN CASE WHEN TG_LEVEL = 'STATEMENT' THEN NULL WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    END IF;
    RAISE EXCEPTION 'pglease: role % may not write %.% directly: members join, renew and leave through group_join, '
                    'group_renew and group_leave', current_user, TG_TABLE_SCHEMA, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;

DROP TRIGGER IF EXISTS lease_groups_guard ON ${flyway:defaultSchema}.lease_groups;
DROP TRIGGER IF EXISTS lease_groups_guard_truncate ON ${flyway:defaultSchema}.lease_groups;
DROP TRIGGER IF EXISTS group_members_guard ON ${flyway:defaultSchema}.group_members;
DROP TRIGGER IF EXISTS group_members_guard_truncate ON ${flyway:defaultSchema}.group_members;
CREATE TRIGGER lease_groups_guard
    BEFORE INSERT OR UPDATE OR DELETE ON ${flyway:defaultSchema}.lease_groups
    FOR EACH ROW EXECUTE FUNCTION ${flyway:defaultSchema}.group_tables_guard();
CREATE TRIGGER lease_groups_guard_truncate
    BEFORE TRUNCATE ON ${flyway:defaultSchema}.lease_groups
    FOR EACH STATEMENT EXECUTE FUNCTION ${flyway:defaultSchema}.group_tables_guard();
CREATE TRIGGER group_members_guard
    BEFORE INSERT OR UPDATE OR DELETE ON ${flyway:defaultSchema}.group_members
    FOR EACH ROW EXECUTE FUNCTION ${flyway:defaultSchema}.group_tables_guard();
CREATE TRIGGER group_members_guard_truncate
    BEFORE TRUNCATE ON ${flyway:defaultSchema}.group_members
    FOR EACH STATEMENT EXECUTE FUNCTION ${flyway:defaultSchema}.group_tables_guard();

-- The bounds of a group's numbers, checked with a message that names the bad value.
CREATE OR REPLACE FUNCTION ${flyway:defaultSchema}.check_group_numbers(p_shards integer, p_weight integer,
                                                                      p_priority integer)
    RETURNS void
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS
$$
BEGIN
    IF p_shards IS NULL OR p_shards NOT BETWEEN 1 AND 100000 THEN
        RAISE EXCEPTION 'pglease: the number of shards of a group must be between 1 and 100000, got %',
                        coalesce(p_shards::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_weight IS NULL OR p_weight NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'pglease: the weight of a group member must be between 1 and 1000, got %',
                        coalesce(p_weight::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_priority IS NULL OR p_priority NOT BETWEEN -1000 AND 1000 THEN
        RAISE EXCEPTION 'pglease: the priority of a group member must be between -1000 and 1000, got %',
                        coalesce(p_priority::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$$;

-- Joins group p_group as member p_member (the caller's holder id) with a weight and a priority, for p_ttl_ms; or, when
-- this login is already that member, refreshes its row (keeping when it joined). The first member creates the group
-- with p_shards shards; a member asking for another number is refused while the group has another live member (the
-- number can change only when nobody else is there). Expired member rows of the group are removed. A member id held
-- by another login (live) is refused. Returns when the member joined and the group's number of shards.
CREATE OR REPLACE FUNCTION ${flyway:defaultSchema}.group_join(p_group text, p_member text, p_shards integer,
                                                             p_weight integer, p_priority integer, p_ttl_ms bigint)
    RETURNS TABLE (joined_at timestamptz, shards integer)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS
$$
#variable_conflict use_column
DECLARE
    ttl            interval := ${flyway:defaultSchema}.check_duration('the lease duration', p_ttl_ms);
    current_shards integer;
    others         text;
    joined         timestamptz;
BEGIN
    PERFORM ${flyway:defaultSchema}.check_name('a group name', p_group, 190);
    PERFORM ${flyway:defaultSchema}.check_name('a member id', p_member, 255);
    PERFORM ${flyway:defaultSchema}.check_group_numbers(p_shards, p_weight, p_priority);
    PERFORM ${flyway:defaultSchema}.durable_commit();
    INSERT INTO ${flyway:defaultSchema}.lease_groups AS g (name, shards) VALUES (p_group, p_shards)
    ON CONFLICT (name) DO NOTHING;
    -- one join or leave of a group at a time
    SELECT g.shards INTO current_shards FROM ${flyway:defaultSchema}.lease_groups g WHERE g.name = p_group FOR UPDATE;
    DELETE FROM ${flyway:defaultSchema}.group_members m
     WHERE m.group_name = p_group AND m.expires_at <= clock_timestamp();
    IF current_shards <> p_shards THEN
        SELECT string_agg(m.member, ', ' ORDER BY m.joined_at) INTO others
          FROM ${flyway:defaultSchema}.group_members m
         WHERE m.group_name = p_group AND m.member <> p_member;
        IF others IS NOT NULL THEN
            RAISE EXCEPTION 'pglease: group "%" has % shards and live members (%): a member can not join it with % '
                            'shards', p_group, current_shards, left(others, 300), p_shards
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Give every member the same number of shards; it can change only while the group has '
                             'no other live member.';
        END IF;
        UPDATE ${flyway:defaultSchema}.lease_groups g SET shards = p_shards WHERE g.name = p_group;
    END IF;
    INSERT INTO ${flyway:defaultSchema}.group_members AS m
           (group_name, member, member_role, weight, priority, joined_at, renewed_at, expires_at)
    VALUES (p_group, p_member, session_user, p_weight, p_priority, clock_timestamp(), clock_timestamp(),
            clock_timestamp() + ttl)
    ON CONFLICT (group_name, member) DO UPDATE
       SET weight = excluded.weight, priority = excluded.priority, renewed_at = excluded.renewed_at,
           expires_at = excluded.expires_at
     WHERE m.member_role = session_user
    RETURNING m.joined_at INTO joined;
    IF joined IS NULL THEN
        RAISE EXCEPTION 'pglease: member "%" of group "%" is another login''s live member', p_member, p_group
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM pg_notify('${flyway:defaultSchema}.leases',
                      json_build_object('name', p_group, 'kind', 'member_joined', 'member', p_member)::text);
    RETURN QUERY SELECT joined, p_shards;
END
$$;

-- Leaves the group at once (the caller's own member row only). Returns whether the member was there.
CREATE OR REPLACE FUNCTION ${flyway:defaultSchema}.group_leave(p_group text, p_member text) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS
$$
BEGIN
    PERFORM ${flyway:defaultSchema}.durable_commit();
    DELETE FROM ${flyway:defaultSchema}.group_members m
     WHERE m.group_name = p_group AND m.member = p_member AND m.member_role = session_user;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM pg_notify('${flyway:defaultSchema}.leases',
                      json_build_object('name', p_group, 'kind', 'member_left', 'member', p_member)::text);
    RETURN true;
END
$$;

-- One statement per retry period for a member: renews the caller's unexpired member rows of p_holder in the groups
-- p_groups and, with renew_all's rules, its leases (names and tokens) for p_ttl_ms more. Returns one row per member
-- row renewed ('member', group name) and per lease renewed ('lease', lease name). An expired member row is not
-- renewed: the member joins again.
CREATE OR REPLACE FUNCTION ${flyway:defaultSchema}.group_renew(p_holder text, p_groups text[], p_names text[],
                                                              p_tokens bigint[], p_ttl_ms bigint)
    RETURNS TABLE (what text, name text)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS
$$
#variable_conflict use_column
DECLARE
    ttl interval := ${flyway:defaultSchema}.check_duration('the lease duration', p_ttl_ms);
BEGIN
    PERFORM ${flyway:defaultSchema}.durable_commit();
    RETURN QUERY
    UPDATE ${flyway:defaultSchema}.group_members AS m
       SET renewed_at = clock_timestamp(), expires_at = clock_timestamp() + ttl
     WHERE m.group_name = ANY (p_groups) AND m.member = p_holder AND m.member_role = session_user
       AND m.expires_at > clock_timestamp()
    RETURNING 'member'::text, m.group_name;
    IF coalesce(cardinality(p_names), 0) > 0 OR coalesce(cardinality(p_tokens), 0) > 0 THEN
        RETURN QUERY
        SELECT 'lease'::text, r.renewed
          FROM ${flyway:defaultSchema}.renew_all(p_holder, p_names, p_tokens, p_ttl_ms) AS r(renewed);
    END IF;
END
$$;

-- What a member needs to compute the assignment, in one read: a 'group' row (shard = the number of shards), one
-- 'member' row per live member (member id, weight, priority, joined_at, milliseconds until it expires) and one 'shard'
-- row per shard held now (shard number, holder in member, token, milliseconds until it expires). Times are the
-- database clock's. No row at all when the group does not exist.
CREATE OR REPLACE FUNCTION ${flyway:defaultSchema}.group_state(p_group text)
    RETURNS TABLE (what text, member text, shard integer, token bigint, weight integer, priority integer,
                   joined_at timestamptz, remaining_ms bigint)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS
$$
SELECT 'group', NULL::text, g.shards, NULL::bigint, NULL::integer, NULL::integer, g.created_at, NULL::bigint
  FROM ${flyway:defaultSchema}.lease_groups g
 WHERE g.name = p_group
UNION ALL
SELECT 'member', m.member, NULL, NULL, m.weight, m.priority, m.joined_at,
       greatest(0, ceil(extract(epoch FROM m.expires_at - clock_timestamp()) * 1000))::bigint
  FROM ${flyway:defaultSchema}.group_members m
 WHERE m.group_name = p_group AND m.expires_at > clock_timestamp()
UNION ALL
SELECT 'shard', l.holder, k, l.token, NULL, NULL, NULL,
       greatest(0, ceil(extract(epoch FROM l.expires_at - clock_timestamp()) * 1000))::bigint
  FROM ${flyway:defaultSchema}.lease_groups g
       CROSS JOIN LATERAL generate_series(0, g.shards - 1) AS k
       JOIN ${flyway:defaultSchema}.leases l ON l.name = g.name || '/' || k
 WHERE g.name = p_group AND l.kind = 'shard' AND l.holder IS NOT NULL AND l.expires_at > clock_timestamp();
$$;

-- For psql: every member of every group, live or expired (until the next join of its group removes it).
DROP VIEW IF EXISTS ${flyway:defaultSchema}.group_member_status;
CREATE VIEW ${flyway:defaultSchema}.group_member_status AS
SELECT m.group_name,
       m.member,
       m.weight,
       m.priority,
       m.joined_at,
       m.renewed_at                                                                AS last_renewal,
       (m.expires_at > clock_timestamp())                                          AS live,
       CASE WHEN m.expires_at > clock_timestamp()
            THEN date_trunc('milliseconds', m.expires_at - clock_timestamp()) END AS remaining,
       (SELECT count(*)
          FROM generate_series(0, g.shards - 1) AS k
               JOIN ${flyway:defaultSchema}.leases l ON l.name = g.name || '/' || k
         WHERE l.kind = 'shard' AND l.holder = m.member AND l.expires_at > clock_timestamp())  AS shards_owned,
       m.member_role,
       m.expires_at
  FROM ${flyway:defaultSchema}.group_members m
       JOIN ${flyway:defaultSchema}.lease_groups g ON g.name = m.group_name;

-- For psql: every shard of every group, its lease and who owns it now.
DROP VIEW IF EXISTS ${flyway:defaultSchema}.group_shard_status;
CREATE VIEW ${flyway:defaultSchema}.group_shard_status AS
SELECT g.name                                                                     AS group_name,
       k                                                                          AS shard,
       g.name || '/' || k                                                         AS lease,
       CASE WHEN l.holder IS NOT NULL AND l.expires_at > clock_timestamp() THEN l.holder END AS owner,
       l.token,
       coalesce(l.holder IS NOT NULL AND l.expires_at > clock_timestamp(), false) AS held,
       CASE WHEN l.holder IS NOT NULL AND l.expires_at > clock_timestamp()
            THEN date_trunc('milliseconds', l.expires_at - clock_timestamp()) END AS remaining,
       EXISTS (SELECT 1 FROM ${flyway:defaultSchema}.group_members m
                WHERE m.group_name = g.name AND m.member = l.holder
                  AND m.expires_at > clock_timestamp())                           AS owner_is_member
  FROM ${flyway:defaultSchema}.lease_groups g
       CROSS JOIN LATERAL generate_series(0, g.shards - 1) AS k
       LEFT JOIN ${flyway:defaultSchema}.leases l ON l.name = g.name || '/' || k AND l.kind = 'shard';

REVOKE ALL ON FUNCTION ${flyway:defaultSchema}.group_tables_guard(),
                       ${flyway:defaultSchema}.check_group_numbers(integer, integer, integer),
                       ${flyway:defaultSchema}.group_join(text, text, integer, integer, integer, bigint),
                       ${flyway:defaultSchema}.group_leave(text, text),
                       ${flyway:defaultSchema}.group_renew(text, text[], text[], bigint[], bigint),
                       ${flyway:defaultSchema}.group_state(text)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ${flyway:defaultSchema}.group_join(text, text, integer, integer, integer, bigint),
                          ${flyway:defaultSchema}.group_leave(text, text),
                          ${flyway:defaultSchema}.group_renew(text, text[], text[], bigint[], bigint)
    TO "${candidate_role}";
GRANT EXECUTE ON FUNCTION ${flyway:defaultSchema}.group_state(text)
    TO "${candidate_role}", "${observer_role}", "${operator_role}";
GRANT SELECT ON ${flyway:defaultSchema}.group_member_status, ${flyway:defaultSchema}.group_shard_status
    TO "${candidate_role}", "${observer_role}", "${operator_role}";
