import type { Sample } from './load'
import type { Payload } from './payloads'

export function median (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/** Every measured window, by payload and target, in round order. */
export class Samples {
  private readonly byKey = new Map<string, Sample[]>()

  add (payload: string, target: string, sample: Sample): void {
    const key = `${payload}|${target}`
    this.byKey.set(key, [...(this.byKey.get(key) ?? []), sample])
  }

  of (payload: string, target: string): Sample[] {
    return this.byKey.get(`${payload}|${target}`) ?? []
  }

  entries (): Array<[string, Sample[]]> {
    return [...this.byKey]
  }
}

/** The line printed (to stderr) after each measured window. */
export function roundLine (round: number, payload: string, target: string, s: Sample): string {
  return `round ${round} ${payload.padEnd(20)} ${target.padEnd(10)} ${Math.round(s.rps).toString().padStart(7)} req/s  p50 ${s.p50} ms  p99 ${s.p99} ms  ` +
    `${s.cpuUsPerReq.toFixed(0)} µs CPU/req, ${(s.coreShare * 100).toFixed(0)}% of a core; others ${(s.othersShare * 100).toFixed(0)}% of it, ${s.stolenMs.toFixed(0)} ms stolen`
}

/**
 * The medians table, then (with more than one round) the spread and the gateway's ratios round by
 * round against each reference: servers measured back to back in a round share that round's machine
 * state, so on a noisy machine the per-round ratio is the steadier figure.
 */
export function printResults (samples: Samples, payloads: Payload[], targets: string[], references: string[], rounds: number): void {
  const rps = (payload: Payload, target: string): number => median(samples.of(payload.name, target).map((s) => s.rps))
  console.log(`| case | target | req/s | p50 | p99 | CPU of the server under load per request | share of its core | ${references.map((r) => `req/s ÷ ${r}`).join(' | ')} |`)
  console.log(`|---|---|---:|---:|---:|---:|---:|${references.map(() => '---:|').join('')}`)
  for (const payload of payloads) {
    for (const target of targets) {
      const list = samples.of(payload.name, target)
      const ratios = references.map((r) => (rps(payload, target) / rps(payload, r)).toFixed(2))
      console.log(`| ${payload.name} | ${target} | ${Math.round(rps(payload, target)).toLocaleString('en-US')} | ${median(list.map((s) => s.p50))} ms | ${median(list.map((s) => s.p99))} ms | ` +
        `${median(list.map((s) => s.cpuUsPerReq)).toFixed(0)} µs | ${(median(list.map((s) => s.coreShare)) * 100).toFixed(0)}% | ${ratios.join(' | ')} |`)
    }
  }
  if (rounds < 2) return
  console.log('\nSpread of req/s across rounds (min–max):')
  for (const [key, list] of samples.entries()) console.log(`  ${key.replace('|', ', ')}: ${Math.round(Math.min(...list.map((s) => s.rps)))}–${Math.round(Math.max(...list.map((s) => s.rps)))}`)
  for (const reference of references.filter((r) => r !== 'direct')) {
    console.log(`\nGateway ÷ ${reference} req/s, round by round (median; min–max):`)
    for (const payload of payloads) {
      const other = samples.of(payload.name, reference)
      const ratios = samples.of(payload.name, 'gateway').map((s, i) => s.rps / other[i]!.rps)
      console.log(`  ${payload.name}: ${ratios.map((r) => r.toFixed(2)).join(', ')} (median ${median(ratios).toFixed(2)}; ${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)})`)
    }
  }
}
