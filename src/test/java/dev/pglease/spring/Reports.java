package dev.pglease.spring;

import dev.pglease.FencingContext;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.springframework.scheduling.annotation.Scheduled;

/** The leader-only job of docs/integrations.md; run by {@link SpringSnippetTest}. */
public class Reports {

    private final List<Long> published = new CopyOnWriteArrayList<>();

    // tag::spring-leader-only[]
    @Scheduled(fixedDelayString = "${reports.interval:PT1H}")
    @LeaderOnly
    public void publishDailyReport() {
        // Runs on the leader only; elsewhere the call is skipped.
        long token = FencingContext.currentToken(); // the grant this run was admitted with
        publish(token);
    }
    // end::spring-leader-only[]

    void publish(long token) {
        published.add(token);
    }

    public List<Long> published() {
        return published;
    }
}
