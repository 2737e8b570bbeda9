package dev.pglease.fault;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.HashSet;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * What a promotion of an asynchronous standby may still cost with term tokens: the grants and writes the standby
 * never received (invariant 4: acknowledged, then lost), and reads that see the lease row as it was before such a
 * grant. Nothing else: no token acknowledged twice (not even to the same holder), no grant below an earlier one, no
 * stale write accepted by a forward fence. A slow failover (invariant 7) is not judged here.
 */
public final class LostGrants {
    private static final Pattern LOST_ACQUIRE = Pattern.compile("^acquire #\\d+ was acknowledged with token (\\d+) ");
    private static final Pattern LOST_WRITE = Pattern.compile("^write #\\d+ was acknowledged \\(token (\\d+),");
    private static final Pattern OVERLAP =
            Pattern.compile("grant of token (\\d+) .*overlaps the grant of token (\\d+)");
    private static final Pattern READ_BEFORE_LOST = Pattern.compile("^observation #\\d+ .* had seen token (\\d+): ");

    private LostGrants() {}

    /** The tokens of acknowledged grants that were lost (as the checker reports them). */
    public static Set<Long> lostTokens(CheckReport r) {
        Set<Long> lost = new HashSet<>();
        for (Violation v : r.violations()) {
            Matcher m = LOST_ACQUIRE.matcher(v.message());
            if (v.invariant() == 4 && m.find()) {
                lost.add(Long.parseLong(m.group(1)));
            }
        }
        return lost;
    }

    /** Asserts that every violation in the report is explained by a lost, unreplicated grant. */
    public static void assertOnlyUnreplicatedGrantsLost(CheckReport r) {
        Set<Long> lost = lostTokens(r);
        assertThat(r.violates(1)).as("a token granted twice\n" + r.render()).isFalse();
        assertThat(r.violates(3)).as("a stale write accepted\n" + r.render()).isFalse();
        for (Violation v : r.violations()) {
            String why = "violation of invariant " + v.invariant() + " not explained by a lost grant " + lost + ": "
                    + v.message() + "\n" + r.render();
            switch (v.invariant()) {
                case 4 -> {
                    Matcher acquire = LOST_ACQUIRE.matcher(v.message());
                    Matcher write = LOST_WRITE.matcher(v.message());
                    // a lost grant, or a write the standby never received (any token: asynchronous replication)
                    assertThat(acquire.find() || write.find()).as(why).isTrue();
                }
                case 2 -> {
                    Matcher read = READ_BEFORE_LOST.matcher(v.message());
                    assertThat(read.find() && lost.contains(Long.parseLong(read.group(1))))
                            .as(why)
                            .isTrue();
                }
                case 6 -> {
                    // the lost grant's interval ends at the last expiry the lost primary gave it: a grant on the
                    // promoted
                    // server may overlap it, which is the lost grant itself, not a second holder of one valid grant
                    Matcher overlap = OVERLAP.matcher(v.message());
                    assertThat(overlap.find()
                                    && (lost.contains(Long.parseLong(overlap.group(1)))
                                            || lost.contains(Long.parseLong(overlap.group(2)))))
                            .as(why)
                            .isTrue();
                }
                case 7 -> {
                    // liveness: how long the failover took on a loaded machine says nothing about what the promotion
                    // lost
                }
                default -> assertThat(false).as(why).isTrue();
            }
        }
        assertThat(lost.size()).as("lost grants named by the checker").isEqualTo(r.lostAckedAcquires());
        assertThat(tokensGrantedTwice(r))
                .as("tokens acknowledged to two acquires\n" + r.render())
                .isEmpty();
    }

    /** Tokens that two acknowledged acquires returned (to the same holder or not). */
    public static Set<Long> tokensGrantedTwice(CheckReport r) {
        Set<Long> seen = new HashSet<>();
        Set<Long> twice = new HashSet<>();
        for (Op op : r.history().ops()) {
            if (op.kind() == Op.Kind.ACQUIRE && op.ok() && op.token() != null && !seen.add(op.token())) {
                twice.add(op.token());
            }
        }
        return twice;
    }
}
