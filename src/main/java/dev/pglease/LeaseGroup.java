package dev.pglease;

import dev.pglease.internal.group.MemberEngine;
import dev.pglease.internal.sql.GroupStatements;
import java.util.Optional;
import java.util.SortedSet;

/**
 * This process's membership of a lease group, created by {@link PgLease#group}: the group's shards {@code 0..N-1}
 * are spread over its live members in proportion to their weight, each member computing the same assignment, and
 * each shard is an ordinary lease of its own (named {@link #leaseName(int) group/shard}) with its own fencing
 * token. The member owns a shard from {@link GroupListener#onAssigned} to {@link GroupListener#onRevoked}; a move
 * to another member is cooperative (this member's {@code onRevoked} returns, then the shard is released and the
 * other member takes it at once).
 *
 * <p>{@link #close()} leaves the group and hands every shard over the same way. Thread-safe.
 */
public final class LeaseGroup implements AutoCloseable {

    private final MemberEngine member;

    LeaseGroup(MemberEngine member) {
        this.member = member;
    }

    /** The group's name. */
    public String name() {
        return member.group();
    }

    /** The group's number of shards. */
    public int shards() {
        return member.shards();
    }

    /** The lease name of {@code shard}: {@code <group>/<shard>}. */
    public String leaseName(int shard) {
        checkShard(shard);
        return GroupStatements.shardLease(member.group(), shard);
    }

    /**
     * The shards this member owns now, in ascending order: granted, valid by the local deadline, and not being
     * handed over (a shard leaves this set the moment its cooperative hand-over starts).
     */
    public SortedSet<Integer> ownedShards() {
        return member.ownedShards();
    }

    /** The grant of {@code shard} while this member owns it (see {@link #ownedShards()}): pass it to fence writes. */
    public Optional<Leadership> leadership(int shard) {
        checkShard(shard);
        return Optional.ofNullable(member.leadership(shard));
    }

    private void checkShard(int shard) {
        if (shard < 0 || shard >= member.shards()) {
            throw new IllegalArgumentException(
                    "group " + member.group() + " has shards 0 to " + (member.shards() - 1) + ", got " + shard);
        }
    }

    /**
     * Leaves the group and hands every owned shard over cooperatively (each {@code onRevoked} returns, then the shard
     * is released), waiting at most renewDeadline. Idempotent.
     */
    @Override
    public void close() {
        member.close();
    }

    @Override
    public String toString() {
        return "LeaseGroup{name=" + member.group() + ", shards=" + member.shards() + ", owned=" + ownedShards() + "}";
    }
}
