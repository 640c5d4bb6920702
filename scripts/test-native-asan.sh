#!/usr/bin/env bash
# The native addon's tests under AddressSanitizer and UndefinedBehaviorSanitizer: builds native/ with
# -fsanitize=address,undefined and its failpoints (native/failpoint.h) into .cache/native-asan (the normal build in
# native/build is left alone) and runs the test files that drive the addon with PXEBOX_NATIVE_ADDON pointing at that
# build (src/host/native.ts). scripts/test.sh runs it after the suite.
#   bash scripts/test-native-asan.sh
# Needs gcc's sanitizer runtimes (libasan, libubsan: Debian's g++ brings them; scripts/deps.sh test installs g++),
# node-gyp, tap and typescript (npm ci); it runs the compiled tests in dist/ and compiles them if they are stale.
# Where gcc has no libasan (an architecture without ASan) the run is skipped, saying so.
# Node itself is not built with ASan, so libasan is LD_PRELOADed (it must come first in the process) and leak
# detection is off: Node leaves its own allocations to the exit. Any sanitizer report fails the run, whether or not
# the test files noticed: reports go to files under the log directory, and any file there is a failure.
# Output is TAP as tap's runner prints it (each file a subtest, its tests one level in), so .ci/run's count
# (scripts/count-tap.mjs) counts these tests in its `N passed, N failed` line; a build failure or a sanitizer report is
# one failed test. The last line says "native-asan: ok ...", "native-asan: FAILED ..." or "native-asan: skipped ...".
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
cache=$root/.cache/native-asan
tests=(test/http/sendfile.test.ts test/tftp/transfer-socket.test.ts test/tftp/transfer-run.test.ts test/tftp/transfer-run-loop.test.ts test/host/native-netif.test.ts test/host/native-failpoints.test.ts test/host/batch-udp.test.ts test/host/read-files.test.ts)
start=$(date +%s)
elapsed() { echo "$(($(date +%s) - start)) s"; }

n=0 # TAP numbers: scripts/count-tap.mjs counts only numbered lines
fail() {
  echo "not ok $((n + 1)) - native-asan: $1"
  echo "native-asan: FAILED ($1, $(elapsed))"
  exit 1
}

asan=$(gcc -print-file-name=libasan.so)
# gcc prints the bare name when it has no such library.
if [ ! -e "$asan" ]; then
  echo "ok 1 - native-asan # SKIP gcc has no libasan.so on this host"
  echo "native-asan: skipped (gcc $(gcc -dumpversion) on $(uname -m) has no libasan.so; Debian's g++ brings it where ASan exists)"
  exit 0
fi

# -fno-sanitize-recover: UBSan aborts at the first report, as ASan does, so a report cannot pass unnoticed.
flags="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g -O1 -DPXEBOX_FAILPOINTS"
# The build is reused while its inputs are the same (sources, flags, compiler, Node): it is most of this script's time.
key=$( (cat native/binding.gyp native/*.c native/*.h; echo "$flags"; gcc --version; node --version) | sha256sum | cut -c1-16)
build=$cache/$key
addon=$build/src/build/Release/pxebox_native.node
if [ ! -e "$addon" ]; then
  # A copy of the sources, so node-gyp's build directory for this flavour never replaces the normal one.
  rm -rf "$cache"
  mkdir -p "$build/src"
  cp native/binding.gyp native/*.c native/*.h "$build/src/"
  CFLAGS="$flags" LDFLAGS="-fsanitize=address,undefined" npx --no-install node-gyp rebuild -C "$build/src" --loglevel=warn >"$build/build.log" 2>&1 ||
    { sed 's/^/# /' "$build/build.log"; rm -rf "$cache"; fail "the ASan build of native/ did not compile"; }
fi
# Not `nm | grep -q`: grep exits at the first match, nm dies of SIGPIPE, and pipefail reports that as a failure.
[[ "$(nm -D "$addon")" == *__asan_* ]] || fail "$addon is not instrumented (CFLAGS were not applied)"
logs=$build/reports
rm -rf "$logs"
mkdir -p "$logs"

# The tests as tsc compiled them into dist/ (npm run build; scripts/test.sh has just run it): under libasan, tap's
# TypeScript loader made each file's start-up ten times slower (32 s against 3 s for transfer-socket.test.ts).
compiled=()
for t in "${tests[@]}"; do compiled+=("dist/${t%.ts}.js"); done
stale=$(find src test native -newer "${compiled[0]}" -name '*.ts' -print -quit 2>/dev/null || echo missing)
for c in "${compiled[@]}"; do [ -e "$c" ] || stale=missing; done
if [ -n "$stale" ]; then
  echo "# native-asan: dist/ is missing or older than the sources ($stale): compiling (tsc)"
  npx --no-install tsc -p tsconfig.json >"$cache/tsc.log" 2>&1 || { sed 's/^/# /' "$cache/tsc.log"; fail "tsc failed"; }
fi

# Each file runs as plain node, not under the tap runner: only the test process gets libasan
# (scripts/asan-no-inherit.mjs stops it reaching curl and other children, which hang with it preloaded).
failed=0
for t in "${tests[@]}"; do
  n=$((n + 1))
  echo "# Subtest: native-asan $t"
  # TAP_TIMEOUT: a file run outside the runner is cut off at 30 s; under ASan on a busy machine they take longer.
  # PXEBOX_SENDFILE_TEST_MODES: only the body path that calls the addon (test/http/sendfile.test.ts).
  status=0
  TAP_TIMEOUT=600 PXEBOX_NATIVE_ADDON=$addon PXEBOX_SENDFILE_TEST_MODES=sendfile LD_PRELOAD=$asan \
    ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:log_path=$logs/asan" \
    UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$logs/ubsan" \
    node --import="$root/scripts/asan-no-inherit.mjs" --enable-source-maps "dist/${t%.ts}.js" 2>&1 | sed 's/^/    /' || status=$?
  if [ "$status" = 0 ]; then
    echo "ok $n - native-asan $t"
  else
    echo "not ok $n - native-asan $t # exited $status"
    failed=$((failed + 1))
  fi
done

reports=$(find "$logs" -type f | sort)
if [ -n "$reports" ]; then
  for r in $reports; do
    echo "# --- $r"
    sed 's/^/# /' "$r"
  done
  fail "sanitizer reports: $(echo "$reports" | wc -l)"
fi
[ $failed = 0 ] || { echo "native-asan: FAILED ($failed of ${#tests[@]} test files, $(elapsed))"; exit 1; }
echo "native-asan: ok (${#tests[@]} test files, ASan+UBSan build with failpoints, no sanitizer reports, $(elapsed))"
