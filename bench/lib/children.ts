import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import type { ChildReport, ControlMessage, GcStats, ProfileKind } from './control'
import type { LoopStats } from './loop-watch'
import { onCpu } from './cpu'
import { HOST } from './servers'

const START_TIMEOUT_MS = 60_000
const ANSWER_TIMEOUT_MS = 30_000
const STOP_TIMEOUT_MS = 15_000

/** A server the driver started in its own process: what load goes to and whose CPU is read. */
export interface Server {
  name: string
  pid: number
  url: string
  stop: () => Promise<void>
}

/** A server in a node child process (bench/lib/server-process.ts), which can also be profiled. */
export interface NodeServer extends Server { proc: ChildProcess }

/** Starts `server-process.ts <role> [arg]` on `cpu` and waits for the port it listens on. */
export function startNodeServer (name: string, role: string, args: string[], cpu: string): Promise<NodeServer> {
  const [command, argv] = onCpu(cpu, process.execPath, ['--import', 'tsx', join(__dirname, 'server-process.ts'), role, ...args])
  // stdout is only the logged gateway's request log; errors still reach the terminal.
  const proc = spawn(command, argv, { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] })
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { proc.kill(); reject(new Error(`${name} did not start in time`)) }, START_TIMEOUT_MS)
    proc.once('exit', (code) => { clearTimeout(timer); reject(new Error(`${name} exited (${String(code)}) before listening`)) })
    proc.once('message', (message: ChildReport) => {
      clearTimeout(timer)
      proc.removeAllListeners('exit')
      if (typeof message !== 'object' || !('port' in message)) {
        proc.kill()
        reject(new Error(`${name} sent ${JSON.stringify(message)} before its port`))
        return
      }
      resolve({ name, proc, pid: proc.pid!, url: `http://${HOST}:${message.port}`, stop: () => stopNodeServer(proc) })
    })
  })
}

async function stopNodeServer (proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null) return
  const exited = new Promise<void>((resolve) => proc.once('exit', () => { resolve() }))
  proc.send('close')
  const timer = setTimeout(() => proc.kill('SIGKILL'), STOP_TIMEOUT_MS)
  await exited
  clearTimeout(timer)
}

/** Sends a control message to a child and waits for its answer. */
function ask (server: NodeServer, message: ControlMessage, isAnswer: (reply: ChildReport) => boolean): Promise<ChildReport> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`${server.name} did not answer ${JSON.stringify(message)}`)) }, ANSWER_TIMEOUT_MS)
    const onMessage = (reply: ChildReport): void => {
      if (!isAnswer(reply)) return
      clearTimeout(timer)
      server.proc.off('message', onMessage)
      resolve(reply)
    }
    server.proc.on('message', onMessage)
    server.proc.send(message)
  })
}

/** Runs `during` with a profiler of `kind` recording in the server's process; the profile goes to `to`. */
export async function profiled (server: NodeServer, kind: ProfileKind, to: string, during: () => Promise<void>): Promise<GcStats> {
  await ask(server, { start: kind }, (reply) => reply === 'started')
  await during()
  const reply = await ask(server, { stop: kind, to }, (r) => typeof r === 'object' && 'gc' in r)
  return (reply as { gc: GcStats }).gc
}

/** Runs `during` while the server's process watches its own event loop; returns what stalled it. */
export async function watched<T> (server: NodeServer, during: () => Promise<T>): Promise<{ result: T, loop: LoopStats }> {
  await ask(server, 'watch', (reply) => reply === 'watching')
  const result = await during()
  const reply = await ask(server, 'unwatch', (r) => typeof r === 'object' && 'watched' in r)
  return { result, loop: (reply as { watched: LoopStats }).watched }
}
