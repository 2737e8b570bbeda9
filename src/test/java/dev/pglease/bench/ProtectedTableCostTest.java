package dev.pglease.bench;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The protected-table target alone, behind the {@code targets} profile ({@code ./mvnw -Ptargets
 * -Dtest=ProtectedTableCostTest test}, about a minute): a fenced transaction writing 100 rows into a protected table
 * costs at most 1.2 times the same transaction writing into an unprotected one (p50, timed interleaved in the same
 * rounds). The full benchmark run ({@code -Pbench}) reports the same section beside the others.
 */
@Tag("targets")
class ProtectedTableCostTest {

    private static final int ROUNDS = Integer.getInteger("pglease.targets.protectRounds", 1500);

    @Test
    void aProtectedTableCostsAFencedWriterOfAHundredRowsAtMostOnePointTwoTimesAnUnprotectedOne() throws Exception {
        Harness.Section s;
        try (BenchDatabase db = BenchDatabase.start()) {
            s = new Harness(db, Harness.Sizes.smoke()).protectedTables(ROUNDS);
        }
        System.out.println("### " + s.title() + " (load " + Harness.loadAverage() + ")\n\n" + s.markdown());
        double one = s.figures().get("protect.protected1.p50") / s.figures().get("protect.plain1.p50");
        double hundred =
                s.figures().get("protect.protected100.p50") / s.figures().get("protect.plain100.p50");
        assertThat(one)
                .as("1 row, protected ÷ unprotected, p50 (reported; the target is at 100 rows)")
                .isPositive();
        assertThat(hundred)
                .as("100 rows, protected ÷ unprotected, p50\n" + s.markdown())
                .isLessThanOrEqualTo(1.2);
    }
}
