import { Worker } from 'node:worker_threads'
import type { Pool } from 'undici'

/** Percentiles of one window, ms. */
export interface Spread { p50: number, p99: number, max: number }

export interface OpenLoopResult {
  /** From each request's scheduled send time to the end of its answer. */
  latency: Spread
  /** How late each request left: the driver's own delay, already inside `latency`. */
  lateness: Spread
  /** From each request's actual send to the end of its answer: `latency` without the driver's lateness. */
  service: Spread
  /** Requests whose latency exceeded one second: the rate was more than the target could take. */
  overOneSecond: number
}

/** One run's raw figures, ms per request: several runs against one target can be summarised as one. */
export interface OpenLoopRun {
  latency: Float64Array
  lateness: Float64Array
}

function spread (values: Float64Array): Spread {
  const sorted = values.slice().sort()
  const at = (p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!
  return { p50: at(0.5), p99: at(0.99), max: sorted[sorted.length - 1]! }
}

/**
 * The schedule's clock, in a worker thread: it sleeps in `Atomics.wait` (a futex with a timeout,
 * tens of µs late, where Node's timers have a 1 ms grain) until the next request is due and tells
 * the main thread how many are due by then. The first message is the schedule's start.
 */
const TICKER = `
const { parentPort, workerData: { intervalNs, total } } = require('node:worker_threads')
const sleeper = new Int32Array(new SharedArrayBuffer(4))
const start = Number(process.hrtime.bigint())
parentPort.postMessage(start)
let due = 0
while (due < total) {
  const wait = start + due * intervalNs - Number(process.hrtime.bigint())
  if (wait > 0) Atomics.wait(sleeper, 0, 0, wait / 1e6)
  const now = Number(process.hrtime.bigint()) - start
  while (due < total && due * intervalNs <= now) due++
  parentPort.postMessage(due)
}
`

/**
 * `rate` GET requests a second to `path` for `seconds`, evenly spaced, on a fixed schedule whatever
 * the answers do (open loop), so a stall shows in the percentiles instead of slowing the load down.
 * The schedule is kept by a sleeping thread, not by spinning: a spinning driver takes a whole core
 * from the servers it measures.
 */
export async function openLoop (pool: Pool, path: string, headers: Record<string, string>, rate: number, seconds: number): Promise<OpenLoopRun> {
  const total = Math.round(rate * seconds)
  const intervalNs = 1e9 / rate
  const latency = new Float64Array(total)
  const lateness = new Float64Array(total)
  let failures = 0
  const ticker = new Worker(TICKER, { eval: true, workerData: { intervalNs, total } })
  await new Promise<void>((resolve, reject) => {
    let start: number | undefined
    let sent = 0
    let done = 0
    const now = (): number => Number(process.hrtime.bigint())
    const answered = (): void => { if (++done === total) resolve() }
    const send = (i: number): void => {
      const scheduled = start! + i * intervalNs
      lateness[i] = (now() - scheduled) / 1e6
      // A bare dispatch handler: no body stream or promise per request, so the driver's own work
      // and garbage, which delay the next sends, stay small.
      let status = 0
      pool.dispatch({ path, method: 'GET', headers }, {
        onRequestStart () {},
        onResponseStart (_controller, statusCode) { status = statusCode },
        onResponseData () {},
        onResponseEnd () {
          if (status !== 200) failures++
          latency[i] = (now() - scheduled) / 1e6
          answered()
        },
        onResponseError () {
          failures++
          answered()
        }
      })
    }
    ticker.on('message', (due: number) => {
      if (start === undefined) start = due
      else while (sent < due) send(sent++)
    })
    ticker.once('error', reject)
  })
  await ticker.terminate()
  if (failures > 0) throw new Error(`${path}: ${failures} of ${total} requests failed`)
  return { latency, lateness }
}

/** The percentiles of every request of `runs` together. */
export function summarise (runs: OpenLoopRun[]): OpenLoopResult {
  const joined = (pick: (run: OpenLoopRun) => Float64Array): Float64Array => {
    const all = new Float64Array(runs.reduce((n, run) => n + pick(run).length, 0))
    let at = 0
    for (const run of runs) { all.set(pick(run), at); at += pick(run).length }
    return all
  }
  const latency = joined((run) => run.latency)
  const lateness = joined((run) => run.lateness)
  return { latency: spread(latency), lateness: spread(lateness), service: spread(latency.map((l, i) => l - lateness[i]!)), overOneSecond: latency.filter((l) => l > 1000).length }
}
