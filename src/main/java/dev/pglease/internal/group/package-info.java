/**
 * Lease groups (not API): the assignment rule ({@link dev.pglease.internal.group.Assignment}), one member's engine
 * ({@link dev.pglease.internal.group.MemberEngine}: its thread, with its parts for the member row, following the
 * assignment and handing over, fast failover and unowned time), what a process's memberships add to the lease
 * connection and the notifications ({@link dev.pglease.internal.group.Memberships}), and the port to the election
 * engine through which shards are campaigned for and handed over ({@link dev.pglease.internal.group.ShardCampaigns}).
 */
package dev.pglease.internal.group;
