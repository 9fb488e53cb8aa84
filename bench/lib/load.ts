import autocannon from 'autocannon'
import { request } from 'undici'
import { coreSeconds, cpuSeconds, SUT_CPU } from './cpu'
import type { Payload } from './payloads'
import { median } from './report'

export const CONNECTIONS = 50

/** One measured window against one server. */
export interface Sample {
  rps: number
  p50: number
  p99: number
  /** CPU time of the server under load per request, µs. */
  cpuUsPerReq: number
  /** The server's CPU time over the window's wall time: near 1 when it, not the load side, is the limit. */
  coreShare: number
  /** Share of the server's core that other processes took meanwhile (SUT_CPU's busy time minus the server's). */
  othersShare: number
  /** Milliseconds the hypervisor took from the server's core meanwhile (10 ms ticks). */
  stolenMs: number
  /** What the figures above are made of, so that slices of one window can be added up (`combine`). */
  raw: { requests: number, seconds: number, cpuSeconds: number, wallSeconds: number, coreBusySeconds: number }
}

function headers (payload: Payload, token: string): Record<string, string> {
  return { authorization: `Bearer ${token}`, ...(payload.body ? { 'content-type': 'application/octet-stream' } : {}) }
}

/** autocannon (programmatic API) at CONNECTIONS connections, no pipelining, for `seconds`. */
export async function load (url: string, payload: Payload, token: string, seconds: number): Promise<autocannon.Result> {
  return await autocannon({
    url: url + payload.path,
    connections: CONNECTIONS,
    pipelining: 1,
    duration: seconds,
    method: payload.method,
    headers: headers(payload, token),
    ...(payload.body ? { body: payload.body } : {})
  })
}

/** A measured window with the server's CPU time and its core's busy and stolen time read from /proc around it. */
export async function measure (server: { url: string, pid: number }, payload: Payload, token: string, seconds: number): Promise<Sample> {
  const cpuBefore = cpuSeconds(server.pid)
  const coreBefore = coreSeconds(SUT_CPU)
  const wallBefore = process.hrtime.bigint()
  const result = await load(server.url, payload, token, seconds)
  const cpuAfter = cpuSeconds(server.pid)
  const coreAfter = coreSeconds(SUT_CPU)
  const wall = Number(process.hrtime.bigint() - wallBefore) / 1e9
  if (result.errors > 0 || result.timeouts > 0 || result.non2xx > 0) {
    throw new Error(`${server.url}${payload.path}: ${result.errors} errors, ${result.timeouts} timeouts, ${result.non2xx} non-2xx answers`)
  }
  return fromRaw({
    requests: result.requests.total,
    seconds: result.duration,
    cpuSeconds: cpuAfter - cpuBefore,
    wallSeconds: wall,
    coreBusySeconds: coreAfter.busy - coreBefore.busy
  }, result.latency.p50, result.latency.p99, (coreAfter.steal - coreBefore.steal) * 1000)
}

function fromRaw (raw: Sample['raw'], p50: number, p99: number, stolenMs: number): Sample {
  return {
    rps: raw.requests / raw.seconds,
    p50,
    p99,
    cpuUsPerReq: (raw.cpuSeconds * 1e6) / raw.requests,
    coreShare: raw.cpuSeconds / raw.wallSeconds,
    othersShare: Math.max(0, raw.coreBusySeconds - raw.cpuSeconds) / raw.wallSeconds,
    stolenMs,
    raw
  }
}

/**
 * Slices of one server's window, each measured between other servers' slices, as one sample:
 * requests, CPU and time added up; p50 and p99 the medians of the slices' (autocannon's are per run).
 */
export function combine (slices: Sample[]): Sample {
  const sum = (pick: (raw: Sample['raw']) => number): number => slices.reduce((total, s) => total + pick(s.raw), 0)
  return fromRaw({
    requests: sum((r) => r.requests),
    seconds: sum((r) => r.seconds),
    cpuSeconds: sum((r) => r.cpuSeconds),
    wallSeconds: sum((r) => r.wallSeconds),
    coreBusySeconds: sum((r) => r.coreBusySeconds)
  }, median(slices.map((s) => s.p50)), median(slices.map((s) => s.p99)), slices.reduce((total, s) => total + s.stolenMs, 0))
}

/** One request: the right status and body size before timing anything. */
export async function check (url: string, payload: Payload, token: string): Promise<void> {
  const res = await request(url + payload.path, {
    method: payload.method,
    headers: headers(payload, token),
    ...(payload.body ? { body: payload.body } : {})
  })
  const body = Buffer.from(await res.body.arrayBuffer())
  if (res.statusCode !== 200 || body.length !== payload.expectBytes) {
    throw new Error(`${url}${payload.path}: ${res.statusCode}, ${body.length} bytes (expected 200, ${payload.expectBytes}): ${body.subarray(0, 300).toString()}`)
  }
}
