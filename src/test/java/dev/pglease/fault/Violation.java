package dev.pglease.fault;

import java.util.List;

/**
 * A broken invariant.
 *
 * @param invariant number of the invariant: 1-7 as listed in docs/protocol.md, 8-11 those of lease groups
 *                  (docs/faults.md)
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
        "5 no write started after the local deadline, or after the writer reported its grant ended",
        "6 grant intervals on the DB clock do not overlap",
        "7 liveness: another holder granted within leaseDuration + retryPeriod + 250 ms + measured lag",
        "8 a shard is owned by one member at a time, by the members' own reports against their deadlines",
        "9 group liveness: a lost member's shards owned again within leaseDuration + retryPeriod + 500 ms, a join"
                + " balanced within 3 s (+ measured lag)",
        "10 a settled group: every shard owned by a live member, shard counts within one",
        "11 sticky moves: a join moves at most ceil(N/(M+1)) shards, all to the newcomer; a leave only the leaver's;"
                + " no change of members moves nothing",
    };

    public String name() {
        return NAMES[invariant];
    }
}
