package dev.pglease;

import java.util.Objects;

/**
 * The one exception pglease throws for lease and fencing outcomes. {@link #reason()} tells callers what
 * happened without parsing messages. Invalid configuration is reported with {@link IllegalArgumentException}
 * at construction instead.
 */
public final class LeaseException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    /** Why an operation was refused. */
    public enum Reason {
        /** This process no longer holds the lease: its local deadline passed, or the database said it lost it. */
        LEASE_LOST,
        /** A fenced write carried a token lower than one already accepted, or not the current holder's. */
        STALE_TOKEN,
        /** The database could not be reached or did not answer in time. */
        DATABASE_UNAVAILABLE,
        /**
         * The database is read-only: a standby in recovery (for example right after a failover, before the client
         * reaches the new primary) or a read-only transaction. Not a loss of the lease by itself.
         */
        DATABASE_READ_ONLY,
        /** The pglease schema or one of its objects is missing: migrate first. */
        SCHEMA_MISSING,
        /** The database role lacks a privilege pglease needs; the message names it. */
        INSUFFICIENT_PRIVILEGE,
        /** The server settings would let an acknowledged grant be lost (for example {@code fsync=off}). */
        UNSAFE_DURABILITY,
        /** The {@link PgLease} or {@link Elector} was closed. */
        CLOSED,
        /**
         * The data source goes through a connection pooler in a mode pglease can not work with as configured (for
         * example transaction pooling with server-side prepared statements, or a "direct" data source that is
         * transaction-pooled too); the message says what to change.
         */
        UNSUPPORTED_POOLING
    }

    private final Reason reason;

    public LeaseException(Reason reason, String message) {
        this(reason, message, null);
    }

    public LeaseException(Reason reason, String message, Throwable cause) {
        super(message, cause);
        this.reason = Objects.requireNonNull(reason, "reason");
    }

    /** Why the operation was refused. */
    public Reason reason() {
        return reason;
    }
}
