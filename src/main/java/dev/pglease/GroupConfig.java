package dev.pglease;

/**
 * Immutable, validated settings of one member of a {@link LeaseGroup}: its weight (its share of the shards is
 * proportional to it) and its priority (members of higher priority get the shards left over when the shares do not
 * divide evenly; with one shard, the member of highest priority leads).
 */
public final class GroupConfig {

    /** The smallest and largest weight: 1 and 1000. */
    public static final int MIN_WEIGHT = 1, MAX_WEIGHT = 1000;
    /** The lowest and highest priority: -1000 and 1000. */
    public static final int MIN_PRIORITY = -1000, MAX_PRIORITY = 1000;

    private static final GroupConfig DEFAULTS = new GroupConfig(1, 0);

    private final int weight;
    private final int priority;

    private GroupConfig(int weight, int priority) {
        if (weight < MIN_WEIGHT || weight > MAX_WEIGHT) {
            throw new IllegalArgumentException(
                    "weight must be between " + MIN_WEIGHT + " and " + MAX_WEIGHT + ", got " + weight);
        }
        if (priority < MIN_PRIORITY || priority > MAX_PRIORITY) {
            throw new IllegalArgumentException(
                    "priority must be between " + MIN_PRIORITY + " and " + MAX_PRIORITY + ", got " + priority);
        }
        this.weight = weight;
        this.priority = priority;
    }

    /** Weight 1, priority 0. */
    public static GroupConfig defaults() {
        return DEFAULTS;
    }

    /** Weight {@code weight}, priority 0. @throws IllegalArgumentException outside 1..1000 */
    public static GroupConfig weight(int weight) {
        return new GroupConfig(weight, 0);
    }

    /** This configuration with priority {@code priority}. @throws IllegalArgumentException outside -1000..1000 */
    public GroupConfig withPriority(int priority) {
        return new GroupConfig(weight, priority);
    }

    /** This configuration with weight {@code weight}. @throws IllegalArgumentException outside 1..1000 */
    public GroupConfig withWeight(int weight) {
        return new GroupConfig(weight, priority);
    }

    public int weight() {
        return weight;
    }

    public int priority() {
        return priority;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof GroupConfig g && g.weight == weight && g.priority == priority;
    }

    @Override
    public int hashCode() {
        return weight * 31 + priority;
    }

    @Override
    public String toString() {
        return "GroupConfig{weight=" + weight + ", priority=" + priority + "}";
    }
}
