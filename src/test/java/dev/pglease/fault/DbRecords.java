package dev.pglease.fault;

/** Rows read back from the database at the end of a run: the lease history and the resource's accept log. */
public final class DbRecords {
    private DbRecords() {}

    /**
     * A row of {@code <schema>.lease_events}. A grant when {@code holder} is non-null (acquired, taken over, handed
     * off); a release otherwise.
     */
    public record LeaseEvent(
            long id, String lease, long token, String holder, String previousHolder, String kind, long atMicros) {
        public boolean isGrant() {
            return holder != null;
        }

        public String render() {
            return String.format(
                    "event#%d %s %s token=%d holder=%s prev=%s at=%s",
                    id, lease, kind, token, holder, previousHolder, DbTime.format(atMicros));
        }
    }

    /**
     * A row of {@code <schema>.fenced_counter_log}: one write the resource accepted.
     *
     * @param atMicros     when the row was inserted (database clock)
     * @param commitMicros when its transaction committed ({@code pg_xact_commit_timestamp}), null when the server
     *                     does not track commit times
     */
    public record Accept(
            long id, String name, long token, String holder, long value, long atMicros, Long commitMicros) {
        public Accept(long id, String name, long token, String holder, long value, long atMicros) {
            this(id, name, token, holder, value, atMicros, null);
        }

        /** The commit time when known, else the insert time (a lower bound of the commit time). */
        public long committedMicros() {
            return commitMicros != null ? commitMicros : atMicros;
        }

        public String render() {
            return String.format(
                    "accept#%d %s token=%d holder=%s value=%d at=%s committed=%s",
                    id,
                    name,
                    token,
                    holder,
                    value,
                    DbTime.format(atMicros),
                    commitMicros == null ? "?" : DbTime.format(commitMicros));
        }
    }

    /**
     * A version of a lease row (the kit's audit trigger): the expiry the database gave {@code token}.
     *
     * @param name the lease (null in a run with one lease)
     */
    public record LeaseVersion(long id, long token, String holder, long expiresMicros, long atMicros, String name) {
        /** A version of the run's only lease. */
        public LeaseVersion(long id, long token, String holder, long expiresMicros, long atMicros) {
            this(id, token, holder, expiresMicros, atMicros, null);
        }

        public String render() {
            return String.format(
                    "version#%d %stoken=%d holder=%s expires=%s at=%s",
                    id,
                    name == null ? "" : name + " ",
                    token,
                    holder,
                    DbTime.format(expiresMicros),
                    DbTime.format(atMicros));
        }
    }
}
