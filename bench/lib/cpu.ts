import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'

/**
 * Cores for a 2-core machine: the server under test gets SUT_CPU to itself while it is measured;
 * everything else (the driver with the load generator and the emulator, the upstream, the servers
 * not being measured) stays on LOAD_CPU.
 */
export const LOAD_CPU = '0'
export const SUT_CPU = '1'

/** Whether taskset works here; without it nothing is pinned and the run says so. */
export const pinning = spawnSync('taskset', ['-c', LOAD_CPU, 'true']).status === 0

/** The command line that starts `command` on `cpu` (unchanged when pinning is off). */
export function onCpu (cpu: string, command: string, args: string[]): [string, string[]] {
  return pinning ? ['taskset', ['-c', cpu, command, ...args]] : [command, args]
}

/** Moves every thread of a running process to `cpu`. */
export function pin (pid: number, cpu: string): void {
  if (pinning) spawnSync('taskset', ['-a', '-p', '-c', cpu, String(pid)], { stdio: 'ignore' })
}

/** Runs `during` with process `pid` (all its threads) alone on SUT_CPU, and moves it back after. */
export async function aloneOnSutCpu<T> (pid: number, during: () => Promise<T>): Promise<T> {
  pin(pid, SUT_CPU)
  try {
    return await during()
  } finally {
    pin(pid, LOAD_CPU)
  }
}

/** CPU seconds (user + system, all threads) a process has used so far, from /proc. */
export function cpuSeconds (pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  // Fields 14 and 15 (utime, stime) of proc(5); the slice starts at field 3.
  return (Number(fields[11]) + Number(fields[12])) / 100
}

/**
 * Seconds one core has spent busy (anyone's work, interrupts included) and stolen (the hypervisor
 * running something else on it) since boot, from /proc/stat.
 */
export function coreSeconds (cpu: string): { busy: number, steal: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n').find((l) => l.startsWith(`cpu${cpu} `))
  if (line === undefined) return { busy: 0, steal: 0 }
  // user nice system idle iowait irq softirq steal, in USER_HZ (100 a second) ticks
  const [user, nice, system, , , irq, softirq, steal] = line.split(/\s+/).slice(1).map(Number) as number[]
  return { busy: (user! + nice! + system! + irq! + softirq!) / 100, steal: steal! / 100 }
}
