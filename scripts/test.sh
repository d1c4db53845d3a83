#!/usr/bin/env bash
# The whole suite, as `pnpm test` runs it: typecheck and unit tests in parallel, then the multi-process
# integration suites one package at a time (they start real processes and measure timings: running several
# packages' suites at once on a 2-core machine would make those timings meaningless), then lint.
# Every step runs even if an earlier one failed; the exit status is non-zero if any failed.
set -u
export TURBO_TELEMETRY_DISABLED=1
status=0
turbo run typecheck test --continue || status=1
turbo run test:integration --concurrency=1 --continue || status=1
biome check . || status=1
exit "$status"
