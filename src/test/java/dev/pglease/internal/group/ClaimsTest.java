package dev.pglease.internal.group;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Instant;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/** A member that does not take the free shards it is given within the bound loses its claim, until it holds one. */
@Tag("core")
class ClaimsTest {

    private static final Instant T0 = Instant.parse("2026-01-01T00:00:00Z");
    private static final long BOUND = 2_000_000_000L;

    private final Assignment.Member me = new Assignment.Member("me", 1, 0, T0);
    private final Assignment.Member idle = new Assignment.Member("idle", 1000, 0, T0.plusSeconds(1));
    private final List<Assignment.Member> live = List.of(me, idle);

    @Test
    void aMemberThatDoesNotTakeAFreeShardItIsGivenLosesItsClaimAfterTheBoundAndUntilItHoldsOne() {
        Claims claims = new Claims("me", BOUND);
        Map<Integer, Assignment.Holding> none = Map.of();
        Assignment full = Assignment.compute(4, live, none, List.of());
        assertThat(claims.keep(live, full, none, List.of(), 0)).containsExactly(me, idle);
        assertThat(claims.nextDecision(Long.MAX_VALUE)).isEqualTo(BOUND);
        assertThat(claims.keep(live, full, none, List.of(), BOUND - 1)).containsExactly(me, idle);
        assertThat(claims.keep(live, full, none, List.of(), BOUND)).containsExactly(me);

        Map<Integer, Assignment.Holding> mine = Map.of(
                0,
                new Assignment.Holding("me", 1),
                1,
                new Assignment.Holding("me", 1),
                2,
                new Assignment.Holding("me", 1),
                3,
                new Assignment.Holding("me", 1));
        Assignment stillFull = Assignment.compute(4, live, mine, List.of());
        assertThat(claims.keep(live, stillFull, mine, List.of(), 10 * BOUND))
                .as("nothing free is given to it any more, but the claim stays lost")
                .containsExactly(me);

        Map<Integer, Assignment.Holding> itTookOne = Map.of(0, new Assignment.Holding("idle", 2));
        assertThat(claims.keep(
                        live, Assignment.compute(4, live, itTookOne, List.of()), itTookOne, List.of(), 11 * BOUND))
                .as("it holds a shard now")
                .containsExactly(me, idle);
    }

    @Test
    void theMemberItselfAndMembersGivenNoFreeShardKeepTheirClaim() {
        Claims claims = new Claims("idle", BOUND);
        Map<Integer, Assignment.Holding> none = Map.of();
        Assignment full = Assignment.compute(4, live, none, List.of());
        claims.keep(live, full, none, List.of(), 0);
        assertThat(claims.keep(live, full, none, List.of(), 5 * BOUND)).containsExactly(me, idle);

        Claims other = new Claims("me", BOUND);
        Map<Integer, Assignment.Holding> heldByMe =
                Map.of(0, new Assignment.Holding("me", 1), 1, new Assignment.Holding("me", 1));
        Assignment one = Assignment.compute(
                2, List.of(me, new Assignment.Member("standby", 1, 0, T0.plusSeconds(9))), heldByMe, List.of());
        assertThat(other.keep(one.members(), one, heldByMe, List.of(), 0)).hasSize(2);
        assertThat(other.keep(one.members(), one, heldByMe, List.of(), 5 * BOUND))
                .as("a member whose shards are still held by others (a hand-over in progress) waits on nothing free")
                .hasSize(2);
    }
}
