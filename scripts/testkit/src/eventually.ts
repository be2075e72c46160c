/**
 * Polls `probe` until it returns a value (not undefined) or the time is up; then throws
 * `message()`. A bounded wait for something asynchronous to happen, never a timing assertion:
 * tests wait for conditions, they do not sleep a fixed time.
 *
 *   const order = await eventually(() => findOrder(id), {
 *     timeoutMs: 10_000,
 *     message: () => `order ${id} never appeared`,
 *   });
 */
export async function eventually<T>(
  probe: () => Promise<T | undefined> | T | undefined,
  options: { timeoutMs: number; intervalMs?: number; message: () => string },
): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) {
      throw new Error(`${options.message()} (gave up after ${options.timeoutMs} ms)`);
    }
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 100));
  }
}
