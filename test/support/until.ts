// Waiting in tests for something that happens on its own time (a child process, an emulator's
// redelivery, a file a task writes): polls a probe until it answers, with a deadline, so a test that
// waits never waits forever and never sleeps a fixed time.

/**
 * Calls `probe` every `everyMs` until it answers something other than undefined, and returns that;
 * throws after `ms`, naming `what` it waited for.
 */
export async function until<T>(
  probe: () => T | undefined | Promise<T | undefined>,
  ms = 20_000,
  what = 'the condition',
  everyMs = 50,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}
