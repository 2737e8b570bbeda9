package dev.pglease;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.pglease.internal.election.Grant;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/** The grant the current code runs under: innermost binding wins, bindings belong to their thread. */
@Tag("core")
class FencingContextTest {

    private static Grant grant(String lease, long token) {
        return new Grant(lease, "me", token, Ticker.SYSTEM, System.nanoTime() + 60_000_000_000L);
    }

    @Test
    void theInnermostBindingIsCurrentAndClosingRestoresTheOuterOne() {
        Grant outer = grant("payments", 7);
        Grant inner = grant("reports", 9);
        assertThat(FencingContext.current()).isEmpty();
        try (FencingContext.Scope a = FencingContext.enter(outer)) {
            assertThat(FencingContext.current()).containsSame(outer);
            assertThat(FencingContext.currentToken()).isEqualTo(7);
            try (FencingContext.Scope b = FencingContext.enter(inner)) {
                assertThat(FencingContext.current()).containsSame(inner);
                assertThat(b.grant()).isSameAs(inner);
            }
            assertThat(FencingContext.current()).containsSame(outer);
        }
        assertThat(FencingContext.current()).isEmpty();
    }

    @Test
    void scopesMayBeClosedOutOfOrderAndTwice() {
        Grant first = grant("a", 1);
        Grant second = grant("b", 2);
        FencingContext.Scope a = FencingContext.enter(first);
        FencingContext.Scope b = FencingContext.enter(second);
        a.close();
        assertThat(FencingContext.current()).containsSame(second);
        a.close();
        assertThat(FencingContext.current()).containsSame(second);
        b.close();
        assertThat(FencingContext.current()).isEmpty();
    }

    @Test
    void theInnermostGrantOfAKindIsFoundUnderAnotherKind() {
        Grant lock = grant("nightly", 3);
        LeaseGrant other = new LeaseGrant() {
            @Override
            public String leaseName() {
                return "other";
            }

            @Override
            public String holder() {
                return "me";
            }

            @Override
            public long token() {
                return 4;
            }

            @Override
            public boolean isValid() {
                return true;
            }

            @Override
            public void checkValid() {}

            @Override
            public java.time.Duration remaining() {
                return java.time.Duration.ofSeconds(1);
            }
        };
        try (FencingContext.Scope a = FencingContext.enter(lock);
                FencingContext.Scope b = FencingContext.enter(other)) {
            assertThat(FencingContext.current()).containsSame(other);
            assertThat(FencingContext.current(Leadership.class)).containsSame(lock);
            assertThat(FencingContext.current(LeaseLock.class)).isEmpty();
        }
    }

    @Test
    void withoutABindingThereIsNoTokenToRead() {
        assertThat(FencingContext.current()).isEmpty();
        assertThatThrownBy(FencingContext::currentToken)
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("runs under no pglease grant");
    }

    @Test
    void anotherThreadDoesNotSeeTheBinding() throws Exception {
        try (FencingContext.Scope a = FencingContext.enter(grant("payments", 5))) {
            assertThat(CompletableFuture.supplyAsync(FencingContext::current).get())
                    .isEmpty();
        }
    }
}
