import cluster, { type Worker } from 'node:cluster'
import type { FastifyBaseLogger } from 'fastify'
import { StartError } from '../net/listen'
import type { Readiness } from './readiness'
import { restartDelayMs, STABLE_AFTER_MS } from './restart-backoff'
import { isMessage, WORKER_SLOT_ENV, type FromWorker, type WorkerMetrics } from './worker-messages'

/** Past the workers' own grace period, the primary kills what is left. */
const KILL_MARGIN_MS = 2_000

interface Slot {
  /** 1..count; a restarted worker takes the slot (and the `worker` metric label) of the one it replaces. */
  readonly n: number
  worker?: Worker
  serving: boolean
  startedAt: number
  deathsInARow: number
  /** The reason the slot's last worker gave for failing to start. */
  failure?: string
  restartTimer?: NodeJS.Timeout
}

type Question = 'readiness' | 'metrics'
type Answer<Q extends Question> = Q extends 'readiness' ? Readiness : WorkerMetrics

export interface WorkerPoolOptions {
  count: number
  /** The config file's text and name, handed to every worker (restarted ones too). */
  configText: string
  source: string
  log: FastifyBaseLogger
  onRestart?: (slot: number) => void
}

/**
 * The primary process's workers (node:cluster): starts `count` of them, starts another in the slot
 * of one that dies (after a backoff that grows while they keep dying), asks them questions over
 * IPC, and stops them.
 */
export class WorkerPool {
  private readonly slots: Slot[]
  private stopping = false
  private started = false
  private startWaiter?: { resolve: () => void, reject: (err: Error) => void }
  private nextQuestion = 0
  private readonly pending = new Map<number, (answer: unknown) => void>()

  constructor (private readonly options: WorkerPoolOptions) {
    this.slots = Array.from({ length: options.count }, (_, i) => ({ n: i + 1, serving: false, startedAt: 0, deathsInARow: 0 }))
    // NaN and Infinity (prom-client's gauges before their first sample) survive structured clone, not JSON.
    cluster.setupPrimary({ serialization: 'advanced' })
  }

  get size (): number {
    return this.slots.length
  }

  get serving (): number {
    return this.slots.filter((s) => s.serving).length
  }

  get draining (): boolean {
    return this.stopping
  }

  /** Resolves once every worker listens; rejects with the first one's reason for failing. */
  start (): Promise<void> {
    return new Promise((resolve, reject) => {
      this.startWaiter = { resolve, reject }
      for (const slot of this.slots) this.fork(slot)
    })
  }

  /** Asks every serving worker; a worker that has not answered within `timeoutMs` has no answer. */
  async ask<Q extends Question> (question: Q, timeoutMs: number): Promise<Array<{ worker: number, answer?: Answer<Q> }>> {
    return await Promise.all(this.slots.filter((s) => s.serving && s.worker?.isConnected() === true).map(async (slot) => {
      const id = this.nextQuestion++
      const answer = await new Promise<Answer<Q> | undefined>((resolve) => {
        const timer = setTimeout(() => { this.pending.delete(id); resolve(undefined) }, timeoutMs)
        this.pending.set(id, (a) => { clearTimeout(timer); this.pending.delete(id); resolve(a as Answer<Q>) })
        slot.worker!.send({ type: `obo-gateway:${question}?`, id })
      })
      return { worker: slot.n, ...(answer === undefined ? {} : { answer }) }
    }))
  }

