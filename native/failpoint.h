/*
 * Fault injection for the failure paths no test can otherwise reach: an N-API call failing in the middle of
 * udpOpen or sendfile (issue 14 item 6: what was already set up must be released, the promise must settle). Only the
 * build of scripts/test-native-asan.sh defines PXEBOX_FAILPOINTS; in every other build pxebox_failpoint(name) is the
 * constant 0 and the compiler drops it. In that build, the failpoint named by the environment variable
 * PXEBOX_NATIVE_FAILPOINT (read at each call, so a test sets and clears it around one call) reports a failure.
 * test/host/native-failpoints.test.ts drives them and checks what each failure leaves behind.
 */
#ifndef PXEBOX_FAILPOINT_H
#define PXEBOX_FAILPOINT_H

#ifdef PXEBOX_FAILPOINTS
#include <stdlib.h>
#include <string.h>
static inline int pxebox_failpoint(const char *name) {
  const char *armed = getenv("PXEBOX_NATIVE_FAILPOINT");
  return armed != NULL && strcmp(armed, name) == 0;
}
#else
#define pxebox_failpoint(name) 0
#endif

#endif
