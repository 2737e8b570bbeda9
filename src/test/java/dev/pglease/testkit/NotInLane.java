package dev.pglease.testkit;

import java.lang.annotation.Documented;
import java.lang.annotation.ElementType;
import java.lang.annotation.Repeatable;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Declares the lanes a test class or method can not run in, and why: in those lanes it is reported as skipped
 * with the reason (and the lanes runner lists it), in every other lane it runs. The reason says what the lane
 * lacks that the test needs, e.g. {@code "sets session settings with the startup parameter options, which
 * PgBouncer 1.18 refuses"}; a declaration is never a way to hide a defect of the library.
 */
@Documented
@Retention(RetentionPolicy.RUNTIME)
@Target({ElementType.TYPE, ElementType.METHOD})
@Repeatable(NotInLane.List.class)
@ExtendWith(LaneCondition.class)
public @interface NotInLane {

    /** The lanes the test can not run in. */
    Lane[] value();

    /** Why: what the lane lacks that the test needs. */
    String because();

    /** Several declarations on one element. */
    @Documented
    @Retention(RetentionPolicy.RUNTIME)
    @Target({ElementType.TYPE, ElementType.METHOD})
    @ExtendWith(LaneCondition.class)
    @interface List {
        NotInLane[] value();
    }
}