  /**
   * Workers that serve finish their in-flight requests and exit; the others are stopped at once.
   * True when every serving worker exited with 0 within the grace period (killed past it otherwise).
   */
  async stop (graceMs: number): Promise<boolean> {
    this.stopping = true
    const live: Array<{ slot: Slot, worker: Worker }> = []
    for (const slot of this.slots) {
      clearTimeout(slot.restartTimer)
      if (slot.worker !== undefined) live.push({ slot, worker: slot.worker })
    }
    const exits = live.map(({ slot, worker }) => {
      // A worker still starting has installed no message handler yet, and serves nothing: any end will do.
      const asked = slot.serving && worker.isConnected()
      const exited = new Promise<boolean>((resolve) => {
        if (worker.isDead()) resolve(!asked || worker.process.exitCode === 0)
        else worker.once('exit', (code) => { resolve(!asked || code === 0) })
      })
      if (asked) worker.send({ type: 'obo-gateway:shutdown' })
      else worker.process.kill('SIGTERM')
      return exited
    })
    const killer = setTimeout(() => {
      for (const { slot, worker } of live) {
        if (worker.isDead()) continue
        this.options.log.error({ worker: slot.n, workerPid: worker.process.pid }, 'worker still running past the grace period: killing it')
        worker.process.kill('SIGKILL')
      }
    }, graceMs + KILL_MARGIN_MS)
    const clean = await Promise.all(exits)
    clearTimeout(killer)
    return clean.every(Boolean)
  }

  private fork (slot: Slot): void {
    const worker = cluster.fork({ [WORKER_SLOT_ENV]: String(slot.n) })
    Object.assign(slot, { worker, serving: false, startedAt: Date.now(), failure: undefined })
    worker.on('message', (message: unknown) => { this.onMessage(slot, worker, message) })
    worker.once('exit', (code, signal) => { this.onExit(slot, worker, code, signal) })
    // A message sent as the channel closes (the worker dying) fails with an 'error' event, which
    // unhandled would end the primary; the exit that follows is what counts.
    worker.on('error', (err) => { this.options.log.warn({ worker: slot.n, err }, 'message to a worker failed') })
  }

  private onMessage (slot: Slot, worker: Worker, message: unknown): void {
    if (isMessage<FromWorker>(message, 'obo-gateway:config?')) {
      worker.send({ type: 'obo-gateway:config', text: this.options.configText, source: this.options.source })
    } else if (isMessage<FromWorker>(message, 'obo-gateway:listening')) {
      slot.serving = true
      this.options.log.info({ worker: slot.n, workerPid: worker.process.pid }, 'worker serving')
      if (!this.started && this.slots.every((s) => s.serving)) {
        this.started = true
        this.startWaiter?.resolve()
      }
    } else if (isMessage<Extract<FromWorker, { type: 'obo-gateway:failed' }>>(message, 'obo-gateway:failed')) {
      slot.failure = message.message
    } else if (isMessage<Extract<FromWorker, { type: 'obo-gateway:readiness' }>>(message, 'obo-gateway:readiness')) {
      this.pending.get(message.id)?.(message.readiness)
    } else if (isMessage<Extract<FromWorker, { type: 'obo-gateway:metrics' }>>(message, 'obo-gateway:metrics')) {
      this.pending.get(message.id)?.(message.metrics)
    }
  }

  private onExit (slot: Slot, worker: Worker, code: number | null, signal: string | null): void {
    if (slot.worker === worker) Object.assign(slot, { worker: undefined, serving: false })
    if (this.stopping) return
    const how = signal === null ? `exit code ${String(code)}` : `signal ${signal}`
    if (!this.started) {
      // A worker that cannot start now will not start later either (port taken, credential unreadable).
      const reason = new StartError(slot.failure ?? `worker ${slot.n} exited (${how}) before it listened`)
      this.stop(0).then(() => this.startWaiter?.reject(reason), () => {})
      return
    }
    slot.deathsInARow = Date.now() - slot.startedAt >= STABLE_AFTER_MS ? 1 : slot.deathsInARow + 1
    const delayMs = restartDelayMs(slot.deathsInARow)
    this.options.onRestart?.(slot.n)
    this.options.log.warn({ worker: slot.n, workerPid: worker.process.pid, exit: how, ...(slot.failure === undefined ? {} : { reason: slot.failure }), restartInMs: delayMs },
      `worker ${slot.n} exited unexpectedly (${how}); starting another in ${delayMs} ms`)
    slot.restartTimer = setTimeout(() => {
      slot.restartTimer = undefined
      if (!this.stopping) this.fork(slot)
    }, delayMs)
  }
}
