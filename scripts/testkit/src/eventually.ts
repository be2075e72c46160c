/** Polls `probe` until it returns a value (not undefined), or throws `message()` when the time is up. */
export async function eventually<T>(
  probe: () => Promise<T | undefined> | T | undefined,
  options: { timeoutMs: number; intervalMs?: number; message: () => string },
): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline)
      throw new Error(`${options.message()} (gave up after ${options.timeoutMs} ms)`);
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 50));
  }
}
