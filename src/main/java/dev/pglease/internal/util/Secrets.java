package dev.pglease.internal.util;

import java.util.regex.Pattern;

/**
 * Removes passwords from text before it reaches a log, an exception message or a screen. Everything else (host,
 * database, user, {@code sslmode}, {@code sslrootcert} and the other TLS options) is kept, so a redacted URL still
 * says where and how the connection was made.
 */
public final class Secrets {

    /** {@code postgresql://user:secret@host}: the password runs to the last {@code @} before the host part. */
    private static final Pattern URL_USERINFO = Pattern.compile("(?i)(postgres(?:ql)?://[^:/@\\s]*:)[^\\s/?#]*@");
    /** {@code password=secret}, {@code sslpassword='it''s'}, {@code PGPASSWORD="x"}, {@code pwd=x;}. */
    private static final Pattern PARAMETER = Pattern.compile(
            "(?i)((?:password|passwd|pass|pwd)\\s*=\\s*)('(?:[^'\\\\]|''|\\\\.)*'|\"(?:[^\"\\\\]|\\\\.)*\"|[^&;\\s,)]*)");
    /** {@code "password": "secret"} in JSON. */
    private static final Pattern JSON =
            Pattern.compile("(?i)(\"[^\"\\s]*(?:password|passwd|pwd)\"\\s*:\\s*)\"(?:[^\"\\\\]|\\\\.)*\"");

    private Secrets() {}

    /**
     * The text with every password in a JDBC or libpq URL, a key=value list or a JSON object replaced by
     * {@code ***}. {@code null} stays {@code null}.
     */
    public static String redact(String text) {
        if (text == null) {
            return null;
        }
        String out = URL_USERINFO.matcher(text).replaceAll("$1***@");
        out = JSON.matcher(out).replaceAll("$1\"***\"");
        return PARAMETER.matcher(out).replaceAll("$1***");
    }
}
