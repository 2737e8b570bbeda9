package dev.pglease.compare;

/** pglease candidate; replaced by the real one once the core library is on the build path. */
final class PgleaseBackend {
    private PgleaseBackend() {
    }

    static Candidate.Backend create(Candidate c) {
        throw new UnsupportedOperationException("pglease core library not available yet");
    }
}
