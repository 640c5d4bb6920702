#!/usr/bin/env bash
# Run the whole test suite: type-check, unit tests, real-client tests in network namespaces, VM boots, and the native
# addon's tests against an AddressSanitizer/UBSan build of it (scripts/test-native-asan.sh).
#   sudo bash scripts/test.sh [tap args...]
# Installs what the tests need (Debian packages, npm packages, iPXE firmware, the VM boot target) first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh test
# Without an npm of the machine's own, deps.sh installed npm's release there (as for scripts/install.sh).
command -v npm >/dev/null || PATH=/usr/local/lib/pxebox-npm/bin:$PATH
# better-sqlite3 (the store, src/store/sqlite.ts) compiles its SQLite here like native/: no prebuilt download from GitHub.
export npm_config_build_from_source=better-sqlite3
npm ci --no-audit --no-fund --loglevel=error
bash firmware/fetch.sh >/dev/null
bash scripts/build-boot-target.sh >/dev/null
npm run -s typecheck
npm run -s build
status=0
npx tap "$@" || status=$?
node scripts/check-coverage.mjs || status=1
bash scripts/test-native-asan.sh || status=1
exit $status
