package dev.pglease.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.pglease.GroupConfig;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/** The node command's choice between an elector and a group member, and the refusals that name the bad option. */
class GroupModeTest {

    private static NodeCommand parse(String... args) {
        NodeCommand node = new NodeCommand();
        new CommandLine(node).parseArgs(args);
        return node;
    }

    @Test
    void leaseAloneIsAnElector() {
        assertThat(GroupMode.check(parse("--lease", "payments"))).isNull();
    }

    @Test
    void groupWithShardsWeightAndPriorityIsAMember() {
        GroupConfig member =
                GroupMode.check(parse("--group", "invoices", "--shards", "64", "--weight", "3", "--priority", "2"));
        assertThat(member.weight()).isEqualTo(3);
        assertThat(member.priority()).isEqualTo(2);
    }

    @Test
    void exactlyOneOfLeaseAndGroupIsGiven() {
        assertThatThrownBy(() -> GroupMode.check(parse("--lease", "a", "--group", "b", "--shards", "2")))
                .hasMessageContaining("either --lease");
        assertThatThrownBy(() -> GroupMode.check(parse())).hasMessageContaining("either --lease");
    }

    @Test
    void groupOptionsAreRefusedWithTheirValue() {
        assertThatThrownBy(() -> GroupMode.check(parse("--group", "g"))).hasMessageContaining("--shards");
        assertThatThrownBy(() -> GroupMode.check(parse("--group", "g", "--shards", "0")))
                .hasMessageContaining("got 0");
        assertThatThrownBy(() -> GroupMode.check(parse("--group", "g", "--shards", "4", "--weight", "0")))
                .hasMessageContaining("--weight")
                .hasMessageContaining("got 0");
        assertThatThrownBy(() -> GroupMode.check(parse("--group", "g", "--shards", "4", "--priority", "5000")))
                .hasMessageContaining("--priority")
                .hasMessageContaining("got 5000");
        assertThatThrownBy(() -> GroupMode.check(parse("--lease", "l", "--shards", "4")))
                .hasMessageContaining("go with --group");
    }

    @Test
    void aGroupMemberMayRunWithFastFailover() {
        assertThat(GroupMode.check(parse("--group", "g", "--shards", "4", "--fast-failover")))
                .isEqualTo(GroupConfig.defaults());
    }

    @Test
    void theHiddenRevocationIgnoringSwitchIsAcceptedForGroupsAndTheOtherFaultSwitchesAreRefused() {
        assertThat(GroupMode.check(parse("--group", "g", "--shards", "4", "--ignore-deadline")))
                .as("a member that ignores revocation (negative control)")
                .isNotNull();
        assertThatThrownBy(() -> GroupMode.check(parse("--group", "g", "--shards", "4", "--unfenced")))
                .hasMessageContaining("--unfenced and --campaign-delay are not supported with --group");
        assertThatThrownBy(() -> GroupMode.check(parse("--group", "g", "--shards", "4", "--campaign-delay", "1s")))
                .hasMessageContaining("--campaign-delay");
    }
}
