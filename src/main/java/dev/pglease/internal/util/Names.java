package dev.pglease.internal.util;

import java.util.regex.Pattern;

/** Validation of every name pglease accepts: lease names, holder ids, schema and table identifiers. */
public final class Names {

    public static final int MAX_LEASE_NAME = 200;
    public static final int MAX_HOLDER = 255;
    public static final int MAX_HOLDER_LABEL = 200;
    public static final int MAX_SCHEMA = 48;

    private static final Pattern IDENTIFIER = Pattern.compile("[a-z_][a-z0-9_]*");
    private static final java.util.Set<String> RESERVED_ROLES =
            java.util.Set.of("public", "none", "current_user", "session_user", "current_role", "user", "postgres");

    private Names() {}

    public static String leaseName(String name) {
        return text("lease name", name, MAX_LEASE_NAME);
    }

    public static String holder(String holder) {
        return text("holder", holder, MAX_HOLDER);
    }

    public static String holderLabel(String label) {
        return text("holder label", label, MAX_HOLDER_LABEL);
    }

    public static String resource(String resource) {
        return text("fence resource", resource, MAX_LEASE_NAME);
    }

    /**
     * A schema name: a lower-case SQL identifier, because it is spliced into SQL text (it can not be a bind
     * parameter) and into a NOTIFY channel name.
     */
    public static String schema(String schema) {
        if (schema == null) {
            throw new IllegalArgumentException("schema must not be null");
        }
        if (schema.length() > MAX_SCHEMA || !IDENTIFIER.matcher(schema).matches() || schema.startsWith("pg_")) {
            throw new IllegalArgumentException("schema " + quote(schema) + " is not allowed: use 1 to " + MAX_SCHEMA
                    + " characters a-z, 0-9 and _, starting with a letter or _, and not starting with pg_");
        }
        return schema;
    }

    /**
     * A role name for the schema migration: a lower-case SQL identifier of at most 63 characters (it is spliced into
     * GRANT statements), not a reserved role name and not one of PostgreSQL's own pg_ roles.
     */
    public static String role(String what, String role) {
        if (role == null) {
            throw new IllegalArgumentException(what + " must not be null");
        }
        if (role.length() > 63
                || !IDENTIFIER.matcher(role).matches()
                || role.startsWith("pg_")
                || RESERVED_ROLES.contains(role)) {
            throw new IllegalArgumentException(what + " " + quote(role) + " is not allowed: use 1 to 63 characters"
                    + " a-z, 0-9 and _, starting with a letter or _, not starting with pg_, and not one of "
                    + RESERVED_ROLES);
        }
        return role;
    }

    /** A table name, optionally schema-qualified: {@code fences} or {@code billing.fences}. */
    public static String qualifiedTable(String table) {
        if (table == null) {
            throw new IllegalArgumentException("table must not be null");
        }
        String[] parts = table.split("\\.", -1);
        if (parts.length > 2) {
            throw new IllegalArgumentException("table " + quote(table) + " is not allowed: use table or schema.table");
        }
        for (String part : parts) {
            if (part.isEmpty()
                    || part.length() > 63
                    || !IDENTIFIER.matcher(part).matches()) {
                throw new IllegalArgumentException(
                        "table " + quote(table) + " is not allowed: each part must be 1 to 63"
                                + " characters a-z, 0-9 and _, starting with a letter or _");
            }
        }
        return table;
    }

    private static String text(String what, String value, int max) {
        if (value == null) {
            throw new IllegalArgumentException(what + " must not be null");
        }
        int length = value.codePointCount(0, value.length());
        if (length == 0 || value.isBlank()) {
            throw new IllegalArgumentException(what + " must not be empty or blank, got " + quote(value));
        }
        if (length > max) {
            throw new IllegalArgumentException(what + " is " + length + " characters long, the maximum is " + max + ": "
                    + quote(value.substring(0, Math.min(value.length(), 40))) + "...");
        }
        for (int i = 0; i < value.length(); i++) {
            char c = value.charAt(i);
            if (Character.isISOControl(c)) {
                throw new IllegalArgumentException(
                        what + " " + quote(value) + " contains the control character U+"
                                + String.format("%04X", (int) c) + " at index " + i
                                + ": names may hold any printable unicode text but no control characters (NUL, tab, newline...)");
            }
            if (isInvisible(c)) {
                throw new IllegalArgumentException(what + " " + quote(value) + " contains the invisible or"
                        + " direction-changing character U+" + String.format("%04X", (int) c) + " at index " + i
                        + ": it can make a name display as a different one, so " + INVISIBLE_RULE
                        + " are not allowed; right-to-left text itself is fine");
            }
            if (Character.isSurrogate(c)
                    && (Character.isHighSurrogate(c)
                            ? i + 1 >= value.length() || !Character.isLowSurrogate(value.charAt(i + 1))
                            : i == 0 || !Character.isHighSurrogate(value.charAt(i - 1)))) {
                throw new IllegalArgumentException(
                        what + " contains an unpaired surrogate at index " + i + ": it is not valid unicode text");
            }
        }
        return value;
    }

    /**
     * The characters names and holders may not hold besides control characters, the same set as the schema's
     * {@code leases_name_valid} / {@code leases_holder_valid} checks and {@code check_name()}: soft hyphen U+00AD,
     * Arabic letter mark U+061C, Hangul fillers U+115F, U+1160, U+3164, U+FFA0, Mongolian vowel separator U+180E,
     * blank Braille pattern U+2800, zero-width and direction marks U+200B..U+200F,
     * embeddings and overrides U+202A..U+202E, invisible operators U+2060..U+2064, isolates and deprecated format
     * characters U+2066..U+206F, and the byte-order mark U+FEFF.
     */
    static final String INVISIBLE_RULE = "the soft hyphen (U+00AD), U+061C, the Hangul fillers (U+115F, U+1160,"
            + " U+3164, U+FFA0), U+180E, zero-width and direction marks (U+200B..U+200F), embeddings and overrides"
            + " (U+202A..U+202E), invisible operators (U+2060..U+2064), isolates (U+2066..U+206F), the blank Braille"
            + " pattern (U+2800) and the byte-order mark (U+FEFF)";

    /** Whether {@code c} is one of {@link #INVISIBLE_RULE}. */
    public static boolean isInvisible(char c) {
        return c == '\u00AD'
                || c == '\u061C'
                || c == '\u115F'
                || c == '\u1160'
                || c == '\u180E'
                || c == '\u2800'
                || c == '\u3164'
                || c == '\uFFA0'
                || (c >= '\u200B' && c <= '\u200F')
                || (c >= '\u202A' && c <= '\u202E')
                || (c >= '\u2060' && c <= '\u2064')
                || (c >= '\u2066' && c <= '\u206F')
                || c == '\uFEFF';
    }

    /** Quotes a value for an error message, showing control and bidirectional control characters escaped. */
    public static String quote(String value) {
        if (value == null) {
            return "null";
        }
        StringBuilder out = new StringBuilder("\"");
        for (int i = 0; i < value.length() && i < 80; i++) {
            char c = value.charAt(i);
            if (Character.isISOControl(c) || isInvisible(c)) {
                out.append(String.format("\\u%04x", (int) c));
            } else {
                out.append(c);
            }
        }
        if (value.length() > 80) {
            out.append("...");
        }
        return out.append('"').toString();
    }
}
