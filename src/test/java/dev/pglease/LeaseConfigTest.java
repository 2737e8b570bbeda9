package dev.pglease;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Every invalid configuration is refused at construction with a message naming the value and the rule. */
@Tag("core")
class LeaseConfigTest {

    @Test
    void defaultsFollowClientGo() {
        LeaseConfig c = LeaseConfig.defaults();
        assertThat(c.schema()).isEqualTo("pglease");
        assertThat(c.leaseDuration()).isEqualTo(Duration.ofSeconds(10));
        assertThat(c.renewDeadline()).isEqualTo(Duration.ofSeconds(6));
        assertThat(c.retryPeriod()).isEqualTo(Duration.ofSeconds(2));
        assertThat(c.holderLabel()).isNotBlank();
        assertThat(c.allowUnsafeDurability()).isFalse();
    }

    @Test
    void subSecondTimingsAreAllowed() {
        LeaseConfig c = LeaseConfig.builder()
                .leaseDuration(Duration.ofMillis(500))
                .renewDeadline(Duration.ofMillis(300))
                .retryPeriod(Duration.ofMillis(100))
                .build();
        assertThat(c.renewDeadline()).isEqualTo(Duration.ofMillis(300));
    }

    @Test
    void renewDeadlineLeavesAtLeastATenthOfTheLeaseAsMarginForClockDrift() {
        assertThatThrownBy(() -> LeaseConfig.builder()
                        .leaseDuration(Duration.ofSeconds(5))
                        .build())
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("renewDeadline must be at most 90% of leaseDuration (the rest is the margin that absorbs "
                        + "a difference of up to 10% between this process's and the database's clock rates), got "
                        + "leaseDuration=PT5S and renewDeadline=PT6S (at most PT4.5S)");
        assertThatThrownBy(() -> LeaseConfig.builder()
                        .leaseDuration(Duration.ofSeconds(10))
                        .renewDeadline(Duration.ofMillis(9500))
                        .build())
                .hasMessageContaining("got leaseDuration=PT10S and renewDeadline=PT9.5S (at most PT9S)");
        assertThat(LeaseConfig.builder()
                        .leaseDuration(Duration.ofSeconds(10))
                        .renewDeadline(Duration.ofSeconds(9))
                        .build()
                        .renewDeadline())
                .isEqualTo(Duration.ofSeconds(9));
    }

    @Test
    void renewDeadlineMustExceedOnePointTwoRetryPeriods() {
        assertThatThrownBy(() ->
                        LeaseConfig.builder().retryPeriod(Duration.ofSeconds(5)).build())
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("renewDeadline must be greater than 1.2 x retryPeriod, got renewDeadline=PT6S and "
                        + "retryPeriod=PT5S (1.2 x retryPeriod = PT6S)");
        assertThat(LeaseConfig.builder()
                        .retryPeriod(Duration.ofMillis(4999))
                        .build()
                        .retryPeriod())
                .isEqualTo(Duration.ofMillis(4999));
    }

    @Test
    void durationsMustBePositiveAndBounded() {
        assertThatThrownBy(
                        () -> LeaseConfig.builder().retryPeriod(Duration.ZERO).build())
                .hasMessage("retryPeriod must be between PT0.001S and PT24H, got PT0S");
        assertThatThrownBy(() -> LeaseConfig.builder()
                        .renewDeadline(Duration.ofSeconds(-1))
                        .build())
                .hasMessageContaining("renewDeadline must be between")
                .hasMessageContaining("PT-1S");
        assertThatThrownBy(() ->
                        LeaseConfig.builder().leaseDuration(Duration.ofDays(2)).build())
                .hasMessageContaining("leaseDuration must be between")
                .hasMessageContaining("PT48H");
        assertThatThrownBy(() -> LeaseConfig.builder().leaseDuration(null).build())
                .hasMessage("leaseDuration must not be null");
    }

    @ParameterizedTest
    @ValueSource(
            strings = {
                "",
                "Pglease",
                "1abc",
                "pg_catalog",
                "with space",
                "a;drop",
                "x\"y",
                "sch-ema",
                "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvw"
            })
    void schemaNamesMustBeSimpleLowerCaseIdentifiers(String schema) {
        assertThatThrownBy(() -> LeaseConfig.builder().schema(schema).build())
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("schema \"" + schema + "\" is not allowed")
                .hasMessageContaining("a-z, 0-9 and _");
    }

    @Test
    void nullSchemaIsRefused() {
        assertThatThrownBy(() -> LeaseConfig.builder().schema(null).build()).hasMessage("schema must not be null");
    }

    @Test
    void holderLabelsAreValidated() {
        assertThatThrownBy(() -> LeaseConfig.builder().holderLabel(" ").build())
                .hasMessageContaining("holder label must not be empty or blank");
        assertThatThrownBy(() -> LeaseConfig.builder().holderLabel("a\u0000b").build())
                .hasMessageContaining("holder label \"a\\u0000b\" contains the control character U+0000 at index 1");
        assertThatThrownBy(
                        () -> LeaseConfig.builder().holderLabel("x".repeat(201)).build())
                .hasMessageContaining("holder label is 201 characters long, the maximum is 200");
        assertThat(LeaseConfig.builder()
                        .holderLabel("zahlungs-dienst 💳 'a';")
                        .build()
                        .holderLabel())
                .isEqualTo("zahlungs-dienst 💳 'a';");
    }

    @Test
    void toBuilderKeepsEveryValue() {
        LeaseConfig c = LeaseConfig.builder()
                .schema("billing_leases")
                .holderLabel("w1")
                .leaseDuration(Duration.ofSeconds(3))
                .renewDeadline(Duration.ofSeconds(2))
                .retryPeriod(Duration.ofMillis(500))
                .build();
        assertThat(c.toBuilder().build().toString()).isEqualTo(c.toString());
    }
}
