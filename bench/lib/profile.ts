/**
 * Reading V8 CPU and sampling heap profiles of one server, per request: self time by function and
 * by area (node core, each package, project code), inclusive time of project code, the nearest
 * non-core caller, and the difference between two servers.
 */
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'

interface ProfileNode { id: number, callFrame: { functionName: string, url: string, lineNumber: number }, children?: number[] }
interface Profile { nodes: ProfileNode[], samples: number[], timeDeltas: number[], startTime: number, endTime: number }

export interface ProfileSummary {
  name: string
  busyUsPerRequest: number
  /** µs per request. */
  self: Map<string, number>
  area: Map<string, number>
  inclusive: Map<string, number>
  callers: Map<string, Map<string, number>>
}

/**
 * Per request: self time by function and by where the code lives, inclusive time of project code
 * (and of the `inclusiveAreas` packages, e.g. '@azure/msal-node'), callers.
 */
export function summariseProfile (name: string, file: string, requests: number, inclusiveAreas: string[] = []): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const parent = new Map<number, number>()
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id)
  const add = (map: Map<string, number>, key: string, us: number): void => { map.set(key, (map.get(key) ?? 0) + us / requests) }
  // Starting and stopping the profiler over the inspector lands in the profile too (stopping
  // serialises it, which on a loaded machine took longer than ten µs per request): not the server's work.
  const profilerAt = (id: number): boolean => {
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) if (byId.get(at)!.callFrame.url === CONTROL_URL) return true
    return false
  }
  const summary: ProfileSummary = { name, busyUsPerRequest: 0, self: new Map(), area: new Map(), inclusive: new Map(), callers: new Map() }
  for (let i = 0; i < profile.samples.length; i++) {
    const us = profile.timeDeltas[i] ?? 0
    const leaf = byId.get(profile.samples[i]!)!
    if (leaf.callFrame.functionName === '(idle)' || profilerAt(leaf.id)) continue
    summary.busyUsPerRequest += us / requests
    const key = frameKey(leaf.callFrame)
    add(summary.self, key, us)
    add(summary.area, areaOf(leaf.callFrame), us)
    // The nearest caller that is not node core or the VM: who asked for this work.
    let up = parent.get(leaf.id)
    while (up !== undefined && /^(node core|native)/.test(areaOf(byId.get(up)!.callFrame))) up = parent.get(up)
    const callers = summary.callers.get(key) ?? new Map<string, number>()
    add(callers, up === undefined ? '(root)' : frameKey(byId.get(up)!.callFrame), us)
    summary.callers.set(key, callers)
    const seen = new Set<string>()
    for (let id: number | undefined = leaf.id; id !== undefined; id = parent.get(id)) {
      const frame = byId.get(id)!.callFrame
      const area = areaOf(frame)
      if (area !== PROJECT && !inclusiveAreas.includes(area)) continue
      const k = frameKey(frame)
      if (seen.has(k)) continue
      seen.add(k)
      add(summary.inclusive, k, us)
    }
  }
  return summary
}

const top = (map: Map<string, number>, n: number): Array<[string, number]> => [...map].sort((a, b) => b[1] - a[1]).slice(0, n)
const us = (value: number): string => `${value.toFixed(1).padStart(6)} µs`

export function printSummary (s: ProfileSummary, inclusiveTop = 20): void {
  const share = (value: number): string => `${((value / s.busyUsPerRequest) * 100).toFixed(1).padStart(5)}%`
  console.log('self time by area, per request (top 10):')
  for (const [area, value] of top(s.area, 10)) console.log(`  ${us(value)} ${share(value)}  ${area}`)
  console.log('top 25 functions by self time, per request:')
  for (const [key, value] of top(s.self, 25)) console.log(`  ${us(value)} ${share(value)}  ${key}`)
  if (s.inclusive.size > 0) {
    console.log(`inclusive time, per request (top ${inclusiveTop}):`)
    for (const [key, value] of top(s.inclusive, inclusiveTop)) console.log(`  ${us(value)} ${share(value)}  ${key}`)
  }
}

