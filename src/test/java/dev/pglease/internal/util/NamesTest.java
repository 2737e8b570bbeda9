package dev.pglease.internal.util;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/** Lease names, holders and table names: what is stored verbatim and what is refused, with the rule named. */
@Tag("core")
class NamesTest {

    @Test
    void anyPrintableUnicodeUpToTwoHundredCharactersIsALeaseName() {
        for (String ok : new String[] {
            "payments", "a", "shard/17", "O'Brien; DROP TABLE leases; --", "支付-租约", "🚀".repeat(200), "x".repeat(200)
        }) {
            assertThat(Names.leaseName(ok)).isEqualTo(ok);
        }
    }

    @Test
    void badLeaseNamesAreRefusedWithTheRule() {
        assertThatThrownBy(() -> Names.leaseName(null)).hasMessage("lease name must not be null");
        assertThatThrownBy(() -> Names.leaseName("")).hasMessage("lease name must not be empty or blank, got \"\"");
        assertThatThrownBy(() -> Names.leaseName("   ")).hasMessageContaining("must not be empty or blank");
        assertThatThrownBy(() -> Names.leaseName("x".repeat(201)))
                .hasMessageStartingWith("lease name is 201 characters long, the maximum is 200");
        assertThatThrownBy(() -> Names.leaseName("a\nb")).hasMessageContaining("U+000A at index 1");
        assertThatThrownBy(() -> Names.leaseName("nul\u0000")).hasMessageContaining("U+0000");
        assertThatThrownBy(() -> Names.leaseName("bad\uD800")).hasMessageContaining("unpaired surrogate");
    }

    @Test
    void tableNamesAreIdentifiersOptionallyQualified() {
        assertThat(Names.qualifiedTable("fences")).isEqualTo("fences");
        assertThat(Names.qualifiedTable("billing.fences")).isEqualTo("billing.fences");
        for (String bad : new String[] {"", "a.b.c", "Fences", "x;drop", "a.", ".b", "a b"}) {
            assertThatThrownBy(() -> Names.qualifiedTable(bad))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("table \"" + bad + "\" is not allowed");
        }
    }
}
