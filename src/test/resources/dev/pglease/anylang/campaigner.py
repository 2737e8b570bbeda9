#!/usr/bin/env python3
"""A pglease candidate in Python: campaigns for a lease through the SQL functions of the pglease schema.

    campaigner.py --dsn "host=db dbname=app user=billing_app" --lease payments
                  [--schema pglease] [--lease-duration 10s --renew-deadline 6s --retry-period 2s]
                  [--work none|fenced-counter] [--work-interval 50ms] [--work-schema SCHEMA]
                  [--holder-label LABEL] [--trace]

Writes one JSON object per line to stdout and nothing else, with the events and fields of `pglease node`:
started, elected, revoked, released, write (with --work fenced-counter) and acquire, renew (with --trace).
`t`, `start`, `sent` and `deadline` are wall-clock epoch milliseconds, for people and log correlation only:
every decision is taken on a monotonic clock. SIGTERM or SIGINT releases the lease and exits 0. Exit codes:
1 refused (the login lacks a privilege), 2 bad usage, 3 database unreachable at start, 4 schema missing or of
another version. Warnings go to stderr.

The rules it follows:
  * Each lease call (acquire, renew, release) is one statement in its own transaction (auto-commit).
  * The local deadline is the monotonic clock reading taken BEFORE the successful acquire or renew was sent, plus
    renewDeadline. Nothing is done for the lease after it; at the deadline the leader steps down whether or not
    the database answered. An answer that arrives after the deadline is not trusted.
  * The leader renews every retryPeriod. A standby sleeps until the expiry the database reported (capped by
    retryPeriod, plus jitter) and wakes early when NOTIFY announces that the lease was released.
  * Every statement gives up on the server (statement_timeout, lock_timeout) before the client stops waiting for
    it, and the client stops waiting at its own network timeout or at the deadline, whichever comes first. Any
    error counts as "not renewed".
  * A protected write runs in one transaction that calls <schema>.fence(lease, token, remaining ms) first, and is
    rolled back instead of committed once the deadline has passed.
  * Shutdown releases the lease, so a standby takes over at once instead of after leaseDuration.

Needs psycopg2 (Debian: apt-get install python3-psycopg2). The login must be a member of the pglease candidate
role; for --work fenced-counter it needs SELECT, INSERT and UPDATE on <work-schema>.fenced_counter and
<work-schema>.fenced_counter_log, which their owner protects with <schema>.protect(table, lease).
"""

import argparse
import json
import math
import os
import random
import re
import secrets
import select
import signal
import socket
import sys
import time

import psycopg2
import psycopg2.errors
import psycopg2.extensions
from psycopg2 import sql

SCHEMA_VERSION = 1
EXIT_REFUSED, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_SCHEMA = 1, 2, 3, 4
IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,47}\Z")
SIMPLE_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)\Z")
ISO_DURATION = re.compile(r"PT(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?\Z", re.IGNORECASE)
UNPRINTABLE = re.compile("[\x00-\x1f\x7f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff]")
MAX_EXPIRY_JITTER = 0.010


def monotonic():
    """Seconds on a clock that never steps. CLOCK_BOOTTIME also counts a suspend of the machine, so a suspend can
    only bring the deadline closer, never push it past the lease's expiry on the database."""
    try:
        return time.clock_gettime(time.CLOCK_BOOTTIME)
    except (AttributeError, OSError):
        return time.monotonic()


def wall_millis():
    """Wall-clock epoch milliseconds, for the reported events only."""
    return int(time.time() * 1000)


# --------------------------------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------------------------------

def duration(text):
    """Parses 500ms, 2s, 1.5s, 1m, 1h or ISO-8601 PT2S into seconds, 1 ms to 1 day."""
    value = text.strip()
    m = SIMPLE_DURATION.match(value)
    if m:
        seconds = float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[m.group(2)]
    else:
        m = ISO_DURATION.match(value)
        if not m or not any(m.groups()):
            raise argparse.ArgumentTypeError(
                "'%s' is not a duration: use e.g. 500ms, 2s, 1.5s, 1m, 1h or PT2S" % text)
        hours, minutes, secs = (float(g) if g else 0.0 for g in m.groups())
        seconds = hours * 3600 + minutes * 60 + secs
    if not 0.001 <= seconds <= 86400:
        raise argparse.ArgumentTypeError("'%s' must be between 1ms and 1 day" % text)
    return seconds


