/**
 * Teardown that closes everything setup opened, even when setup failed half-way or an
 * earlier step throws: each step runs (steps given undefined for what was never made are
 * skipped), and the failures are reported together at the end, so none is hidden and no
 * server, proxy or connection is left keeping the test process alive.
 */
export async function cleanup(...steps: readonly (() => unknown)[]): Promise<void> {
  const failures: unknown[] = [];
  for (const step of steps) {
    try {
      await step();
    } catch (error) {
      failures.push(error);
    }
  }
  if (failures.length === 1) throw failures[0];
  if (failures.length > 1) throw new AggregateError(failures, `${failures.length} cleanup steps failed: ${failures.map((e) => (e as Error).message).join('; ')}`);
}
