import { loadavg } from 'node:os'
import { median } from './report'

/**
 * A case measured in CPU time of this process (user + system), not wall time: on a machine shared
 * with other work, preemption stretches wall time but not the CPU a case used.
 */
export interface CpuCase {
  name: string
  /** Runs one batch of operations and returns how many it ran. */
  batch: () => Promise<number> | number
}

export interface CaseRounds { name: string, usPerOp: number[] }

/** µs of this process's CPU per operation for one batch. */
export async function cpuPerOp (batch: CpuCase['batch']): Promise<number> {
  const start = process.cpuUsage()
  const ops = await batch()
  const used = process.cpuUsage(start)
  return (used.user + used.system) / ops
}

/** Every case once per round, in the same order, so the machine's noise of a round hits them all. */
export async function interleave (cases: CpuCase[], rounds: number, onRound?: (round: number, figures: number[]) => void): Promise<CaseRounds[]> {
  const results = cases.map((c) => ({ name: c.name, usPerOp: [] as number[] }))
  for (let round = 1; round <= rounds; round++) {
    const figures: number[] = []
    for (const [index, c] of cases.entries()) {
      const us = await cpuPerOp(c.batch)
      results[index]!.usPerOp.push(us)
      figures.push(us)
    }
    onRound?.(round, figures)
  }
  return results
}

/** Per round subject ÷ baseline, then the median and range of those ratios. */
export function roundRatios (subject: number[], baseline: number[]): { each: number[], median: number, min: number, max: number } {
  const each = subject.map((s, i) => s / baseline[i]!)
  return { each, median: median(each), min: Math.min(...each), max: Math.max(...each) }
}

export function formatRatios (r: ReturnType<typeof roundRatios>): string {
  return `${r.each.map((x) => x.toFixed(2)).join(', ')} (median ${r.median.toFixed(2)}; ${r.min.toFixed(2)}–${r.max.toFixed(2)})`
}

/** The load average line every run states, so a reader knows how busy the machine was. */
export function loadLine (): string {
  return `load average ${loadavg().map((l) => l.toFixed(2)).join(', ')}`
}
