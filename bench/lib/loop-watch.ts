import { constants, monitorEventLoopDelay, PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks'
import { median } from './report'

/**
 * What stalled a process's event loop over a window: how late a 1 ms timer fired (a request that
 * arrives during a stall waits for it) and the garbage collector's pauses. Milliseconds.
 */
export interface LoopStats {
  /** Lateness of a 1 ms timer: median, 99th percentile and worst. */
  delay: { p50: number, p99: number, max: number }
  /**
   * Every pause; `major` is the longest that was not a scavenge (mark-compact, incremental marking,
   * weak callbacks), `compactions` how many mark-compacts finished: at 80 % busy one is a p99.
   */
  gc: { count: number, ms: number, max: number, major: number, compactions: number }
  /** V8 heap in use at the end, MB: a major collection's pause grows with what is live. */
  heapMb: number
}

const RESOLUTION_MS = 1

/** Starts watching this process's event loop; the function returned stops and reports. */
export function watchLoop (): () => LoopStats {
  const histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS })
  const gc = { count: 0, ms: 0, max: 0, major: 0, compactions: 0 }
  const count = (entries: PerformanceEntry[]): void => {
    for (const entry of entries) {
      gc.count++
      gc.ms += entry.duration
      gc.max = Math.max(gc.max, entry.duration)
      const { kind } = (entry as unknown as { detail: { kind: number } }).detail
      if (kind !== constants.NODE_PERFORMANCE_GC_MINOR) gc.major = Math.max(gc.major, entry.duration)
      if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) gc.compactions++
    }
  }
  const observer = new PerformanceObserver((list) => { count(list.getEntries()) })
  observer.observe({ entryTypes: ['gc'] })
  histogram.enable()
  return () => {
    histogram.disable()
    // Entries are delivered in batches: the last ones are still queued.
    count(observer.takeRecords())
    observer.disconnect()
    // The histogram holds the whole interval between two firings; the timer's own period is not a delay.
    const late = (ns: number): number => Math.max(0, ns / 1e6 - RESOLUTION_MS)
    return { delay: { p50: late(histogram.percentile(50)), p99: late(histogram.percentile(99)), max: late(histogram.max) }, gc, heapMb: process.memoryUsage().heapUsed / 2 ** 20 }
  }
}

/**
 * Several windows' stats as one: percentiles cannot be merged, so p50 is the median of the windows'
 * and p99 the worst window's; pauses are added up; the heap is the last window's.
 */
export function combineLoopStats (windows: LoopStats[]): LoopStats {
  return {
    delay: { p50: median(windows.map((w) => w.delay.p50)), p99: Math.max(...windows.map((w) => w.delay.p99)), max: Math.max(...windows.map((w) => w.delay.max)) },
    gc: {
      count: windows.reduce((n, w) => n + w.gc.count, 0),
      ms: windows.reduce((n, w) => n + w.gc.ms, 0),
      max: Math.max(...windows.map((w) => w.gc.max)),
      major: Math.max(...windows.map((w) => w.gc.major)),
      compactions: windows.reduce((n, w) => n + w.gc.compactions, 0)
    },
    heapMb: windows[windows.length - 1]!.heapMb
  }
}
