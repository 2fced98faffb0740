#!/usr/bin/env bash
# Proves that the repository stands alone: clones the current checkout's HEAD into an empty temporary folder (no
# shared/ or anything else beside it), installs the dependencies there from the local pnpm store (offline: the
# main install has filled it) and runs the tests that read testdata/ there. Fails when a test fails or none ran.
# Checks committed work only: uncommitted changes are not in the clone.
# Usage: ./smgw test-standalone (needs node and pnpm on PATH, which ./smgw provides).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The tests that use testdata/ (the NIST PKITS and BoringSSL vectors, the real trusted lists and the ETSI schemas),
# and the rest of crypto's pkix tests. Patterns for node --test, matched inside the clone.
TESTS=('packages/crypto/test/pkix-*.test.ts' 'packages/trusted-list/test/*.test.ts')

say() { printf '\033[1;34msmgw standalone\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31msmgw standalone\033[0m %s\n' "$*" >&2; exit 1; }

HEAD_COMMIT="$(git -C "$ROOT" rev-parse HEAD)"
[ -z "$(git -C "$ROOT" status --porcelain)" ] || say "uncommitted changes are not checked: only HEAD is cloned"
# The pnpm store is per disk: a temporary folder on another file system (tmpfs) would get an empty one.
STORE="$(cd "$ROOT" && pnpm store path)"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
CLONE="$WORK/smgw"
say "cloning $HEAD_COMMIT into $CLONE"
git clone --quiet --no-checkout "$ROOT" "$CLONE"
git -C "$CLONE" -c advice.detachedHead=false checkout --quiet --detach "$HEAD_COMMIT"

say "installing dependencies offline from $STORE"
(cd "$CLONE" && pnpm install --frozen-lockfile --offline --store-dir "$STORE" --reporter=append-only >&2) ||
  die "pnpm install --offline failed in the clone (run ./smgw test first: it fills the pnpm store)"

say "running ${TESTS[*]} in the clone"
TAP="$WORK/tests.tap"
status=0
(cd "$CLONE" && node --test --test-concurrency=2 --test-reporter=dot --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="$TAP" "${TESTS[@]}") || status=$?
count() { sed -n "s/^# $1 \([0-9]*\)$/\1/p" "$TAP" 2>/dev/null | tail -1; }
passed="$(count pass)"; failed="$(count fail)"; cancelled="$(count cancelled)"
passed="${passed:-0}"; failed="${failed:-0}"; cancelled="${cancelled:-0}"
[ "$status" -eq 0 ] && [ "$failed" -eq 0 ] && [ "$cancelled" -eq 0 ] ||
  die "FAILED in a clone with nothing beside it: $failed failed, $cancelled cancelled, $passed passed (exit $status)"
[ "$passed" -gt 0 ] || die "FAILED: no test ran in the clone"
say "ok: $passed tests passed in a clone of $HEAD_COMMIT with nothing beside it"
