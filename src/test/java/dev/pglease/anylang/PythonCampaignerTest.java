package dev.pglease.anylang;

import java.util.List;
import java.util.Optional;

/** The Python campaigner of docs/any-language.md keeps the campaigner contract. */
class PythonCampaignerTest extends CampaignerContract {

    private static final Optional<List<String>> PROGRAM = Campaigners.python();

    @Override
    Optional<List<String>> program() {
        return PROGRAM;
    }

    @Override
    String requirement() {
        return Campaigners.PYTHON_REQUIREMENT;
    }
}
