package dev.pglease.internal.group;

import dev.pglease.GroupListener;
import dev.pglease.LeaderListener;
import dev.pglease.Leadership;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The listener of one shard's campaign: turns the engine's calls into the group listener's {@code onAssigned} and
 * {@code onRevoked}, one at a time, each grant assigned at most once and revoked at most once, and never revoked
 * before it was assigned (a grant whose end comes first is never shown to the group listener). A grant is revoked
 * either cooperatively (while still valid, before its release) or when the engine ends it.
 */
final class ShardSlot implements LeaderListener {

    private static final Logger log = LoggerFactory.getLogger(ShardSlot.class);

    /** What the member hears of its shard, before the group listener does. */
    interface Events {
        void assigned(int shard, Leadership leadership);

        /** @param handedOver whether the grant was still valid (a cooperative move) */
        void revoked(int shard, Leadership leadership, boolean handedOver);
    }

    private final String group;
    private final int shard;
    private final GroupListener listener;
    private final Events events;
    /** The grant the group listener was told of and not yet told the end of. Written under this. */
    private volatile Leadership assigned;
    /** Grants whose end was handled (told, or suppressed before they were told). Guarded by this. */
    private final Set<Leadership> ended = Collections.newSetFromMap(new IdentityHashMap<>());

    ShardSlot(String group, int shard, GroupListener listener, Events events) {
        this.group = group;
        this.shard = shard;
        this.listener = listener;
        this.events = events;
    }

    int shard() {
        return shard;
    }

    /** The grant the group listener holds now (told of, not yet revoked), or {@code null}. Takes no lock. */
    Leadership assigned() {
        return assigned;
    }

    @Override
    public void onElected(Leadership leadership) {
        synchronized (this) {
            if (ended.contains(leadership) || assigned == leadership) {
                return;
            }
            assigned = leadership;
            events.assigned(shard, leadership);
            try {
                listener.onAssigned(shard, leadership);
            } catch (RuntimeException | Error e) {
                log.error("pglease: the listener of group {} threw in onAssigned of shard {}", group, shard, e);
            }
        }
    }

    @Override
    public void onRevoked(Leadership leadership) {
        synchronized (this) {
            if (ended.size() >= 16) {
                ended.clear(); // only the race of a hand-over with a grant's first call needs a record
            }
            if (!ended.add(leadership) || assigned != leadership) {
                return;
            }
            assigned = null;
            events.revoked(shard, leadership, leadership.isValid());
            try {
                listener.onRevoked(shard, leadership);
            } catch (RuntimeException | Error e) {
                log.error("pglease: the listener of group {} threw in onRevoked of shard {}", group, shard, e);
            }
        }
    }
}
