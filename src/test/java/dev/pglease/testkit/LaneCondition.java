package dev.pglease.testkit;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.extension.ConditionEvaluationResult;
import org.junit.jupiter.api.extension.ExecutionCondition;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.platform.commons.support.AnnotationSupport;

/** Disables a test in the lanes its {@link NotInLane} declarations name, with their reasons. */
final class LaneCondition implements ExecutionCondition {

    @Override
    public ConditionEvaluationResult evaluateExecutionCondition(ExtensionContext context) {
        if (context.getElement().isEmpty()) {
            return ConditionEvaluationResult.enabled("no element");
        }
        List<NotInLane> declarations =
                AnnotationSupport.findRepeatableAnnotations(context.getElement().get(), NotInLane.class);
        if (declarations.isEmpty()) {
            return ConditionEvaluationResult.enabled("no lane declared out");
        }
        Set<Lane> active = Lane.active();
        List<String> reasons = new ArrayList<>();
        for (NotInLane declaration : declarations) {
            if (declaration.because().isBlank()) {
                throw new IllegalStateException("@NotInLane on "
                        + context.getElement().get() + " gives no reason: say what the lane lacks that the test needs");
            }
            for (Lane lane : declaration.value()) {
                if (active.contains(lane)) {
                    reasons.add(lane + ": " + declaration.because());
                }
            }
        }
        if (reasons.isEmpty()) {
            return ConditionEvaluationResult.enabled(
                    "not in lanes " + lanes(declarations) + "; this run is in " + active);
        }
        return ConditionEvaluationResult.disabled("not in lane " + String.join("; ", reasons));
    }

    private static List<Lane> lanes(List<NotInLane> declarations) {
        return declarations.stream()
                .flatMap(d -> Arrays.stream(d.value()))
                .distinct()
                .toList();
    }
}
