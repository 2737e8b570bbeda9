package dev.pglease.fault;

import java.util.List;

/**
 * A broken invariant.
 *
 * @param invariant number of the invariant as listed in docs/protocol.md (1..7)
 * @param message   what is wrong, naming the tokens and holders involved
 * @param atMs      when it happened on the kit's clock (database instants are converted, same machine)
 * @param ops       indices of the operations involved (shown in the report)
 * @param evidence  database rows or faults involved, already rendered
 */
public record Violation(int invariant, String message, long atMs, List<Long> ops, List<String> evidence) {
    public static final String[] NAMES = {
        "",
        "1 token granted to at most one holder",
        "2 tokens increase in real-time order",
        "3 resource accepts writes in token order",
        "4 acknowledged acquires and writes are durable",
        "5 no write started after the local deadline",
        "6 grant intervals on the DB clock do not overlap",
        "7 liveness: another holder granted within leaseDuration + retryPeriod + 250 ms + measured lag",
    };

    public String name() {
        return NAMES[invariant];
    }
}
