import { Session } from 'node:inspector/promises'
import { writeFileSync } from 'node:fs'
import { constants, PerformanceObserver } from 'node:perf_hooks'
import { watchLoop, type LoopStats } from './loop-watch'
import type { Listening } from './servers'

/**
 * The messages between the driver and a server's child process: `close`, and starting/stopping
 * a profiler over the inspector protocol, so only the measured window is recorded, not start-up
 * (module loading through tsx) or the warm-up. 'cpu' is what `node --cpu-prof` records; 'alloc' is
 * V8's sampling heap profiler, counting objects already collected too. `watch` … `unwatch` reports
 * the event loop's stalls over a window (bench/lib/loop-watch.ts).
 */
export type ProfileKind = 'cpu' | 'alloc'
export type ControlMessage = 'close' | { start: ProfileKind } | { stop: ProfileKind, to: string } | 'watch' | 'unwatch'
export type GcStats = Record<string, { count: number, ms: number }>
export type ChildReport = { port: number } | 'started' | { gc: GcStats } | 'watching' | { watched: LoopStats }

export const PROFILE_SAMPLING_US = 250

const GC_KINDS: Record<number, string> = {
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'scavenge',
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'mark-compact',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental marking',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weak callbacks'
}

/** In the child: tells the driver the port, then obeys its control messages. */
export function serveControl (server: Listening): void {
  let session: Session | undefined
  let gc: PerformanceObserver | undefined
  let gcStats: GcStats = {}
  const send = (report: ChildReport): void => { process.send?.(report) }
  const fail = (err: unknown): void => { console.error(err); process.exit(1) }
  let unwatch: (() => LoopStats) | undefined
  process.on('message', (message: ControlMessage) => {
    if (message === 'close') {
      server.close().finally(() => process.exit(0))
    } else if (message === 'watch') {
      unwatch = watchLoop()
      send('watching')
    } else if (message === 'unwatch') {
      if (unwatch !== undefined) send({ watched: unwatch() })
      unwatch = undefined
    } else if ('start' in message) {
      const current = session = new Session()
      current.connect()
      gcStats = {}
      gc = new PerformanceObserver((list) => {
        for (const entry of list.getEntries()) {
          const kind = GC_KINDS[(entry as unknown as { detail: { kind: number } }).detail.kind] ?? 'other'
          const stat = gcStats[kind] ?? (gcStats[kind] = { count: 0, ms: 0 })
          stat.count++
          stat.ms += entry.duration
        }
      })
      gc.observe({ entryTypes: ['gc'] })
      const started = message.start === 'cpu'
        ? startCpuProfiler(current, PROFILE_SAMPLING_US)
        : current.post('HeapProfiler.enable')
          .then(() => current.post('HeapProfiler.startSampling', { samplingInterval: 16_384, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true } as never))
      started.then(() => { send('started') }, fail)
    } else if (session !== undefined) {
      const current = session
      const stopped = message.stop === 'cpu'
        ? current.post('Profiler.stop').then(({ profile }) => profile as unknown)
        : current.post('HeapProfiler.stopSampling').then(({ profile }) => profile as unknown)
      stopped.then((profile) => {
        gc?.disconnect()
        writeFileSync(message.to, JSON.stringify(profile))
        current.disconnect()
        send({ gc: gcStats })
      }, fail)
    }
  })
  send({ port: server.port })
}

/**
 * The CPU profiler in this very process (a driver profiling its own work), at `intervalUs`. Started
 * and stopped (the returned function writes the profile to `to`) from this module, so that
 * summariseProfile counts the profiler's own work, serialising the profile included, apart.
 */
export async function startOwnCpuProfile (intervalUs: number): Promise<(to: string) => Promise<void>> {
  const session = new Session()
  session.connect()
  await startCpuProfiler(session, intervalUs)
  return async (to) => {
    const { profile } = await session.post('Profiler.stop')
    writeFileSync(to, JSON.stringify(profile))
    session.disconnect()
  }
}

async function startCpuProfiler (session: Session, intervalUs: number): Promise<void> {
  await session.post('Profiler.enable')
  await session.post('Profiler.setSamplingInterval', { interval: intervalUs })
  await session.post('Profiler.start')
}
