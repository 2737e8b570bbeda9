package dev.pglease.docker;

import java.io.IOException;
import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.extension.ConditionEvaluationResult;
import org.junit.jupiter.api.extension.ExecutionCondition;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * Tests that run containers: they need a Docker engine and the project's locally built images
 * ({@code docker/build-images.sh}). Where either is missing the test is skipped with a message that says how to
 * provide it, except under {@code CI=true}, where CI provides both and a missing one fails the test instead.
 */
public final class DockerEngine implements ExecutionCondition {

    /** Marks a test class that needs the engine and the local images. */
    @Target(ElementType.TYPE)
    @Retention(RetentionPolicy.RUNTIME)
    @ExtendWith(DockerEngine.class)
    public @interface Required {}

    static final String HOW_TO_ENABLE = "start a Docker engine (as root: dockerd &) and build the local images with "
            + "docker/build-images.sh (or run .ci/docker.sh start), then run the tests again";

    /** The local PostgreSQL image (same contract as the official postgres image). */
    public static String postgresImage() {
        return images().get(0);
    }

    /** The local Java runtime image for {@code pglease node} containers. */
    public static String jreImage() {
        return images().get(1);
    }

    private static List<String> images;

    private static synchronized List<String> images() {
        if (images == null) {
            Result r = run(List.of(Path.of("docker", "build-images.sh").toString(), "--list"), 10);
            List<String> names = r.ok() ? List.of(r.out().trim().split("\\s+")) : List.of();
            if (names.size() != 2) {
                throw new IllegalStateException("docker/build-images.sh --list did not name two images: " + r.out());
            }
            images = names;
        }
        return images;
    }

    @Override
    public ConditionEvaluationResult evaluateExecutionCondition(ExtensionContext context) {
        String missing = missing();
        if (missing == null) {
            return ConditionEvaluationResult.enabled("Docker engine and local images present");
        }
        if ("true".equals(System.getenv("CI"))) {
            throw new IllegalStateException("CI=true but " + missing + ": .ci/run must provide them (.ci/docker.sh)");
        }
        return ConditionEvaluationResult.disabled(missing + "; to run this test, " + HOW_TO_ENABLE);
    }

    /** What is missing to run container tests, or null when nothing is. */
    static String missing() {
        Result version = run(List.of("docker", "version", "--format", "{{.Server.APIVersion}}"), 15);
        if (!version.ok()) {
            return "no Docker engine answers (docker version: " + version.out().trim() + ")";
        }
        List<String> inspect = new ArrayList<>(List.of("docker", "image", "inspect", "--format", "{{.Id}}"));
        inspect.addAll(images());
        if (!run(inspect, 15).ok()) {
            return "the local images " + images() + " are not built";
        }
        return null;
    }

    /** Exit status and combined output of a command. */
    record Result(int status, String out) {
        boolean ok() {
            return status == 0;
        }
    }

    /** Runs a command (stdout and stderr merged) and waits at most {@code timeoutSeconds} for it. */
    static Result run(List<String> command, long timeoutSeconds) {
        return run(command, timeoutSeconds, java.util.Map.of());
    }

    /** Runs a command with extra environment variables (stdout and stderr merged). */
    static Result run(List<String> command, long timeoutSeconds, java.util.Map<String, String> env) {
        try {
            ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true);
            pb.environment().putAll(env);
            Process p = pb.start();
            p.getOutputStream().close();
            byte[][] out = new byte[1][];
            Thread reader = new Thread(() -> {
                try {
                    out[0] = p.getInputStream().readAllBytes();
                } catch (IOException e) {
                    out[0] = e.toString().getBytes(StandardCharsets.UTF_8);
                }
            });
            reader.start();
            if (!p.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                reader.join(1_000);
                return new Result(-1, String.join(" ", command) + " did not finish within " + timeoutSeconds + " s");
            }
            reader.join();
            return new Result(p.exitValue(), new String(out[0], StandardCharsets.UTF_8));
        } catch (IOException e) {
            return new Result(-1, e.getMessage());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return new Result(-1, "interrupted");
        }
    }
}
