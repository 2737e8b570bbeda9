-- Lease groups: N shards spread over the live members of a group. Shard k of group g is the ordinary lease "g/k" of
-- kind 'shard', taken, renewed, released and fenced with the protocol functions like any other lease; this file adds
-- only membership and the reads members need to agree on an assignment:
--
--   group_join    a candidate joins a group (or refreshes its weight and priority), by its own login
--   group_leave   a member leaves at once (on shutdown)
--   group_renew   renews the caller's member rows and its leases in one statement (renew_all for the leases)
--   group_state   the group's shard count, its live members and who owns each shard now, in one read
--   group_handoff an operator moves one shard to another member (handoff() of its lease, checked against the group)
--   group_evict   an operator removes a member row now
--   group_member_gone (fast failover) removes a member whose registered lease session has ended
--
-- Members compute the assignment themselves from group_state (every member computes the same one); nothing here
-- assigns a shard, and nothing here can give a shard to anyone: only acquire does, by the lease rules (an operator's
-- handoff takes a shard from its holder and steers who may take it next, as for any lease).
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

-- Joins group p_group as member p_member (the caller's holder id) with a weight and a priority, for p_ttl_ms (at most
-- as long as the longest row of the group's other live members lives per renewal, when there are any); or, when
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
    instant        timestamptz;
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
    -- a newcomer's row lives no longer than the longest row of the group's other live members (their lease duration):
    -- one statement can not leave a member in the group for longer than the group's own timings
    ttl := least(ttl, (SELECT max(m.expires_at - m.renewed_at) FROM ${flyway:defaultSchema}.group_members m
                        WHERE m.group_name = p_group AND m.member <> p_member));
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
    instant := clock_timestamp(); -- one instant: the row lasts exactly ttl
    INSERT INTO ${flyway:defaultSchema}.group_members AS m
           (group_name, member, member_role, weight, priority, joined_at, renewed_at, expires_at)
    VALUES (p_group, p_member, session_user, p_weight, p_priority, instant, instant, instant + ttl)
    ON CONFLICT (group_name, member) DO UPDATE
       SET weight = excluded.weight, priority = excluded.priority, renewed_at = excluded.renewed_at,
           expires_at = excluded.expires_at
     WHERE m.member_role = session_user
    RETURNING m.joined_at INTO joined;
    IF joined IS NULL THEN
        RAISE EXCEPTION 'pglease: member "%" of group "%" is another login''s live member', p_member, p_group
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM ${flyway:defaultSchema}.wake_listeners(
        json_build_object('name', p_group, 'kind', 'member_joined', 'member', p_member),
        'member ' || p_member || ' of group ' || p_group);
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
    PERFORM ${flyway:defaultSchema}.wake_listeners(
        json_build_object('name', p_group, 'kind', 'member_left', 'member', p_member),
        'member ' || p_member || ' of group ' || p_group);
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
       SET renewed_at = c.instant, expires_at = c.instant + ttl -- one instant: the row lasts exactly ttl
      FROM (SELECT clock_timestamp() AS instant) c
     WHERE m.group_name = ANY (p_groups) AND m.member = p_holder AND m.member_role = session_user
       AND m.expires_at > c.instant
    RETURNING 'member'::text, m.group_name;
    IF coalesce(cardinality(p_names), 0) > 0 OR coalesce(cardinality(p_tokens), 0) > 0 THEN
        RETURN QUERY
        SELECT 'lease'::text, r.renewed
          FROM ${flyway:defaultSchema}.renew_all(p_holder, p_names, p_tokens, p_ttl_ms) AS r(renewed);
    END IF;
END
$$;

-- Fast failover: removes member p_member of group p_group when every shard it holds was registered for crash
-- takeover (fast_failover_register, R__05) by a database session that no longer exists (holder_session_ended), so
-- that the others, told at once, compute the assignment without it and take its shards over
-- (fast_failover_take_over, by the lease rules: only a grant whose registered session ended is taken early). A member
-- that holds no shard, or one of whose registered sessions is still there, stays (false): it leaves by expiry or by
-- group_leave. Only what is provably gone is removed, and removing a member row takes no shard from anyone.
CREATE OR REPLACE FUNCTION ${flyway:defaultSchema}.group_member_gone(p_group text, p_member text) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS
$$
DECLARE
    held  integer;
    ended integer;
BEGIN
    PERFORM ${flyway:defaultSchema}.durable_commit();
    SELECT count(*), count(*) FILTER (WHERE ${flyway:defaultSchema}.holder_session_ended(l.name, l.token))
      INTO held, ended
      FROM ${flyway:defaultSchema}.lease_groups g
           CROSS JOIN LATERAL generate_series(0, g.shards - 1) AS k
           JOIN ${flyway:defaultSchema}.leases l ON l.name = g.name || '/' || k
     WHERE g.name = p_group AND l.kind = 'shard' AND l.holder = p_member AND l.expires_at > clock_timestamp()
       AND l.holder_role = (SELECT m.member_role FROM ${flyway:defaultSchema}.group_members m
                             WHERE m.group_name = p_group AND m.member = p_member);
    IF held = 0 OR ended < held THEN
        RETURN false;
    END IF;
    DELETE FROM ${flyway:defaultSchema}.group_members m WHERE m.group_name = p_group AND m.member = p_member;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM ${flyway:defaultSchema}.wake_listeners(
        json_build_object('name', p_group, 'kind', 'member_gone', 'member', p_member),
        'member ' || p_member || ' of group ' || p_group);
    RETURN true;
END
$$;

-- An operator removes member p_member of group p_group now (a member that never takes its shards, a row left by a
-- login that should not be there): the others, told at once, compute the assignment without it. Removing a member
-- row takes no shard from anyone (an operator moves a held shard with group_handoff or handoff). The member, if it
-- still runs, joins again at its next read; revoke its login's candidate role to keep it out. Returns whether it was
-- a member.
CREATE OR REPLACE FUNCTION ${flyway:defaultSchema}.group_evict(p_group text, p_member text) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS
$$
BEGIN
    PERFORM ${flyway:defaultSchema}.durable_commit();
    DELETE FROM ${flyway:defaultSchema}.group_members m WHERE m.group_name = p_group AND m.member = p_member;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM ${flyway:defaultSchema}.wake_listeners(
        json_build_object('name', p_group, 'kind', 'member_evicted', 'member', p_member),
        'member ' || p_member || ' of group ' || p_group);
    RETURN true;
END
$$;

-- What a member needs to compute the assignment, in one read: a 'group' row (shard = the number of shards), one
-- 'member' row per live member (member id, weight, priority, joined_at, milliseconds until it expires), one 'shard'
-- row per shard held now (shard number, holder in member, token, milliseconds until it expires, acquired_at: when
-- this grant began) and one 'handoff' row per shard an operator handed off that nobody has taken yet (shard number,
-- the member it was taken from in member, the holder id prefix it was handed to in handoff_to, NULL for any other
-- member, and the milliseconds the handoff still steers), and one 'lapsed' row per shard whose grant expired without
-- being released while its holder is still a live member, in the membership that last renewed the grant (shard
-- number, that holder in member, the grant's token and acquired_at; a member whose row expired and that joined again
-- is a newcomer to the grants it did not renew since):
-- the assignment gives it back to that member, so a grant that ends while its member stays (a resume of a
-- stepped-down grant that came too late while the member's row was renewed) moves no shard. Times are the database
-- clock's. No row at all when the group does not exist. A shard held under a live member's id by another login is not that member's: it has no row
-- (the assignment sees it as not owned by any member, and its acquire is refused until that grant ends).
DROP FUNCTION IF EXISTS ${flyway:defaultSchema}.group_state(text);
CREATE FUNCTION ${flyway:defaultSchema}.group_state(p_group text)
    RETURNS TABLE (what text, member text, shard integer, token bigint, weight integer, priority integer,
                   joined_at timestamptz, remaining_ms bigint, acquired_at timestamptz, handoff_to text)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS
$$
-- one instant for the whole read: a grant that expires while the read runs is held in every column or in none
WITH t AS MATERIALIZED (SELECT clock_timestamp() AS now),
     m AS (SELECT m.* FROM ${flyway:defaultSchema}.group_members m, t
            WHERE m.group_name = p_group AND m.expires_at > t.now),
     s AS (SELECT k, l.*, (l.holder IS NOT NULL AND l.expires_at > t.now) AS held,
                  greatest(0, ceil(extract(epoch FROM l.expires_at - t.now) * 1000))::bigint AS held_ms,
                  greatest(0, ceil(extract(epoch FROM l.handoff_until - t.now) * 1000))::bigint AS handoff_ms,
                  (coalesce(l.handoff_until > t.now, false) AND l.handoff_from IS NOT NULL) AS steered
             FROM t, ${flyway:defaultSchema}.lease_groups g
                  CROSS JOIN LATERAL generate_series(0, g.shards - 1) AS k
                  JOIN ${flyway:defaultSchema}.leases l ON l.name = g.name || '/' || k
            WHERE g.name = p_group AND l.kind = 'shard')
SELECT 'group', NULL::text, g.shards, NULL::bigint, NULL::integer, NULL::integer, g.created_at, NULL::bigint,
       NULL::timestamptz, NULL::text
  FROM ${flyway:defaultSchema}.lease_groups g
 WHERE g.name = p_group
UNION ALL
SELECT 'member', m.member, NULL, NULL, m.weight, m.priority, m.joined_at,
       greatest(0, ceil(extract(epoch FROM m.expires_at - t.now) * 1000))::bigint, NULL, NULL
  FROM m, t
UNION ALL
SELECT CASE WHEN s.held THEN 'shard' WHEN s.steered THEN 'handoff' ELSE 'lapsed' END,
       CASE WHEN s.held OR NOT s.steered THEN s.holder ELSE s.handoff_from END,
       s.k, s.token, NULL, NULL, NULL,
       CASE WHEN s.held THEN s.held_ms WHEN s.steered THEN s.handoff_ms ELSE 0 END,
       CASE WHEN s.held OR NOT s.steered THEN s.acquired_at END,
       CASE WHEN s.held OR NOT s.steered THEN NULL ELSE s.handoff_to END
  FROM s
 WHERE (s.held AND NOT EXISTS (SELECT 1 FROM m WHERE m.member = s.holder AND m.member_role <> s.holder_role))
    OR (NOT s.held AND s.steered)
    OR (NOT s.held AND NOT s.steered
        AND EXISTS (SELECT 1 FROM m WHERE m.member = s.holder AND m.member_role = s.holder_role
                                      AND m.joined_at <= s.renewed_at));
$$;

-- An operator moves shard p_shard of group p_group to another member now: the shard's lease is handed off
-- (handoff(), R__06: its holder loses it at once, its token moves on, so the holder's fenced writes fail from this
-- commit on, and only a holder id starting with p_to_prefix, when given, may take it for one lease duration) and the
-- group is told; its members read the group, and the assignment gives the shard to a live member the handoff allows
-- (under its share if one is, else the one the rendezvous hash prefers), which takes it at once. The member that
-- receives it gives one of its other shards back when it now has more than its share, so the group stays balanced.
-- Refused (SQLSTATE 22023, nothing changed) when the group or shard does not exist, or no live member other than the
-- holder would be allowed to take it. Returns the shard's new token, or NULL when nobody holds the shard.
CREATE OR REPLACE FUNCTION ${flyway:defaultSchema}.group_handoff(p_group text, p_shard integer,
                                                                p_to_prefix text DEFAULT NULL)
    RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS
$$
DECLARE
    group_shards integer;
    shard_name   text;
    owner        text;
    others       text;
BEGIN
    SELECT g.shards INTO group_shards FROM ${flyway:defaultSchema}.lease_groups g WHERE g.name = p_group;
    IF group_shards IS NULL THEN
        RAISE EXCEPTION 'pglease: there is no lease group %', coalesce(quote_literal(
                            regexp_replace(left(p_group, 210), '[^[:print:]]', '?', 'g')), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_shard IS NULL OR p_shard NOT BETWEEN 0 AND group_shards - 1 THEN
        RAISE EXCEPTION 'pglease: group % has shards 0 to %, got %', quote_literal(p_group), group_shards - 1,
                        coalesce(p_shard::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    shard_name := p_group || '/' || p_shard;
    SELECT l.holder INTO owner
      FROM ${flyway:defaultSchema}.leases l
     WHERE l.name = shard_name AND l.kind = 'shard' AND l.holder IS NOT NULL AND l.expires_at > clock_timestamp();
    IF owner IS NULL THEN
        RETURN NULL;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM ${flyway:defaultSchema}.group_members m
                    WHERE m.group_name = p_group AND m.expires_at > clock_timestamp() AND m.member <> owner
                      AND (p_to_prefix IS NULL OR starts_with(m.member, p_to_prefix))) THEN
        SELECT string_agg(m.member, ', ' ORDER BY m.joined_at) INTO others
          FROM ${flyway:defaultSchema}.group_members m
         WHERE m.group_name = p_group AND m.expires_at > clock_timestamp() AND m.member <> owner;
        RAISE EXCEPTION 'pglease: no live member of group % other than its holder % %: the shard would stay without '
                        'an owner; the other live members are: %', quote_literal(p_group), owner,
                        CASE WHEN p_to_prefix IS NULL THEN 'exists'
                             ELSE 'has an id starting with ' || quote_literal(p_to_prefix) END,
                        coalesce(left(others, 300), 'none')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN ${flyway:defaultSchema}.handoff(shard_name, p_to_prefix);
END
$$;

-- For psql: every member of every group, live or expired (until the next join of its group removes it).
DROP VIEW IF EXISTS ${flyway:defaultSchema}.group_member_status;
CREATE VIEW ${flyway:defaultSchema}.group_member_status AS
WITH t AS MATERIALIZED (SELECT clock_timestamp() AS now)
SELECT m.group_name,
       m.member,
       m.weight,
       m.priority,
       m.joined_at,
       m.renewed_at                                                                AS last_renewal,
       (m.expires_at > t.now)                                          AS live,
       CASE WHEN m.expires_at > t.now
            THEN date_trunc('milliseconds', m.expires_at - t.now) END AS remaining,
       (SELECT count(*)
          FROM generate_series(0, g.shards - 1) AS k
               JOIN ${flyway:defaultSchema}.leases l ON l.name = g.name || '/' || k
         WHERE l.kind = 'shard' AND l.holder = m.member AND l.holder_role = m.member_role
           AND l.expires_at > t.now)                                   AS shards_owned,
       m.member_role,
       m.expires_at
  FROM ${flyway:defaultSchema}.group_members m
       JOIN ${flyway:defaultSchema}.lease_groups g ON g.name = m.group_name
       CROSS JOIN t;

-- For psql: every shard of every group, its lease and who owns it now.
DROP VIEW IF EXISTS ${flyway:defaultSchema}.group_shard_status;
CREATE VIEW ${flyway:defaultSchema}.group_shard_status AS
WITH t AS MATERIALIZED (SELECT clock_timestamp() AS now)
SELECT g.name                                                                     AS group_name,
       k                                                                          AS shard,
       g.name || '/' || k                                                         AS lease,
       CASE WHEN l.holder IS NOT NULL AND l.expires_at > t.now THEN l.holder END AS owner,
       l.token,
       coalesce(l.holder IS NOT NULL AND l.expires_at > t.now, false) AS held,
       CASE WHEN l.holder IS NOT NULL AND l.expires_at > t.now
            THEN date_trunc('milliseconds', l.expires_at - t.now) END AS remaining,
       EXISTS (SELECT 1 FROM ${flyway:defaultSchema}.group_members m
                WHERE m.group_name = g.name AND m.member = l.holder AND m.member_role = l.holder_role
                  AND m.expires_at > t.now)                           AS owner_is_member
  FROM t, ${flyway:defaultSchema}.lease_groups g
       CROSS JOIN LATERAL generate_series(0, g.shards - 1) AS k
       LEFT JOIN ${flyway:defaultSchema}.leases l ON l.name = g.name || '/' || k AND l.kind = 'shard';

REVOKE ALL ON FUNCTION ${flyway:defaultSchema}.group_tables_guard(),
                       ${flyway:defaultSchema}.check_group_numbers(integer, integer, integer),
                       ${flyway:defaultSchema}.group_join(text, text, integer, integer, integer, bigint),
                       ${flyway:defaultSchema}.group_leave(text, text),
                       ${flyway:defaultSchema}.group_renew(text, text[], text[], bigint[], bigint),
                       ${flyway:defaultSchema}.group_state(text),
                       ${flyway:defaultSchema}.group_handoff(text, integer, text),
                       ${flyway:defaultSchema}.group_member_gone(text, text),
                       ${flyway:defaultSchema}.group_evict(text, text)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ${flyway:defaultSchema}.group_join(text, text, integer, integer, integer, bigint),
                          ${flyway:defaultSchema}.group_leave(text, text),
                          ${flyway:defaultSchema}.group_renew(text, text[], text[], bigint[], bigint),
                          ${flyway:defaultSchema}.group_member_gone(text, text)
    TO "${candidate_role}";
GRANT EXECUTE ON FUNCTION ${flyway:defaultSchema}.group_state(text)
    TO "${candidate_role}", "${observer_role}", "${operator_role}";
GRANT EXECUTE ON FUNCTION ${flyway:defaultSchema}.group_handoff(text, integer, text),
                          ${flyway:defaultSchema}.group_evict(text, text)
    TO "${operator_role}";
GRANT SELECT ON ${flyway:defaultSchema}.group_member_status, ${flyway:defaultSchema}.group_shard_status
    TO "${candidate_role}", "${observer_role}", "${operator_role}";
