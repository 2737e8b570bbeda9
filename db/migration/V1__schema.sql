-- pglease schema, version 1: the tables, their constraints, the three roles and what each may read.
--
-- Applied by PgLease.migrate(...) or `pglease migrate`, with Flyway, into a schema of its own (default "pglease")
-- with its own history table. Every function, trigger and view lives in a repeatable migration (R__*.sql), one
-- file per concern, applied after this one. To apply the SQL with other tooling, replace the placeholders:
--   ${flyway:defaultSchema}  the pglease schema
--   ${candidate_role}        campaigns, renews, releases and fences through the protocol functions
--   ${observer_role}         reads status and history
--   ${operator_role}         reads, and calls force_release() / handoff()
-- Each role is created NOLOGIN when it does not exist; an existing role is only granted to. Applications log in as
-- their own users, made members of one role (GRANT pglease_candidate TO billing_app).
--
-- Nobody but the owner of the schema (the role that runs the migrations) writes a table directly: candidates and
-- operators change leases only through the SECURITY DEFINER functions of the repeatable migrations, which check
-- who calls them (session_user) against the lease row. The owner, its members and superusers bypass every grant.

SET LOCAL search_path = pg_catalog, pg_temp; -- nothing a login planted in another schema is ever called

-- ---------------------------------------------------------------------------------------------------------------
-- Roles
-- ---------------------------------------------------------------------------------------------------------------
-- The schema must be the migrating role's own, with nothing in it that another role owns: a schema created in advance
-- by someone else (any login with CREATE on the database could) would let that role replace what the migration builds.
DO
$$
DECLARE
    schema_owner oid := (SELECT n.nspowner FROM pg_catalog.pg_namespace n WHERE n.nspname = '${flyway:defaultSchema}');
    foreign_object text;
BEGIN
    IF NOT pg_catalog.pg_has_role(current_user, schema_owner, 'MEMBER') THEN
        RAISE EXCEPTION 'pglease: schema % is owned by %, not by % (the role migrating it); pglease migrates only a '
                        'schema its owner role owns', '${flyway:defaultSchema}', schema_owner::regrole, current_user
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Drop the schema, or ALTER SCHEMA ... OWNER TO the migrating role, after checking its contents.';
    END IF;
    SELECT c.relname INTO foreign_object
      FROM pg_catalog.pg_class c
     WHERE c.relnamespace = (SELECT n.oid FROM pg_catalog.pg_namespace n WHERE n.nspname = '${flyway:defaultSchema}')
       AND NOT pg_catalog.pg_has_role(current_user, c.relowner, 'MEMBER')
     LIMIT 1;
    IF foreign_object IS NULL THEN
        SELECT p.proname INTO foreign_object
          FROM pg_catalog.pg_proc p
         WHERE p.pronamespace = (SELECT n.oid FROM pg_catalog.pg_namespace n WHERE n.nspname = '${flyway:defaultSchema}')
           AND NOT pg_catalog.pg_has_role(current_user, p.proowner, 'MEMBER')
         LIMIT 1;
    END IF;
    IF foreign_object IS NOT NULL THEN
        RAISE EXCEPTION 'pglease: schema % holds % owned by another role than %; pglease migrates only a schema with '
                        'nothing of another role in it', '${flyway:defaultSchema}', foreign_object, current_user
            USING ERRCODE = 'insufficient_privilege';
    END IF;
END
$$;

DO
$$
DECLARE
    wanted text[] := ARRAY['${candidate_role}', '${observer_role}', '${operator_role}'];
    kinds  text[] := ARRAY['candidate', 'observer', 'operator'];
    r      text;
