package dev.pglease.anylang;

import java.util.List;
import java.util.Optional;

/** The bash and psql campaigner keeps the campaigner contract. */
class PsqlCampaignerTest extends CampaignerContract {

    private static final Optional<List<String>> PROGRAM = Campaigners.psql();

    @Override
    Optional<List<String>> program() {
        return PROGRAM;
    }

    @Override
    String requirement() {
        return Campaigners.PSQL_REQUIREMENT;
    }
}
