package dev.pglease.cli;

/** Exit codes of the operator commands, documented in {@code --help} and in the README. */
public final class ExitCodes {

    /** The command did what was asked. */
    public static final int OK = 0;
    /** The command ran but could not do what was asked (e.g. releasing a lease nobody holds). */
    public static final int FAILED = 1;
    /** Bad usage: unknown option, missing argument, malformed value. */
    public static final int USAGE = 2;
    /** The database could not be reached (or refused the login). */
    public static final int DATABASE_UNREACHABLE = 3;
    /** The database has no pglease schema: run {@code pglease migrate}. */
    public static final int SCHEMA_MISSING = 4;

    /** Help footer lines shared by the operator commands. */
    static final String EXIT_CODES_1 = "Exit codes: 0 ok, 1 not done (e.g. the lease is not held), 2 bad usage,";

    static final String EXIT_CODES_2 = "3 database unreachable, 4 pglease schema missing (run `pglease migrate`).";

    private ExitCodes() {}
}
