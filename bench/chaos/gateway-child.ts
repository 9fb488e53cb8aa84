import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import type { GatewayStats } from './gateway-process'

export interface LogCounts { lines: number, errors: number, withStack: number, withToken: number, byStatus: Map<number, number> }

export interface GatewayChild {
  url: string
  pid: number
  logs: LogCounts
  stats: () => Promise<GatewayStats>
  stop: () => Promise<void>
}

/** Starts gateway-process.ts (under tsx, as from a clean clone) and counts what it logs. */
export async function startGatewayChild (config: Record<string, unknown>): Promise<GatewayChild> {
  const proc = spawn(process.execPath, ['--import', 'tsx', join(__dirname, 'gateway-process.ts'), JSON.stringify(config)], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] })
  const logs: LogCounts = { lines: 0, errors: 0, withStack: 0, withToken: 0, byStatus: new Map() }
  createInterface({ input: proc.stdout! }).on('line', (line) => {
    logs.lines++
    const level = Number(/"level":(\d+)/.exec(line)?.[1] ?? 0)
    if (level >= 50) logs.errors++
    if (line.includes('"stack"')) logs.withStack++
    // A JWT's header always starts so in base64url: none may appear in a log line.
    if (line.includes('eyJ')) logs.withToken++
    const status = /"status":(\d{3})/.exec(line)?.[1]
    if (status !== undefined) logs.byStatus.set(Number(status), (logs.byStatus.get(Number(status)) ?? 0) + 1)
  })
  const port = await new Promise<number>((resolve, reject) => {
    proc.once('exit', (code) => { reject(new Error(`the gateway exited (${String(code)}) before listening`)) })
    proc.once('message', (m: { port: number }) => { resolve(m.port) })
  })
  proc.removeAllListeners('exit')
  const stats = (): Promise<GatewayStats> => new Promise((resolve) => {
    proc.once('message', (m: GatewayStats) => { resolve(m) })
    proc.send('stats')
  })
  const stop = async (): Promise<void> => {
    if (proc.exitCode !== null) return
    const exited = new Promise<void>((resolve) => proc.once('exit', () => { resolve() }))
    proc.send('close')
    const timer = setTimeout(() => proc.kill('SIGKILL'), 15_000)
    await exited
    clearTimeout(timer)
  }
  return { url: `http://127.0.0.1:${port}`, pid: proc.pid!, logs, stats, stop }
}
