package org.kdbusbridge.compat.endpoint;

/**
 * One check of the matrix: under a rule set, an action from inside the sandbox, and the outcome the
 * real xdg-dbus-proxy gives (which our endpoint must give too).
 *
 * @param id       short stable name, shown in the test report
 * @param ruleSet  key into {@link MatrixCases#RULE_SETS}
 * @param expected the normalised outcome (see {@link CaseContext})
 * @param why      the rule of flatpak-proxy.c that produces it
 * @param action   what the sandboxed client does; returns the normalised outcome
 */
record MatrixCase(String id, String ruleSet, String expected, String why, Action action) {
    @FunctionalInterface
    interface Action {
        String run(CaseContext x) throws Exception;
    }

    @Override
    public String toString() {
        return ruleSet + "/" + id;
    }
}
