package dev.pglease.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.pglease.Ticker;
import dev.pglease.internal.tool.JsonLines;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import org.junit.jupiter.api.Test;

/** The trace's interval [sent, t] holds the statement whatever happened between its answer and the report. */
class TraceObserverTest {

    private final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    private final JsonLines out = new JsonLines(new PrintStream(bytes, true, StandardCharsets.UTF_8), 5_000);
    private final Deadlines deadlines = new Deadlines(Ticker.SYSTEM, Duration.ofMillis(700), 1.0);
    private final TraceObserver trace =
            new TraceObserver(out, new String[] {"n1"}, Duration.ofMillis(700), true, deadlines);

    @Test
    void aRenewalReportedTwoSecondsAfterItsAnswerIsSentWhenTheLoopSentItNotAtItsReportMinusItsLatency()
            throws IOException {
        Instant sentAt = Instant.now().minusSeconds(2); // the process stopped between the answer and this call
        trace.renewed("payments", 7, Duration.ofMillis(4), sentAt);
        JsonNode e = new ObjectMapper().readTree(bytes.toString(StandardCharsets.UTF_8));
        assertThat(e.get("sent").asLong()).as("sent, with the clock skew").isEqualTo(sentAt.toEpochMilli() + 5_000);
        assertThat(e.get("deadline").asLong()).isEqualTo(e.get("sent").asLong() + 700);
        assertThat(e.get("t").asLong()).isGreaterThanOrEqualTo(e.get("sent").asLong() + 2_000);
    }

    @Test
    void aDeniedAcquireReportedAfterAStopIsSentWhenTheLoopSentIt() throws IOException {
        Instant sentAt = Instant.now().minusSeconds(2);
        trace.acquireAttempted("payments", false, 8, Duration.ofMillis(4), sentAt);
        JsonNode e = new ObjectMapper().readTree(bytes.toString(StandardCharsets.UTF_8));
        assertThat(e.get("sent").asLong()).isEqualTo(sentAt.toEpochMilli() + 5_000);
    }

    @Test
    void theWriteDeadlineOfARenewalReportedAfterAStopIsNeverLaterThanItsSendPlusTheRenewDeadline() {
        Instant sentAt = Instant.now().minusSeconds(2);
        trace.renewed("payments", 9, Duration.ofMillis(4), sentAt);
        assertThat(deadlines.wallDeadline("payments", 9, out.wallMillis(), deadlines.tick()))
                .as("the deadline the node's writes report")
                .isLessThanOrEqualTo(out.wallMillis(sentAt) + 700);
    }
}
