import { spawn, type ChildProcess } from 'node:child_process'
import { connect } from 'node:net'
import { sleep } from './rig'

/** A private redis-server on `port` (no persistence), never the shared one: this run kills it. */
export async function startRedis (port: number): Promise<ChildProcess> {
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
  const deadline = Date.now() + 10_000
  while (!(await accepts(port))) {
    if (proc.exitCode !== null) throw new Error(`redis-server exited (${proc.exitCode}) on port ${port}`)
    if (Date.now() > deadline) { proc.kill('SIGKILL'); throw new Error('redis-server did not start in time') }
    await sleep(50)
  }
  return proc
}

export async function killRedis (proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null) return
  const gone = new Promise<void>((resolve) => proc.once('exit', () => { resolve() }))
  proc.kill('SIGKILL')
  await gone
}

function accepts (port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    socket.once('connect', () => { socket.destroy(); resolve(true) })
    socket.once('error', () => { resolve(false) })
  })
}
