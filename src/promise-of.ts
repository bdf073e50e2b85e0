/**
 * What `run` returns, as a promise: a synchronous throw becomes a rejection, a plain value a
 * resolved promise, a promise is returned as it is. For the hot paths written as promise chains
 * rather than `async` functions (an async wrapper would cost a promise and a microtask more per
 * call), where what they call may throw before it returns its promise.
 */
export function promiseOf<T>(run: () => T | Promise<T>): Promise<T> {
  try {
    const value = run();
    return value instanceof Promise ? value : Promise.resolve(value);
  } catch (error) {
    return Promise.reject(error);
  }
}
