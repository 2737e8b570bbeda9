package dev.pglease.security;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * Identity is the login: a lease that passes to another login is taken over, whatever holder id the new login
 * chooses. A candidate that takes an expired lease under the previous holder's id must not be recorded as that
 * holder acquiring it again.
 */
@Tag("security")
class HistoryLoginChangeTest {

    @Test
    void aLeaseTakenByAnotherLoginUnderTheSameHolderIdIsRecordedAsTakenOver() throws Exception {
        HostileSchema h = HostileSchema.create();
        String s = h.schema;
        HostileSchema.run(h.candA, "SELECT token FROM " + s + ".acquire('audited', 'node-1', 200)");
        Thread.sleep(400);
        HostileSchema.run(h.candB, "SELECT token FROM " + s + ".acquire('audited', 'node-1', 60000)");

        assertThat(h.events("audited"))
                .as("history of a lease that login %s took from login %s under the same holder id", h.candB, h.candA)
                .last()
                .asString()
                .startsWith("taken_over ");
    }
}
