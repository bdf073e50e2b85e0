/**
 * The error of class `type` that `run` throws; fails the test when it throws none or another
 * error (that one is rethrown, so the test shows it).
 */
// biome-ignore lint/suspicious/noExplicitAny: any error constructor
export function thrown<E extends Error>(type: new (...args: any[]) => E, run: () => unknown): E {
  try {
    run();
  } catch (error) {
    if (error instanceof type) return error;
    throw error;
  }
  throw new Error(`expected a ${type.name}`);
}
