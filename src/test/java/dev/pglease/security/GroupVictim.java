package dev.pglease.security;

import dev.pglease.GroupConfig;
import dev.pglease.GroupListener;
import dev.pglease.Leadership;
import dev.pglease.LeaseConfig;
import dev.pglease.LeaseGroup;
import dev.pglease.PgLease;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import org.awaitility.Awaitility;

/**
 * Candidate A as the only member of a lease group of two shards, holding both and renewing them with its member row,
 * the target of an attack: the largest weight and priority, so that no member another login may join takes a shard
 * from it by the assignment. It records every revocation; {@link #broken} says what an attack changed.
 */
final class GroupVictim implements AutoCloseable {

    static final int SHARDS = 2;

    final HostileSchema h;
    final String group;
    final PgLease pglease;
    final LeaseGroup members;
    final String holder;
    final List<String> revocations = new CopyOnWriteArrayList<>();
    /** The member row as it joined: weight, priority, joined_at, member_role. */
    final String memberRow;
    /** The shard leases' rows (holder, token) as granted. */
    final List<HostileSchema.Row> shardRows = new ArrayList<>();

    private GroupVictim(HostileSchema h, String group) throws SQLException {
        this.h = h;
        this.group = group;
        this.pglease = PgLease.create(
                h.as(h.candA),
                LeaseConfig.builder()
                        .schema(h.schema)
                        .holderLabel("gvictim")
                        .leaseDuration(Duration.ofSeconds(30))
                        .renewDeadline(Duration.ofSeconds(20))
                        .retryPeriod(Duration.ofMillis(300))
                        .build());
        this.holder = pglease.holderId();
        this.members = pglease.group(
                group, SHARDS, GroupConfig.defaults().withWeight(1000).withPriority(1000), new GroupListener() {
                    @Override
                    public void onAssigned(int shard, Leadership leadership) {}

                    @Override
                    public void onRevoked(int shard, Leadership leadership) {
                        revocations.add("shard " + shard + " token " + leadership.token() + ": "
                                + leadership.revocationReason());
                    }
                });
        Awaitility.await("the group victim owns its " + SHARDS + " shards")
                .atMost(Duration.ofSeconds(15))
                .until(() -> members.ownedShards().size() == SHARDS);
        this.memberRow = memberRow();
        for (int k = 0; k < SHARDS; k++) {
            shardRows.add(h.row(shard(k)));
        }
    }

    static GroupVictim start(HostileSchema h, String group) throws SQLException {
        return new GroupVictim(h, group);
    }

    String shard(int k) {
        return group + "/" + k;
    }

    private String memberRow() throws SQLException {
        return HostileSchema.query(
                null,
                "SELECT weight || ' ' || priority || ' ' || joined_at || ' ' || member_role || ' '"
                        + " || (expires_at > clock_timestamp() AND expires_at <= clock_timestamp() + interval '31 seconds')"
                        + " FROM " + h.schema + ".group_members WHERE group_name = '" + group.replace("'", "''")
                        + "' AND member = '" + holder.replace("'", "''") + "'");
    }

    /** Waits until the member row was renewed again (so a lost shard or row would have been noticed). */
    void awaitRenewal() throws SQLException {
        String q = "SELECT renewed_at FROM " + h.schema + ".group_members WHERE group_name = '"
                + group.replace("'", "''") + "'" + " AND member = '" + holder.replace("'", "''") + "'";
        String before = HostileSchema.query(null, q);
        Awaitility.await("the group victim renews")
                .atMost(Duration.ofSeconds(10))
                .pollInterval(Duration.ofMillis(20))
                .until(() -> !String.valueOf(before).equals(HostileSchema.query(null, q)) || !revocations.isEmpty());
    }

    /** What an attack changed: the member row, a shard's holder or token or expiry, the owned shards, revocations. */
    List<String> broken(String login) throws SQLException {
        List<String> out = new ArrayList<>();
        String row = memberRow();
        if (!memberRow.equals(row)) {
            out.add("group victim " + group + ": member row (weight priority joined_at login live) was " + memberRow
                    + ", is now " + row);
        }
        for (int k = 0; k < SHARDS; k++) {
            HostileSchema.Row now = h.row(shard(k));
            HostileSchema.Row was = shardRows.get(k);
            if (now == null || !holder.equals(now.holder()) || now.token() != was.token()) {
                out.add("group victim " + group + ": shard " + k + " row was " + was + ", is now " + now);
            }
            String expiry = HostileSchema.query(
                    null,
                    "SELECT expires_at > clock_timestamp() AND expires_at <= clock_timestamp() + interval '31 seconds'"
                            + " FROM " + h.schema + ".leases WHERE name = '" + shard(k).replace("'", "''") + "'");
            if (!"t".equals(expiry)) {
                out.add("group victim " + group + ": shard " + k + " expiry is no longer within its lease duration");
            }
            List<String> byAttacker = h.events(shard(k)).stream()
                    .filter(ev -> ev.endsWith(" " + login))
                    .toList();
            if (!byAttacker.isEmpty()) {
                out.add("group victim " + group + ": shard " + k + " events made by " + login + ": " + byAttacker);
            }
        }
        if (!members.ownedShards().equals(Set.of(0, 1))) {
            out.add("group victim " + group + ": owns " + members.ownedShards());
        }
        if (!revocations.isEmpty()) {
            out.add("group victim " + group + ": revoked: " + revocations);
        }
        return out;
    }

    @Override
    public void close() {
        members.close();
        pglease.close();
    }
}
