import t from 'tap'
import cluster from 'node:cluster'
import { resolve } from 'node:path'
import { StartError } from '../../src/net/listen'
import { WorkerPool } from '../../src/server/worker-pool'

// The pool's supervision with real processes: node:cluster forks a stand-in worker that speaks the
// pool's IPC protocol (test/fixtures/workers/protocol-worker.cjs); the real worker is the CLI's, in
// test/integration/workers.test.ts.
cluster.setupPrimary({ exec: resolve(__dirname, '../fixtures/workers/protocol-worker.cjs'), execArgv: [], args: [] })

interface Line { level: string, fields: Record<string, unknown>, msg: string }

function recordingLog (): { log: never, lines: Line[] } {
  const lines: Line[] = []
  const at = (level: string) => (fields: Record<string, unknown>, msg = '') => { lines.push({ level, fields, msg }) }
  const log = { info: at('info'), warn: at('warn'), error: at('error'), debug: at('debug'), trace: at('trace'), fatal: at('fatal') }
  return { log: { ...log, child: () => log } as never, lines }
}

async function until (what: string, done: () => boolean): Promise<void> {
  for (let i = 0; !done(); i++) {
    if (i > 600) throw new Error(`gave up waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

t.test('starts every slot, asks each, replaces a dead worker in its slot, stops cleanly', async (t) => {
  const { log, lines } = recordingLog()
  const restarted: number[] = []
  const pool = new WorkerPool({ count: 2, configText: '{}', source: 'gateway.json', log, onRestart: (slot) => restarted.push(slot) })
  t.teardown(() => pool.stop(0))
  await pool.start()
  t.equal(pool.serving, 2)
  const answers = await pool.ask('readiness', 10_000)
  t.same(answers.map((a) => a.worker), [1, 2])
  t.match(answers.map((a) => a.answer?.checks.identity?.detail), [/^worker 1 saw \d+$/, /^worker 2 saw \d+$/], 'each worker answered its own question')

  const victim = Object.values(cluster.workers ?? {})[0]!
  const pid = victim.process.pid
  victim.process.kill('SIGKILL')
  await until('the death to be logged', () => lines.some((l) => l.level === 'warn' && l.fields.workerPid === pid))
  const death = lines.find((l) => l.level === 'warn' && l.fields.workerPid === pid)!
  t.match(death.fields, { exit: 'signal SIGKILL', restartInMs: 500 })
  t.match(death.msg, /^worker [12] exited unexpectedly \(signal SIGKILL\); starting another in 500 ms$/)
  t.equal(pool.serving, 1, 'one fewer serving meanwhile')
  await until('a replacement', () => pool.serving === 2)
  t.same(restarted, [death.fields.worker], 'the restart was counted for the dead worker\'s slot')
  t.same((await pool.ask('readiness', 10_000)).map((a) => a.worker), [1, 2], 'the replacement took the same slot')

  t.equal(await pool.stop(5_000), true, 'every worker exited 0 when asked')
  t.equal(pool.draining, true)
  t.equal(pool.serving, 0)
})

t.test('a worker that fails its first start fails the whole start with its reason', async (t) => {
  process.env.FAKE_WORKER = 'fail'
  t.teardown(() => { delete process.env.FAKE_WORKER })
  const { log } = recordingLog()
  const pool = new WorkerPool({ count: 2, configText: '{}', source: 'gateway.json', log })
  await t.rejects(pool.start(), new StartError('cannot listen (config from gateway.json)'))
  t.equal(pool.serving, 0)
})
