package dev.pglease;

import java.util.regex.Pattern;

/** Removes passwords from text before it reaches a log, an exception message or a screen. */
public final class Secrets {

    private static final Pattern URL_USERINFO = Pattern.compile("(?i)(postgres(?:ql)?://[^:/@\\s]*:)[^@\\s]*@");
    private static final Pattern PARAMETER = Pattern.compile(
            "(?i)((?:password|sslpassword|pass|pwd|sslkey_password)\\s*=\\s*)('[^']*'|\"[^\"]*\"|[^&;\\s,)]*)");

    private Secrets() {
    }

    /** The text with every password in a JDBC or libpq URL or a key=value list replaced by {@code ***}. */
    public static String redact(String text) {
        if (text == null) {
            return null;
        }
        String out = URL_USERINFO.matcher(text).replaceAll("$1***@");
        return PARAMETER.matcher(out).replaceAll("$1***");
    }
}