def millis(seconds):
    """Whole milliseconds for the database, rounded up."""
    return max(1, math.ceil(seconds * 1000 - 1e-6))


def show(seconds):
    return "%gms" % round(seconds * 1000, 3)


def parse_settings(argv):
    p = argparse.ArgumentParser(
        prog="campaigner.py",
        description="Run one candidate for a pglease lease until stopped (SIGTERM releases the lease and exits 0). "
                    "Writes one JSON object per line to stdout: started, elected, revoked, released, write "
                    "(acquire and renew with --trace).")
    p.add_argument("--dsn", default=os.environ.get("PGLEASE_DSN", ""),
                   help="libpq connection string or URI, e.g. 'host=db dbname=app user=billing_app' or "
                        "postgresql://billing_app@db/app (default: $PGLEASE_DSN; empty: the libpq environment, "
                        "PGHOST, PGUSER, PGPASSWORD, ...)")
    p.add_argument("--lease", required=True, help="lease name to campaign for")
    p.add_argument("--schema", default="pglease", help="pglease schema (default: %(default)s)")
    p.add_argument("--lease-duration", type=duration, default=10.0, metavar="DURATION",
                   help="how long a grant lasts on the database clock after each renewal (default: 10s)")
    p.add_argument("--renew-deadline", type=duration, default=6.0, metavar="DURATION",
                   help="how long a renewal is trusted, from the moment it was sent (default: 6s)")
    p.add_argument("--retry-period", type=duration, default=2.0, metavar="DURATION",
                   help="how often the leader renews; longest standby sleep (default: 2s)")
    p.add_argument("--work", default="none", choices=["none", "fenced-counter"],
                   help="work the leader does (default: %(default)s)")
    p.add_argument("--work-interval", type=duration, default=0.05, metavar="DURATION",
                   help="pause between two writes of the fenced counter (default: 50ms)")
    p.add_argument("--work-schema", default=None,
                   help="schema of the fenced_counter and fenced_counter_log tables (default: --schema)")
    p.add_argument("--holder-label", default=None, help="start of the holder id (default: host name)")
    p.add_argument("--trace", action="store_true", help="also report every acquire and renew statement")
    s = p.parse_args(argv)

    if s.lease == "" or len(s.lease) > 200 or UNPRINTABLE.search(s.lease):
        p.error("--lease must be 1 to 200 characters without control, invisible or direction-changing characters, "
                "got %r" % s.lease)
    for flag, value in (("--schema", s.schema), ("--work-schema", s.work_schema)):
        if value is not None and (not IDENTIFIER.match(value) or value.startswith("pg_")):
            p.error("%s %r is not allowed: use 1 to 48 characters a-z, 0-9 and _, starting with a letter or _, "
                    "and not starting with pg_" % (flag, value))
    if s.work_schema is None:
        s.work_schema = s.schema
    s.application_name = "pglease-node" if s.holder_label is None else "pglease-node-" + s.holder_label[:50]
    if s.holder_label is None:
        s.holder_label = UNPRINTABLE.sub("", socket.gethostname())[:200] or "pglease"
    elif s.holder_label == "" or len(s.holder_label) > 200 or UNPRINTABLE.search(s.holder_label):
        p.error("--holder-label must be 1 to 200 characters without control, invisible or direction-changing "
                "characters, got %r" % s.holder_label)
    if s.renew_deadline > 0.9 * s.lease_duration + 1e-9:
        p.error("--renew-deadline must be at most 90%% of --lease-duration (the rest absorbs a difference of up to "
                "10%% between this machine's and the database's clock rates), got --lease-duration %s and "
                "--renew-deadline %s (at most %s)" % (show(s.lease_duration), show(s.renew_deadline),
                                                     show(0.9 * s.lease_duration)))
    if s.renew_deadline <= 1.2 * s.retry_period:
        p.error("--renew-deadline must be greater than 1.2 x --retry-period, got --renew-deadline %s and "
                "--retry-period %s (1.2 x --retry-period = %s)" % (show(s.renew_deadline), show(s.retry_period),
                                                                   show(1.2 * s.retry_period)))
    try:
        s.dsn_params = psycopg2.extensions.parse_dsn(s.dsn)
    except psycopg2.ProgrammingError as e:
        p.error("--dsn is not a libpq connection string or URI: %s" % str(e).strip())
    # The client waits for an answer at most this long; the server gives up on a statement after half of it, so
    # an abandoned acquire can never commit a grant nobody knows about.
    s.network_timeout = s.renew_deadline + 0.1
    s.statement_timeout = s.network_timeout / 2
    return s


