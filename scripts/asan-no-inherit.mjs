// Imported first by the test processes of scripts/test-native-asan.sh. libasan is already in this process (the dynamic
// loader read LD_PRELOAD at exec); this keeps the processes it spawns from inheriting it: an uninstrumented curl with
// libasan preloaded hangs at start (seen with Debian 12's curl and gcc 12).
delete process.env.LD_PRELOAD
