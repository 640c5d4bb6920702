#!/usr/bin/env bash
# The native addon's tests under AddressSanitizer and UndefinedBehaviorSanitizer: builds native/ with
# -fsanitize=address,undefined and its failpoints (native/failpoint.h) into .cache/native-asan (the normal build in
# native/build is left alone) and runs the test files that drive the addon with PXEBOX_NATIVE_ADDON pointing at that
# build (src/host/native.ts).
#   bash scripts/test-native-asan.sh
# Needs gcc's sanitizer runtimes (libasan, libubsan: Debian's g++ brings them), node-gyp and tap (npm ci).
# Node itself is not built with ASan, so libasan is LD_PRELOADed (it must come first in the process) and leak
# detection is off: Node leaves its own allocations to the exit. Any sanitizer report fails the run, whether or not
# the test files noticed: reports go to files under the log directory, and any file there is a failure.
# Prints one line at the end: "native-asan: ok ..." or "native-asan: FAILED ...".
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=$root/.cache/native-asan
logs=$build/reports
tests=(test/http/sendfile.test.ts test/tftp/transfer-socket.test.ts test/host/native-failpoints.test.ts)
start=$(date +%s)

fail() {
  echo "native-asan: FAILED ($1, $(($(date +%s) - start)) s)"
  exit 1
}

asan=$(gcc -print-file-name=libasan.so)
# gcc prints the bare name when it has no such library.
[ -e "$asan" ] || fail "gcc has no libasan.so: install g++ (Debian: it brings libasan and libubsan), e.g. scripts/deps.sh test"

# A copy of the sources, so node-gyp's build directory for this flavour never replaces the normal one.
rm -rf "$build"
mkdir -p "$build/src" "$logs"
cp native/binding.gyp native/*.c native/*.h "$build/src/"
# -fno-sanitize-recover: UBSan aborts at the first report, as ASan does, so a report cannot pass unnoticed.
flags="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g -O1 -DPXEBOX_FAILPOINTS"
CFLAGS="$flags" LDFLAGS="-fsanitize=address,undefined" npx --no-install node-gyp rebuild -C "$build/src" --loglevel=warn >"$build/build.log" 2>&1 ||
  { cat "$build/build.log" >&2; fail "the ASan build of native/ did not compile"; }
addon=$build/src/build/Release/pxebox_native.node
# Not `nm | grep -q`: grep exits at the first match, nm dies of SIGPIPE, and pipefail reports that as a failure.
[[ "$(nm -D "$addon")" == *__asan_* ]] || fail "$addon is not instrumented (CFLAGS were not applied)"

# Each file runs as plain node with tap's TypeScript loader, not under the tap runner: only the test process gets
# libasan (scripts/asan-no-inherit.mjs stops it reaching curl and other children, which hang with it preloaded).
status=0
for t in "${tests[@]}"; do
  echo "# native-asan: $t"
  # TAP_TIMEOUT: a file run outside the runner is cut off at 30 s; under ASan on a busy machine they take longer.
  TAP_TIMEOUT=600 PXEBOX_NATIVE_ADDON=$addon PXEBOX_SENDFILE_TEST_MODES=sendfile LD_PRELOAD=$asan \
    ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:log_path=$logs/asan" \
    UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$logs/ubsan" \
    node --import="$root/scripts/asan-no-inherit.mjs" --import="$root/node_modules/@tapjs/typescript/dist/esm/import.mjs" \
    --enable-source-maps "$t" || { status=$?; echo "# native-asan: $t exited $status"; }
done

reports=$(find "$logs" -type f | sort)
if [ -n "$reports" ]; then
  for r in $reports; do
    echo "--- $r" >&2
    cat "$r" >&2
  done
  fail "sanitizer reports: $(echo "$reports" | wc -l)"
fi
[ $status = 0 ] || fail "a native test file failed under ASan"
echo "native-asan: ok (${#tests[@]} test files, ASan+UBSan build, no sanitizer reports, $(($(date +%s) - start)) s)"