BEGIN
    IF pg_catalog.getdatabaseencoding() NOT IN ('UTF8', 'SQL_ASCII') THEN
        RAISE EXCEPTION 'pglease: database % has encoding %; pglease needs UTF8', pg_catalog.current_database(),
                        pg_catalog.getdatabaseencoding()
            USING ERRCODE = 'feature_not_supported';
    END IF;
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
                                        ' or pass the names of existing roles', r);
            END;
        END IF;
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
-- Leases
-- ---------------------------------------------------------------------------------------------------------------
-- Names and holders are shown to people (psql, the CLI, logs): not blank, no control characters, and none of the
-- invisible or direction-changing characters that make one name display as another (soft hyphen, Arabic letter mark,
-- Hangul fillers, Mongolian vowel separator, zero-width and bidirectional marks, embeddings, overrides and isolates,
-- invisible operators, the blank Braille pattern, byte-order mark). The same set as check_name() and Java's Names.
CREATE TABLE ${flyway:defaultSchema}.leases (
    name          text        NOT NULL PRIMARY KEY,
    kind          text        NOT NULL DEFAULT 'election',
    holder        text        NULL,
    holder_role   text        NULL,
    token         bigint      NOT NULL,
    acquired_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    renewed_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    expires_at    timestamptz NOT NULL,
    handoff_from  text        NULL,
    handoff_to    text        NULL,
    handoff_until timestamptz NULL,
    CONSTRAINT leases_name_valid CHECK (char_length(name) BETWEEN 1 AND 200 AND name !~ '[[:cntrl:]]'
        AND name ~ '[^[:space:]]'
        AND name !~ '[\u00AD\u061C\u115F\u1160\u180E\u200B-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u206F\u2800\u3164\uFEFF\uFFA0]'),
    CONSTRAINT leases_holder_valid CHECK (holder IS NULL OR (char_length(holder) BETWEEN 1 AND 255
        AND holder !~ '[[:cntrl:]]' AND holder ~ '[^[:space:]]'
        AND holder !~ '[\u00AD\u061C\u115F\u1160\u180E\u200B-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u206F\u2800\u3164\uFEFF\uFFA0]')),
    CONSTRAINT leases_kind_valid CHECK (kind IN ('election', 'lock', 'shard')),
    CONSTRAINT leases_token_positive CHECK (token >= 1),
    CONSTRAINT leases_held_by_a_role CHECK ((holder IS NULL) = (holder_role IS NULL)),
    -- A fenced transaction locks its lease row FOR KEY SHARE. With the token in a unique key, a change of token (a
    -- takeover, a force release, a handoff) is a key update and waits for every fenced transaction on the row,
    -- while the holder's renewal, which only moves expires_at and renewed_at, does not.
    CONSTRAINT leases_name_token_key UNIQUE (name, token)
);

COMMENT ON TABLE ${flyway:defaultSchema}.leases IS
    'One row per lease. The token grows with every change of holder; rows are never deleted.';
COMMENT ON COLUMN ${flyway:defaultSchema}.leases.kind IS
    'election (an elector campaigns for it), lock (single-shot locks) or shard (a lease of a lease group).';
COMMENT ON COLUMN ${flyway:defaultSchema}.leases.holder_role IS
    'Login (session_user) that acquired the lease; only that login may renew, release or fence it. NULL when free.';

CREATE TABLE ${flyway:defaultSchema}.lease_events (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            text        NOT NULL,
    token           bigint      NOT NULL,
    holder          text        NULL,
    previous_holder text        NULL,
    kind            text        NOT NULL,
    changed_by      text        NOT NULL DEFAULT session_user,
    at              timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT lease_events_kind_valid CHECK (kind IN
        ('acquired', 'taken_over', 'released', 'force_released', 'handed_off'))
);

CREATE INDEX lease_events_name_id ON ${flyway:defaultSchema}.lease_events (name, id);

COMMENT ON TABLE ${flyway:defaultSchema}.lease_events IS
    'Every change of holder or token of a lease, written by a trigger on leases (also for hand edits by the owner).';
COMMENT ON COLUMN ${flyway:defaultSchema}.lease_events.changed_by IS
    'Login (session_user) of the session that made the change.';

-- The label an operator function gives the change it makes (force_released, handed_off), keyed by its transaction.
-- Only the owner writes it (the operator functions run as the owner): a session setting could be set by anyone.
-- Unlogged: a mark lives only as long as its transaction.
CREATE UNLOGGED TABLE ${flyway:defaultSchema}.operator_marks (
    txid bigint NOT NULL PRIMARY KEY,
    kind text   NOT NULL CHECK (kind IN ('force_released', 'handed_off'))
);

-- ---------------------------------------------------------------------------------------------------------------
-- Terms: the high bits of every token
-- ---------------------------------------------------------------------------------------------------------------
-- One row per (cluster, timeline) a grant was ever made on. A new pair gets a term above every term recorded, so a
-- promotion, a pg_upgrade (a new cluster starts on timeline 1) or a timeline number reused after a rewind never
-- repeats a term on this history. See current_term() in R__01_terms.sql.
CREATE TABLE ${flyway:defaultSchema}.terms (
    term              bigint      NOT NULL PRIMARY KEY CHECK (term BETWEEN 1 AND 2147483648),
    system_identifier numeric     NOT NULL,
    timeline          bigint      NOT NULL,
    recorded_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT terms_pair_key UNIQUE (system_identifier, timeline)
);

COMMENT ON TABLE ${flyway:defaultSchema}.terms IS
    'The term of each (cluster, timeline) pair grants were made on; a new pair gets a higher term than any before.';

