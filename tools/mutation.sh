#!/usr/bin/env bash
# Mutation testing of the core modules (trimap utilities, transforms, loss, metrics, pipeline, framing,
# specs, output, prepare) with mutmut 3 and each module's fast unit tests; prints the score per module and
# every surviving mutant. About 25 minutes for all on 2 cores with one test process.
#
#   pip install -r tools/requirements-mutation.txt
#   bash tools/mutation.sh                 # all modules
#   bash tools/mutation.sh loss specs      # some
#   bash tools/mutation.sh --list          # modules, functions, test selections
#
# Works in mutants/<module>/ (git-ignored; a fresh copy of the checkout per module). Runs at low priority
# with one thread per process; MUTMUT_CHILDREN=2 runs two test processes at once on an idle machine.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" MKL_NUM_THREADS="${MKL_NUM_THREADS:-1}" NUMBA_NUM_THREADS="${NUMBA_NUM_THREADS:-1}"
exec nice -n "${MUTATION_NICE:-10}" python tools/mutation.py "$@"
