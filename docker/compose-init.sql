-- Logins of the Docker Compose walkthrough, each with the least it needs (run once, by the superuser, when the
-- database is created: /docker-entrypoint-initdb.d). The passwords are the walkthrough's, not for production.
--
--   pglease_owner   owns the pglease schema (pglease migrate) and the workload's tables (node --setup-workload):
--                   CREATE on the database only; the three roles exist already, so it needs no CREATEROLE
--   payments_app    the nodes: a member of pglease_candidate, nothing else
--   pglease_ops     the `cli` service (status, history, release, handoff): a member of pglease_operator
--   pglease_watch   the `watch` service: a member of pglease_observer
CREATE ROLE pglease_candidate NOLOGIN;
CREATE ROLE pglease_observer NOLOGIN;
CREATE ROLE pglease_operator NOLOGIN;

CREATE ROLE pglease_owner LOGIN PASSWORD 'pglease_owner';
GRANT CREATE ON DATABASE pglease TO pglease_owner;

CREATE ROLE payments_app LOGIN PASSWORD 'payments_app' IN ROLE pglease_candidate;
CREATE ROLE pglease_ops LOGIN PASSWORD 'pglease_ops' IN ROLE pglease_operator;
CREATE ROLE pglease_watch LOGIN PASSWORD 'pglease_watch' IN ROLE pglease_observer;