-- ---------------------------------------------------------------------------------------------------------------
-- Fast failover: grants whose holder asked to be taken over the moment its database session ends
-- ---------------------------------------------------------------------------------------------------------------
CREATE TABLE ${flyway:defaultSchema}.fast_failover_sessions (
    name          text        NOT NULL PRIMARY KEY,
    token         bigint      NOT NULL,
    holder_role   text        NOT NULL,
    pid           integer     NOT NULL,
    backend_start timestamptz NOT NULL,
    registered_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

COMMENT ON TABLE ${flyway:defaultSchema}.fast_failover_sessions IS
    'The database session (pid, backend_start) that registered a grant for crash takeover; only that session may '
    'renew it, and a standby may take it over before it expires only once that session no longer exists.';

-- ---------------------------------------------------------------------------------------------------------------
-- Forward-only fences for resources outside the lease row
-- ---------------------------------------------------------------------------------------------------------------
CREATE TABLE ${flyway:defaultSchema}.fences (
    resource    text        NOT NULL PRIMARY KEY,
    lease       text        NOT NULL,
    token       bigint      NOT NULL,
    advanced_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT fences_resource_valid CHECK (char_length(resource) BETWEEN 1 AND 200 AND resource !~ '[[:cntrl:]]'),
    CONSTRAINT fences_token_valid CHECK (token >= 0)
);

COMMENT ON TABLE ${flyway:defaultSchema}.fences IS
    'Per resource, the highest token a write was accepted with; it only moves forward, and never past a token the '
    'lease has granted.';

-- ---------------------------------------------------------------------------------------------------------------
-- Privileges on the schema and its tables. Functions grant their own EXECUTE in the file that defines them.
-- ---------------------------------------------------------------------------------------------------------------
REVOKE ALL ON SCHEMA ${flyway:defaultSchema} FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA ${flyway:defaultSchema} FROM PUBLIC;
GRANT USAGE ON SCHEMA ${flyway:defaultSchema} TO "${candidate_role}", "${observer_role}", "${operator_role}";

GRANT SELECT ON ${flyway:defaultSchema}.leases, ${flyway:defaultSchema}.lease_events, ${flyway:defaultSchema}.terms,
                ${flyway:defaultSchema}.fences, ${flyway:defaultSchema}.fast_failover_sessions
    TO "${candidate_role}", "${observer_role}", "${operator_role}";

-- ---------------------------------------------------------------------------------------------------------------
-- Lease groups: N shards over the live members of a group (functions and views in R__10_groups.sql)
-- ---------------------------------------------------------------------------------------------------------------
-- Each shard k of group g is the ordinary lease "g/k" of kind 'shard' (its own token, history and fences). These
-- tables only say which groups exist, how many shards each has, and who its members are. A member row is renewed in
-- the same statement as the member's shard leases and expires like them; a member that shuts down deletes its row.
CREATE TABLE ${flyway:defaultSchema}.lease_groups (
    name       text        NOT NULL PRIMARY KEY,
    shards     integer     NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT lease_groups_name_valid CHECK (char_length(name) BETWEEN 1 AND 190 AND name !~ '[[:cntrl:]]'
        AND name ~ '[^[:space:]]'
        AND name !~ '[\u00AD\u061C\u115F\u1160\u180E\u200B-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u206F\u2800\u3164\uFEFF\uFFA0]'),
    CONSTRAINT lease_groups_shards_valid CHECK (shards BETWEEN 1 AND 100000)
);

COMMENT ON TABLE ${flyway:defaultSchema}.lease_groups IS
    'One row per lease group: its number of shards. Shard k is the lease "<name>/<k>" of kind shard.';

CREATE TABLE ${flyway:defaultSchema}.group_members (
    group_name  text        NOT NULL REFERENCES ${flyway:defaultSchema}.lease_groups (name),
    member      text        NOT NULL,
    member_role text        NOT NULL,
    weight      integer     NOT NULL,
    priority    integer     NOT NULL,
    joined_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    renewed_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    expires_at  timestamptz NOT NULL,
    PRIMARY KEY (group_name, member),
    CONSTRAINT group_members_member_valid CHECK (char_length(member) BETWEEN 1 AND 255
        AND member !~ '[[:cntrl:]]' AND member ~ '[^[:space:]]'
        AND member !~ '[\u00AD\u061C\u115F\u1160\u180E\u200B-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u206F\u2800\u3164\uFEFF\uFFA0]'),
    CONSTRAINT group_members_weight_valid CHECK (weight BETWEEN 1 AND 1000),
    CONSTRAINT group_members_priority_valid CHECK (priority BETWEEN -1000 AND 1000)
);

COMMENT ON TABLE ${flyway:defaultSchema}.group_members IS
    'The members of each lease group (live while expires_at is in the future, by the database clock).';
COMMENT ON COLUMN ${flyway:defaultSchema}.group_members.member IS
    'The member''s holder id: the holder of the shard leases it owns.';
COMMENT ON COLUMN ${flyway:defaultSchema}.group_members.member_role IS
    'Login (session_user) that joined; only that login may renew the row or leave.';

REVOKE ALL ON ${flyway:defaultSchema}.lease_groups, ${flyway:defaultSchema}.group_members FROM PUBLIC;
GRANT SELECT ON ${flyway:defaultSchema}.lease_groups, ${flyway:defaultSchema}.group_members
    TO "${candidate_role}", "${observer_role}", "${operator_role}";