/** Where the gateway's extra CPU per request goes, function by function, against the plain proxy. */
export function printDifference (gateway: ProfileSummary, plain: ProfileSummary): void {
  console.log(`\n### ${gateway.name} minus ${plain.name}: ${us(gateway.busyUsPerRequest - plain.busyUsPerRequest).trim()} more busy CPU per request`)
  const diff = (a: Map<string, number>, b: Map<string, number>): Map<string, number> =>
    new Map([...new Set([...a.keys(), ...b.keys()])].map((k) => [k, (a.get(k) ?? 0) - (b.get(k) ?? 0)]))
  console.log('by area (largest increases):')
  for (const [area, value] of top(diff(gateway.area, plain.area), 10)) console.log(`  ${us(value)}  ${area}`)
  console.log('by function, self time (largest increases), with the gateway\'s nearest non-core callers:')
  for (const [key, value] of top(diff(gateway.self, plain.self), 25)) {
    const callers = top(gateway.callers.get(key) ?? new Map<string, number>(), 3).map(([c, v]) => `${c} ${v.toFixed(1)}`).join('; ')
    console.log(`  ${us(value)}  ${key}${callers === '' ? '' : `   <- ${callers}`}`)
  }
}

interface HeapNode { callFrame: ProfileNode['callFrame'], selfSize: number, children: HeapNode[] }

/** Bytes allocated per request, by allocating function (sampled), and by the nearest project or package caller. */
export function printAllocations (file: string, requests: number): void {
  const { head } = JSON.parse(readFileSync(file, 'utf8')) as { head: HeapNode }
  const self = new Map<string, number>()
  let total = 0
  const walk = (node: HeapNode): void => {
    if (node.selfSize > 0) {
      const key = frameKey(node.callFrame)
      self.set(key, (self.get(key) ?? 0) + node.selfSize / requests)
      total += node.selfSize / requests
    }
    for (const child of node.children) walk(child)
  }
  walk(head)
  console.log(`allocation (sampling heap profiler, objects collected since included): ${Math.round(total).toLocaleString('en-US')} bytes per request; top 15 allocating functions:`)
  for (const [key, bytes] of top(self, 15)) console.log(`  ${Math.round(bytes).toString().padStart(6)} B  ${key}`)
}

function frameKey (frame: ProfileNode['callFrame']): string {
  const name = frame.functionName || '(anonymous)'
  if (frame.url === '') return name
  // Line numbers of files tsx compiled are not the source's: name the file only.
  const line = areaOf(frame) === PROJECT ? '' : `:${frame.lineNumber + 1}`
  return `${name} ${shortUrl(frame.url)}${line}`
}

const PROJECT = 'project code (src, plugins, routes, bench)'

/** The module that drives the profiler in the server's process (bench/lib/control.ts). */
const CONTROL_URL = pathToFileURL(resolve(__dirname, 'control.ts')).href

/** The repository's root as profile URLs spell it, wherever the checkout is. */
const ROOT = pathToFileURL(resolve(__dirname, '../..')).href + '/'

function shortUrl (url: string): string {
  const nm = url.lastIndexOf('node_modules/')
  if (nm !== -1) return url.slice(nm + 'node_modules/'.length)
  if (url.startsWith(ROOT)) return url.slice(ROOT.length)
  return url.replace(/^file:\/\//, '')
}

function areaOf (frame: ProfileNode['callFrame']): string {
  const { url, functionName } = frame
  if (url === '') return functionName === '(garbage collector)' ? 'GC' : `native ${functionName}`
  if (url.startsWith('node:')) return 'node core (http, net, streams, events)'
  if (url.startsWith('wasm:')) return 'undici (llhttp, wasm)'
  const nm = url.lastIndexOf('node_modules/')
  if (nm !== -1) {
    const rest = url.slice(nm + 'node_modules/'.length).split('/')
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!
  }
  return PROJECT
}