# --------------------------------------------------------------------------------------------------------------
# Database access with a deadline on every wait
# --------------------------------------------------------------------------------------------------------------

class TimedOut(psycopg2.OperationalError):
    """The client stopped waiting: its network timeout or its local deadline came first."""


_give_up_at = None


def _wait(conn):
    """psycopg2 wait callback: the only place this process waits for the server, bounded by _give_up_at."""
    while True:
        state = conn.poll()
        if state == psycopg2.extensions.POLL_OK:
            return
        timeout = None if _give_up_at is None else _give_up_at - monotonic()
        if timeout is not None and timeout <= 0:
            raise TimedOut("no answer in time")
        fd = conn.fileno()
        if state == psycopg2.extensions.POLL_READ:
            ready = select.select([fd], [], [], timeout)[0]
        elif state == psycopg2.extensions.POLL_WRITE:
            ready = select.select([], [fd], [], timeout)[1]
        else:
            raise psycopg2.OperationalError("unexpected poll state %r" % state)
        if not ready:
            raise TimedOut("no answer in time")


psycopg2.extensions.set_wait_callback(_wait)


class Database:
    """Opens connections with the session settings the protocol needs, and runs statements with a time bound."""

    def __init__(self, settings):
        self.settings = settings
        timeout_ms = millis(settings.statement_timeout)
        params = dict(settings.dsn_params)
        params["options"] = (params.get("options", "") + " -c statement_timeout=%d -c lock_timeout=%d"
                             " -c idle_in_transaction_session_timeout=%d"
                             % (timeout_ms, timeout_ms, millis(settings.network_timeout))).strip()
        params.setdefault("application_name", settings.application_name)
        params.setdefault("connect_timeout", str(max(2, math.ceil(settings.network_timeout))))
        params.setdefault("keepalives", "1")
        params.setdefault("keepalives_idle", str(max(1, int(settings.retry_period))))
        params.setdefault("keepalives_interval", "1")
        params.setdefault("keepalives_count", "3")
        if psycopg2.extensions.libpq_version() >= 120000:
            params.setdefault("tcp_user_timeout", str(millis(settings.network_timeout)))
        self.params = params

    def connect(self, give_up_at, autocommit):
        global _give_up_at
        _give_up_at = give_up_at
        try:
            conn = psycopg2.connect(**self.params)
            conn.autocommit = autocommit
            return conn
        finally:
            _give_up_at = None

    @staticmethod
    def run(conn, statement, args, give_up_at, fetch=True):
        """Runs one statement; on any error the connection is closed (its state is unknown) and the error raised."""
        global _give_up_at
        _give_up_at = give_up_at
        try:
            with conn.cursor() as cur:
                cur.execute(statement, args)
                return cur.fetchone() if fetch else None
        except BaseException:
            close(conn)
            raise
        finally:
            _give_up_at = None


def close(conn):
    if conn is not None:
        try:
            conn.close()
        except psycopg2.Error:
            pass


def describe(error):
    """One line for an event's reason: the SQLSTATE, if any, and the server's first message line."""
    diag = getattr(error, "diag", None)
    text = (diag.message_primary if diag is not None else None) or str(error).strip() or type(error).__name__
    text = text.splitlines()[0]
    code = getattr(error, "pgcode", None)
    return "%s: %s" % (code, text) if code else text


# --------------------------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------------------------

