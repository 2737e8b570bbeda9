package dev.pglease;

import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Skips a test whose prerequisite this machine lacks, saying why; under {@code CI=true}, where {@code .ci/run}
 * installs every prerequisite, a missing one fails the test instead of skipping it.
 */
public final class Required {

    private Required() {}

    public static void assume(boolean available, String what) {
        if (available) {
            return;
        }
        if ("true".equalsIgnoreCase(System.getenv("CI"))) {
            fail(what + " is missing, but CI=true: .ci/run installs it, so this is a broken build machine");
        }
        assumeTrue(false, what + " is missing here; install it (see .ci/run) to run this test");
    }
}
