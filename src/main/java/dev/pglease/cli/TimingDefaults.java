package dev.pglease.cli;

import dev.pglease.LeaseConfig;
import dev.pglease.internal.tool.DurationConverter;
import java.time.Duration;
import picocli.CommandLine;

/** The defaults of the node command's timing options: {@link LeaseConfig}'s, where they are defined once. */
final class TimingDefaults implements CommandLine.IDefaultValueProvider {
    @Override
    public String defaultValue(CommandLine.Model.ArgSpec argument) {
        if (!(argument instanceof CommandLine.Model.OptionSpec option)) {
            return null;
        }
        Duration value = switch (option.longestName()) {
            case "--lease-duration" -> LeaseConfig.DEFAULT_LEASE_DURATION;
            case "--renew-deadline" -> LeaseConfig.DEFAULT_RENEW_DEADLINE;
            case "--retry-period" -> LeaseConfig.DEFAULT_RETRY_PERIOD;
            default -> null;
        };
        return value == null ? null : DurationConverter.format(value);
    }
}
