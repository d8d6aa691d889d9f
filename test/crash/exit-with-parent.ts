/**
 * Preloaded into the bank's child process by the crash test (`--import`): when the test's
 * process goes away by any means, even SIGKILL, the child's stdin reaches its end and it exits.
 */
process.stdin.on('end', () => process.exit(1));
process.stdin.on('error', () => process.exit(1));
process.stdin.resume();
