package dev.pglease.docs;

// tag::spring-imports[]
import dev.pglease.FencingContext;
import dev.pglease.Leadership;
import dev.pglease.LeaseException;
import dev.pglease.LeaseGrant;
import dev.pglease.LeaseLock;
import dev.pglease.PgLease;
import dev.pglease.http.FencingClientHttpRequestInterceptor;
import dev.pglease.shedlock.PgLeaseLockProvider;
import dev.pglease.spring.Fenced;
import dev.pglease.spring.FencedTransactionTemplate;
import dev.pglease.spring.LeaderElection;
import dev.pglease.spring.LeaderOnly;
import dev.pglease.spring.LeaseGrantedEvent;
import dev.pglease.spring.LeaseRevokedEvent;
// end::spring-imports[]
import java.util.List;

/** The imports docs/integrations.md lists for its Spring snippets: all public API of the jar. */
final class DocumentedImports {

    static final List<Class<?>> TYPES = List.of(
            FencingContext.class,
            Leadership.class,
            LeaseException.class,
            LeaseGrant.class,
            LeaseLock.class,
            PgLease.class,
            FencingClientHttpRequestInterceptor.class,
            PgLeaseLockProvider.class,
            Fenced.class,
            FencedTransactionTemplate.class,
            LeaderElection.class,
            LeaderOnly.class,
            LeaseGrantedEvent.class,
            LeaseRevokedEvent.class);

    private DocumentedImports() {}
}
