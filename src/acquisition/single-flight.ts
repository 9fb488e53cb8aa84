/**
 * Concurrent calls for one key share one execution: the first caller runs `work`, later ones get
 * the same promise until it settles. A Map lookup: O(1) whatever the number of keys.
 */
export class SingleFlight<T> {
  private readonly inFlight = new Map<string, Promise<T>>()
  /** Calls that joined a flight instead of starting one. */
  joined = 0

  async run (key: string, work: () => Promise<T>): Promise<T> {
    const pending = this.inFlight.get(key)
    if (pending !== undefined) {
      this.joined++
      return await pending
    }
    // work() starts on the next microtask, after the flight is registered, so even a synchronous
    // throw settles (and removes) the flight instead of leaving a stale one behind.
    const started = Promise.resolve().then(work).finally(() => { this.inFlight.delete(key) })
    this.inFlight.set(key, started)
    return await started
  }

  has (key: string): boolean {
    return this.inFlight.has(key)
  }

  get size (): number {
    return this.inFlight.size
  }
}
