import autocannon from 'autocannon'
import { request } from 'undici'
import { cpuSeconds } from './cpu'
import type { Payload } from './payloads'

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

/** A warm-up, then a measured window with the server's CPU time read from /proc around it. */
export async function measure (server: { url: string, pid: number }, payload: Payload, token: string, warmupSeconds: number, seconds: number): Promise<Sample> {
  if (warmupSeconds > 0) await load(server.url, payload, token, warmupSeconds)
  const cpuBefore = cpuSeconds(server.pid)
  const wallBefore = process.hrtime.bigint()
  const result = await load(server.url, payload, token, seconds)
  const cpuAfter = cpuSeconds(server.pid)
  const wall = Number(process.hrtime.bigint() - wallBefore) / 1e9
  if (result.errors > 0 || result.timeouts > 0 || result.non2xx > 0) {
    throw new Error(`${server.url}${payload.path}: ${result.errors} errors, ${result.timeouts} timeouts, ${result.non2xx} non-2xx answers`)
  }
  const total = result.requests.total
  return {
    rps: total / result.duration,
    p50: result.latency.p50,
    p99: result.latency.p99,
    cpuUsPerReq: ((cpuAfter - cpuBefore) * 1e6) / total,
    coreShare: (cpuAfter - cpuBefore) / wall
  }
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
