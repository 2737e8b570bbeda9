package dev.pglease.fault;

import java.sql.Timestamp;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;

/** Database-clock instants as epoch microseconds. */
final class DbTime {
    private static final DateTimeFormatter FORMAT =
            DateTimeFormatter.ofPattern("HH:mm:ss.SSSSSS").withZone(ZoneOffset.UTC);

    private DbTime() {}

    static long micros(Timestamp ts) {
        return ts == null ? Long.MIN_VALUE : ts.getTime() / 1000 * 1_000_000 + ts.getNanos() / 1000;
    }

    static String format(long micros) {
        return FORMAT.format(Instant.ofEpochSecond(
                        Math.floorDiv(micros, 1_000_000), Math.floorMod(micros, 1_000_000) * 1000L))
                + "(db)";
    }
}
