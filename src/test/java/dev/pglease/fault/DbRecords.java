package dev.pglease.fault;

/** Rows read back from the database at the end of a run: the lease history and the resource's accept log. */
public final class DbRecords {
  private DbRecords() {
  }

  /**
   * A row of {@code <schema>.lease_events}. A grant when {@code holder} is non-null (acquired, taken over, handed
   * off); a release otherwise.
   */
  public record LeaseEvent(long id, String lease, long token, String holder, String previousHolder, String kind,
                           long atMicros) {
    public boolean isGrant() {
      return holder != null;
    }

    public String render() {
      return String.format("event#%d %s %s token=%d holder=%s prev=%s at=%s", id, lease, kind, token, holder,
          previousHolder, DbTime.format(atMicros));
    }
  }

  /** A row of {@code <schema>.fenced_counter_log}: one write the resource accepted. */
  public record Accept(long id, String name, long token, String holder, long value, long atMicros) {
    public String render() {
      return String.format("accept#%d %s token=%d holder=%s value=%d at=%s", id, name, token, holder, value,
          DbTime.format(atMicros));
    }
  }
}