def emit(event, **fields):
    record = {"event": event, "t": wall_millis()}
    record.update(fields)
    try:
        sys.stdout.write(json.dumps(record, separators=(",", ":")) + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        # nobody reads the events any more: keep campaigning (a shutdown still releases), as the Java node does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def warn(message):
    sys.stderr.write("campaigner: %s\n" % message)
    sys.stderr.flush()


class Stop:
    """SIGTERM / SIGINT: set a flag and wake any sleep through a pipe (the signal handler itself does nothing else)."""

    def __init__(self):
        self.requested = False
        self.read_fd, write_fd = os.pipe()
        os.set_blocking(self.read_fd, False)
        os.set_blocking(write_fd, False)
        signal.set_wakeup_fd(write_fd)
        signal.signal(signal.SIGTERM, self._handle)
        signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum, frame):
        self.requested = True

    def drain(self):
        try:
            while os.read(self.read_fd, 512):
                pass
        except BlockingIOError:
            pass


# --------------------------------------------------------------------------------------------------------------
# The candidate
# --------------------------------------------------------------------------------------------------------------

class Campaigner:

    def __init__(self, settings):
        self.s = settings
        self.db = Database(settings)
        self.stop = Stop()
        self.holder = "%s/%d/%s" % (settings.holder_label, os.getpid(), secrets.token_hex(4))
        schema = sql.Identifier(settings.schema)
        self.sql_acquire = sql.SQL("SELECT granted, token, holder, wait_ms FROM {}.acquire(%s, %s, %s)").format(schema)
        self.sql_renew = sql.SQL("SELECT {}.renew(%s, %s, %s, %s)").format(schema)
        self.sql_release = sql.SQL("SELECT {}.release(%s, %s, %s)").format(schema)
        self.sql_fence = sql.SQL("SELECT {}.fence(%s, %s, %s)").format(schema)
        work = sql.Identifier(settings.work_schema)
        self.sql_increment = sql.SQL(
            "INSERT INTO {}.fenced_counter AS f (name, value, token) VALUES (%s, 1, %s) "
            "ON CONFLICT (name) DO UPDATE SET value = f.value + 1, token = excluded.token RETURNING value").format(work)
        self.sql_log = sql.SQL(
            "INSERT INTO {}.fenced_counter_log (name, token, holder, value) VALUES (%s, %s, %s, %s)").format(work)
        self.lease_conn = None
        self.write_conn = None
        self.listen_conn = None
        self.listen_retry_at = 0.0
        self.leading = False
        self.token = None          # the token of the last grant this process held or was told it holds
        self.deadline = 0.0        # monotonic: send time of the last successful acquire/renew + renewDeadline
        self.next_renew = 0.0
        self.next_write = 0.0
        self.next_attempt = 0.0
        self.failures = 0
        self.last_error = None

    # ---- start and stop ---------------------------------------------------------------------------------------

    def start(self):
        """Connects and checks the schema; returns an exit code, or None to campaign."""
        try:
            self.lease_conn = self.db.connect(monotonic() + self.s.network_timeout, autocommit=True)
        except psycopg2.Error as e:
            warn("can not connect to the database: %s" % describe(e))
            return EXIT_UNREACHABLE
        try:
            version, may_campaign = Database.run(
                self.lease_conn, sql.SQL("SELECT {}.schema_version(), has_function_privilege(%s, 'EXECUTE')")
                .format(sql.Identifier(self.s.schema)), (self.s.schema + ".acquire(text, text, bigint, text)",),
                monotonic() + self.s.network_timeout)
        except (psycopg2.errors.UndefinedFunction, psycopg2.errors.InvalidSchemaName) as e:
            warn("schema %s is not a pglease schema (migrate it first): %s" % (self.s.schema, describe(e)))
            return EXIT_SCHEMA
        except psycopg2.errors.InsufficientPrivilege as e:
            warn("this login may not use schema %s (make it a member of the candidate role): %s"
                 % (self.s.schema, describe(e)))
            return EXIT_REFUSED
        except psycopg2.Error as e:
            warn("can not read the schema version: %s" % describe(e))
            return EXIT_UNREACHABLE
        if version != SCHEMA_VERSION:
            warn("schema %s is at version %s; this campaigner speaks version %d" % (self.s.schema, version,
                                                                                  SCHEMA_VERSION))
            return EXIT_SCHEMA
        if not may_campaign:
            warn("this login may not campaign in schema %s: make it a member of the candidate role" % self.s.schema)
            return EXIT_REFUSED
        if self.s.work == "fenced-counter":
            code = self.check_work_tables()
            if code is not None:
                return code
        emit("started", lease=self.s.lease, holder=self.holder, pid=os.getpid())
        return None

    def check_work_tables(self):
        tables = [self.s.work_schema + ".fenced_counter", self.s.work_schema + ".fenced_counter_log"]
        try:
            for table in tables:
                exists = Database.run(self.lease_conn, "SELECT to_regclass(%s) IS NOT NULL", (table,),
                                      monotonic() + self.s.network_timeout)[0]
                if not exists:
                    warn("table %s does not exist: its owner creates it (see docs/any-language.md) and protects "
                         "it with %s.protect('%s', '%s')" % (table, self.s.schema, table, self.s.lease))
                    return EXIT_SCHEMA
                protected = Database.run(
                    self.lease_conn, sql.SQL("SELECT lease FROM {}.protected_tables WHERE table_name = %s::regclass")
                    .format(sql.Identifier(self.s.schema)), (table,), monotonic() + self.s.network_timeout)
                if protected is None or protected[0] != self.s.lease:
                    warn("table %s is not protected by lease %s: the database will not refuse a stale write to it "
                         "that skips the fence" % (table, self.s.lease))
        except psycopg2.Error as e:
            warn("can not check the work tables: %s" % describe(e))
            return EXIT_UNREACHABLE
        return None

    def shutdown(self):
        if self.leading:
            self.leading = False
            emit("released", lease=self.s.lease, holder=self.holder, token=self.token, reason="released")
        if self.token is not None:
            try:
                self.lease_call(self.sql_release, (self.s.lease, self.holder, self.token),
                                monotonic() + self.s.network_timeout)
            except psycopg2.Error as e:
                warn("could not release lease %s (it expires on its own): %s" % (self.s.lease, describe(e)))
        for conn in (self.lease_conn, self.write_conn, self.listen_conn):
            close(conn)

    # ---- the loop ---------------------------------------------------------------------------------------------

    def run(self):
        code = self.start()
        if code is not None:
            return code
        self.listen()
        while not self.stop.requested:
            now = monotonic()
            if self.leading:
                if now >= self.deadline:
                    self.step_down("its renew deadline passed without a successful renewal")
                elif now >= self.next_renew:
                    self.renew()
                elif self.s.work == "fenced-counter" and now >= self.next_write:
                    self.write()
                    self.next_write = monotonic() + self.s.work_interval
                else:
                    wake = min(self.next_renew, self.deadline)
                    if self.s.work == "fenced-counter":
                        wake = min(wake, self.next_write)
                    self.sleep_until(wake, listening=False)
            elif now >= self.next_attempt:
                self.campaign()
            else:
                self.sleep_until(self.next_attempt, listening=True)
        self.shutdown()
        return 0

    def lease_call(self, statement, args, give_up_at):
        """One lease statement, auto-commit, on the lease connection (opened again after any error)."""
        try:
            if self.lease_conn is None or self.lease_conn.closed:
                self.lease_conn = self.db.connect(give_up_at, autocommit=True)
            answer = Database.run(self.lease_conn, statement, args, give_up_at)
        except psycopg2.Error as e:
            self.lease_conn = None
            if describe(e) != self.last_error:
                self.last_error = describe(e)
                warn("lease statement failed (counted as not renewed / not granted): %s" % self.last_error)
            raise
        self.last_error = None
        return answer

    def trace(self, event, result, token, sent_wall=None):
        # sent_wall: the wall clock read before the statement was sent; emit() reads t after the answer, so the
        # statement ran between them however long the process was stopped in between
        if not self.s.trace:
            return
        fields = dict(lease=self.s.lease, holder=self.holder, result=result, token=token)
        if sent_wall is not None:
            fields.update(sent=sent_wall, deadline=sent_wall + int(self.s.renew_deadline * 1000))
        emit(event, **fields)

    def wall_deadline(self, now_mono=None):
        now_mono = monotonic() if now_mono is None else now_mono
        return wall_millis() + int(math.floor((self.deadline - now_mono) * 1000))

    def campaign(self):
        sent_wall = wall_millis()
        sent = monotonic()
        try:
            granted, token, holder, wait_ms = self.lease_call(
                self.sql_acquire, (self.s.lease, self.holder, millis(self.s.lease_duration)),
                sent + self.s.network_timeout)
        except psycopg2.Error:
            # the outcome is unknown (a grant may have committed): look again at once, then back off
            self.failures += 1
            self.next_attempt = monotonic() + (0.001 if self.failures == 1 else self.error_backoff())
            return
        answered = monotonic()
        self.failures = 0
        self.trace("acquire", "granted" if granted else "denied", token, sent_wall)
        if granted:
            self.token = token
            if answered >= sent + self.s.renew_deadline:
                self.give_back(token, "the grant was answered after the renew deadline")
            else:
                self.lead(token, sent)
        elif holder == self.holder:
            # The database lists this process: a grant whose answer was lost, or one it stepped down from. Renew it
            # (the renewal's send time gives a deadline) or give it back.
            self.token = token
            self.adopt(token)
        else:
            wait = min(wait_ms / 1000.0, self.s.retry_period)
            jitter = random.uniform(0, min(MAX_EXPIRY_JITTER, self.s.retry_period / 10))
            self.next_attempt = answered + max(wait, 0.001) + jitter

    def adopt(self, token):
        sent_wall = wall_millis()
        sent = monotonic()
        try:
            (renewed,) = self.lease_call(self.sql_renew, (self.s.lease, self.holder, token,
                                                          millis(self.s.lease_duration)),
                                         sent + self.s.network_timeout)
        except psycopg2.Error:
            self.trace("renew", "error", token)
            self.failures += 1
            self.next_attempt = monotonic() + self.error_backoff()
            return
        answered = monotonic()
        self.trace("renew", "ok" if renewed else "lost", token, sent_wall if renewed else None)
        if not renewed:
            self.next_attempt = answered
        elif answered >= sent + self.s.renew_deadline:
            self.give_back(token, "the renewal was answered after the renew deadline")
        else:
            self.lead(token, sent)

    def give_back(self, token, why):
        warn("lease %s token %d can not be used (%s); releasing it" % (self.s.lease, token, why))
        try:
            self.lease_call(self.sql_release, (self.s.lease, self.holder, token), monotonic() + self.s.network_timeout)
        except psycopg2.Error as e:
            warn("release failed (the next attempt sees the grant again): %s" % describe(e))
        self.next_attempt = monotonic()

    def lead(self, token, sent):
        self.leading = True
        self.token = token
        self.deadline = sent + self.s.renew_deadline
        self.next_renew = sent + self.s.retry_period
        self.next_write = monotonic()
        emit("elected", lease=self.s.lease, holder=self.holder, token=token, deadline=self.wall_deadline())

    def step_down(self, reason):
        self.leading = False
        self.next_attempt = monotonic()
        emit("revoked", lease=self.s.lease, holder=self.holder, token=self.token, reason=reason)

    def renew(self):
        sent_wall = wall_millis()
        sent = monotonic()
        try:
            (renewed,) = self.lease_call(self.sql_renew, (self.s.lease, self.holder, self.token,
                                                          millis(self.s.lease_duration)),
                                         min(sent + self.s.network_timeout, self.deadline))
        except psycopg2.Error:
            self.trace("renew", "error", self.token)
            self.failures += 1
            backoff = max(0.001, min(self.s.retry_period / 2, (self.s.retry_period / 8) * 2 ** min(self.failures - 1, 4)))
            self.next_renew = min(monotonic() + backoff, self.deadline)
            return
        answered = monotonic()
        self.failures = 0
        if not renewed:
            self.trace("renew", "lost", self.token)
            self.step_down("the database no longer lists this holder with token %d" % self.token)
        elif answered >= self.deadline:
            self.trace("renew", "ok", self.token, sent_wall)
            self.step_down("the renewal was answered after the renew deadline")
        else:
            self.trace("renew", "ok", self.token, sent_wall)
            self.deadline = sent + self.s.renew_deadline
            self.next_renew = sent + self.s.retry_period

    def error_backoff(self):
        base = min(2 * self.s.retry_period, (self.s.retry_period / 2) * 2 ** min(max(self.failures - 1, 0), 8))
        return max(base, 0.001) + random.uniform(0, base / 5)

    # ---- the protected write ----------------------------------------------------------------------------------

    def write(self):
        start = monotonic()
        if start >= self.deadline:
            return
        token = self.token
        event = dict(lease=self.s.lease, holder=self.holder, token=token, start=wall_millis(),
                     deadline=self.wall_deadline(start))
        try:
            if self.write_conn is None or self.write_conn.closed:
                self.write_conn = self.db.connect(self.deadline, autocommit=False)
            conn = self.write_conn
            # the server bounds the transaction by the lease's remaining time, or by ours when it is shorter
            Database.run(conn, self.sql_fence, (self.s.lease, token, millis(self.deadline - monotonic())),
                         self.deadline)
            self.check_deadline()
            (value,) = Database.run(conn, self.sql_increment, (self.s.lease, token), self.deadline)
            self.check_deadline()
            Database.run(conn, self.sql_log, (self.s.lease, token, self.holder, value), self.deadline, fetch=False)
            self.check_deadline()
            self.commit(conn)
            event.update(result="accepted", value=value)
        except DeadlinePassed:
            self.rollback()
            event.update(result="rejected", reason="LEASE_LOST: the local deadline passed before the commit")
        except psycopg2.Error as e:
            self.rollback()
            refused = getattr(e, "pgcode", None) in ("PL001", "PL002")
            event.update(result="rejected" if refused else "error", reason=describe(e))
        emit("write", **event)

    def check_deadline(self):
        if monotonic() >= self.deadline:
            raise DeadlinePassed()

    def commit(self, conn):
        global _give_up_at
        _give_up_at = self.deadline
        try:
            conn.commit()
        except BaseException:
            close(conn)
            raise
        finally:
            _give_up_at = None

    def rollback(self):
        conn, self.write_conn = self.write_conn, None
        if conn is None or conn.closed:
            return
        global _give_up_at
        _give_up_at = monotonic() + self.s.network_timeout
        try:
            conn.rollback()
            self.write_conn = conn
        except psycopg2.Error:
            close(conn)
        finally:
            _give_up_at = None

    # ---- waiting and notifications ----------------------------------------------------------------------------

    def listen(self):
        """LISTEN on the lease channel, best effort: without it a standby still wakes every retryPeriod."""
        try:
            conn = self.db.connect(monotonic() + min(self.s.network_timeout, self.s.retry_period), autocommit=True)
            Database.run(conn, sql.SQL("LISTEN {}").format(sql.Identifier(self.s.schema + ".leases")), None,
                         monotonic() + min(self.s.network_timeout, self.s.retry_period), fetch=False)
            self.listen_conn = conn
        except psycopg2.Error:
            self.listen_conn = None
            self.listen_retry_at = monotonic() + self.s.lease_duration

    def sleep_until(self, wake_at, listening):
        if listening and self.listen_conn is None and monotonic() >= self.listen_retry_at \
                and wake_at - monotonic() > min(self.s.network_timeout, self.s.retry_period):
            self.listen()
        fds = [self.stop.read_fd]
        if self.listen_conn is not None:
            fds.append(self.listen_conn.fileno())
        timeout = max(0.0, wake_at - monotonic())
        ready = select.select(fds, [], [], timeout)[0]
        if self.stop.read_fd in ready:
            self.stop.drain()
        if self.listen_conn is not None and (self.listen_conn.fileno() in ready or not listening):
            self.read_notifications(listening)

    def read_notifications(self, listening):
        try:
            self.listen_conn.poll()
        except psycopg2.Error:
            close(self.listen_conn)
            self.listen_conn = None
            self.listen_retry_at = monotonic() + self.s.retry_period
            return
        freed = False
        while self.listen_conn.notifies:
            notice = self.listen_conn.notifies.pop(0)
            try:
                payload = json.loads(notice.payload)
            except ValueError:
                continue
            if payload.get("name") == self.s.lease and payload.get("kind") not in ("acquired", "taken_over"):
                freed = True
        if freed and listening and not self.leading:
            # a wake-up, not a fact: the next acquire asks the database
            self.next_attempt = monotonic() + random.uniform(0, min(MAX_EXPIRY_JITTER, self.s.retry_period / 10))


class DeadlinePassed(Exception):
    """The local deadline passed inside a fenced transaction: it is rolled back, never committed."""


def main(argv=None):
    settings = parse_settings(sys.argv[1:] if argv is None else argv)
    return Campaigner(settings).run()


if __name__ == "__main__":
    sys.exit(main())
