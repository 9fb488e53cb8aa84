import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type AddressInfo, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import type { Test } from 'tap'

/**
 * Throwaway Redis topologies for tests: a Redis Cluster and a Sentinel set, each started from
 * `redis-server` on free loopback ports in a temporary directory, persistence off, every process
 * SIGKILLed and the directory removed when the test ends (also when it fails half-way).
 */

const HOST = '127.0.0.1'
/** Short timeouts so a failover takes seconds, not the defaults' 15 s (cluster) or 30 s (sentinel). */
const CLUSTER_NODE_TIMEOUT_MS = 1000
const SENTINEL_DOWN_AFTER_MS = 1000

export interface RedisProcess {
  port: number
  /** SIGKILL, then resolve once the process is gone. */
  kill: () => Promise<void>
}

export interface RedisCluster {
  /** `redis+cluster://` with every node as a seed. */
  url: string
  nodes: RedisProcess[]
  /** The master nodes' ports, as the cluster sees them now. */
  masters: () => Promise<number[]>
  /** The port of the master serving `key`'s hash slot now. */
  ownerOf: (key: string) => Promise<number>
}

export interface SentinelSet {
  /** `redis+sentinel://` naming the three sentinels and the master set. */
  url: string
  masterName: string
  master: RedisProcess
  replica: RedisProcess
  sentinels: RedisProcess[]
  /** The port the sentinels currently name as master. */
  currentMasterPort: () => Promise<number>
}

/** Why these topologies cannot be started here, or undefined when they can. */
export function redisBinariesProblem (): string | undefined {
  const missing = ['redis-server', 'redis-cli'].filter((bin) => spawnSync(bin, ['--version'], { stdio: 'ignore' }).status !== 0)
  if (missing.length > 0) return `${missing.join(' and ')} not on PATH`
  const version = /v=(\d+)\./.exec(spawnSync('redis-server', ['--version'], { encoding: 'utf8' }).stdout)?.[1]
  // --cluster-port (a bus port picked like the others, not port + 10000) came with Redis 7.
  if (Number(version) < 7) return `redis-server ${version} is older than 7`
  return undefined
}

/** Like needRedis: fails under CI when redis-server or redis-cli is missing, skips visibly elsewhere. */
export function needRedisBinaries (t: Test): boolean {
  const problem = redisBinariesProblem()
  if (problem === undefined) return true
  if (process.env.CI) t.fail(`${problem}; CI must provide Redis 7 or newer (.ci/run installs redis-server)`)
  else t.pass('needs redis-server', { skip: `${problem} (install redis-server 7 or newer to run this)` })
  return false
}

/** Ports the OS handed out, held open together so no two are the same, then released. */
export async function freePorts (count: number): Promise<number[]> {
  const servers: Server[] = []
  try {
    for (let i = 0; i < count; i++) {
      const server = createServer()
      await new Promise<void>((resolve, reject) => { server.once('error', reject).listen(0, HOST, resolve) })
      servers.push(server)
    }
    return servers.map((s) => (s.address() as AddressInfo).port)
  } finally {
    await Promise.all(servers.map(async (s) => await new Promise((resolve) => s.close(resolve))))
  }
}

export async function waitFor (what: string, check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      if (await check()) return
    } catch {
      // not there yet
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(50)
  }
}

/** One short-lived admin connection: never retries, never queues, bounded in time. */
async function withRedis<T> (port: number, run: (redis: Redis) => Promise<T>): Promise<T> {
  const redis = new Redis({ host: HOST, port, lazyConnect: true, connectTimeout: 1000, commandTimeout: 2000, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false })
  redis.on('error', () => {})
  try {
    await redis.connect()
    return await run(redis)
  } finally {
    redis.disconnect()
  }
}

function tempDir (t: Test, name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `obo-${name}-`))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  return dir
}

async function startProcess (t: Test, args: string[], port: number): Promise<RedisProcess> {
  const child: ChildProcess = spawn('redis-server', args, { stdio: 'ignore' })
  const exited = new Promise<void>((resolve) => { child.once('exit', () => { resolve() }) })
  const kill = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await exited
  }
  t.teardown(kill)
  const failedToStart = new Promise<never>((_resolve, reject) => {
    child.once('error', reject)
    child.once('exit', () => { reject(new Error(`redis-server ${args.join(' ')} exited before answering`)) })
  })
  await Promise.race([failedToStart, waitFor(`redis-server on port ${port}`, async () => await withRedis(port, async (r) => await r.ping()) === 'PONG', 5000)])
  return { port, kill }
}

const NO_PERSISTENCE = ['--save', '', '--appendonly', 'no']

/** `masters` masters with `replicasPerMaster` replicas each, created with `redis-cli --cluster create`. */
export async function startRedisCluster (t: Test, { masters = 3, replicasPerMaster = 1 } = {}): Promise<RedisCluster> {
  const dir = tempDir(t, 'redis-cluster')
  const count = masters * (1 + replicasPerMaster)
  // Each node also needs a bus port; picking it explicitly keeps it free too (not port + 10000).
  const ports = await freePorts(count * 2)
  const nodes = await Promise.all(Array.from({ length: count }, async (_, i) => {
    const port = ports[i]!
    return await startProcess(t, [
      '--port', String(port), '--cluster-port', String(ports[count + i]!), '--bind', HOST,
      '--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${port}.conf`),
      '--cluster-node-timeout', String(CLUSTER_NODE_TIMEOUT_MS), '--dir', dir, ...NO_PERSISTENCE
    ], port)
  }))
  const create = spawnSync('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `${HOST}:${n.port}`), '--cluster-replicas', String(replicasPerMaster), '--cluster-yes'], { encoding: 'utf8', timeout: 20_000 })
  if (create.status !== 0) throw new Error(`redis-cli --cluster create failed: ${create.stderr}${create.stdout}`)

  const roles = async (): Promise<Array<{ port: number, master: boolean, linked: boolean }>> => await Promise.all(nodes.map(async (n) => await withRedis(n.port, async (r) => {
    const info = await r.info('replication')
    return { port: n.port, master: /role:master/.test(info), linked: /role:master/.test(info) ? /connected_slaves:[1-9]/.test(info) : /master_link_status:up/.test(info) }
  })))
  await waitFor('the cluster to be ok on every node, each master with its replica in sync', async () => {
    const states = await Promise.all(nodes.map(async (n) => await withRedis(n.port, async (r) => String(await r.cluster('INFO')))))
    if (!states.every((s) => s.includes('cluster_state:ok'))) return false
    const now = await roles()
    return now.filter((r) => r.master).length === masters && now.every((r) => r.linked)
  }, 20_000)

  return {
    url: `redis+cluster://${nodes.map((n) => `${HOST}:${n.port}`).join(',')}`,
    nodes,
    masters: async () => {
      const alive = await Promise.all(nodes.map(async (n) => await withRedis(n.port, async (r) => /role:master/.test(await r.info('replication')) ? n.port : undefined).catch(() => undefined)))
      return alive.filter((p): p is number => p !== undefined)
    },
    ownerOf: async (key) => {
      // Any node that still answers knows the slot map; after a failover the first may be the dead one.
      for (const node of nodes) {
        const owner = await withRedis(node.port, async (r) => {
          const slot = Number(await r.cluster('KEYSLOT', key))
          return (await r.cluster('SLOTS')).find(([from, to]) => slot >= from && slot <= to)?.[2]?.[1]
        }).catch(() => undefined)
        if (owner !== undefined) return owner
      }
      throw new Error(`no live node names an owner for ${key}`)
    }
  }
}

/** A master, one replica and three sentinels (quorum 2) watching them. */
export async function startSentinelSet (t: Test, { masterName = 'gatewaycache' } = {}): Promise<SentinelSet> {
  const dir = tempDir(t, 'redis-sentinel')
  const [masterPort, replicaPort, ...sentinelPorts] = await freePorts(5) as [number, number, number, number, number]
  const master = await startProcess(t, ['--port', String(masterPort), '--bind', HOST, '--dir', dir, ...NO_PERSISTENCE], masterPort)
  const replica = await startProcess(t, ['--port', String(replicaPort), '--bind', HOST, '--dir', dir, '--replicaof', HOST, String(masterPort), ...NO_PERSISTENCE], replicaPort)
  await waitFor('the replica to sync', async () => await withRedis(replicaPort, async (r) => /master_link_status:up/.test(await r.info('replication'))), 10_000)
  const sentinels = await Promise.all(sentinelPorts.map(async (port) => {
    // A sentinel rewrites its configuration file, so each gets its own.
    const file = join(dir, `sentinel-${port}.conf`)
    writeFileSync(file, [
      `port ${port}`, `bind ${HOST}`, `dir ${dir}`,
      `sentinel monitor ${masterName} ${HOST} ${masterPort} 2`,
      `sentinel down-after-milliseconds ${masterName} ${SENTINEL_DOWN_AFTER_MS}`,
      `sentinel failover-timeout ${masterName} 10000`,
      `sentinel parallel-syncs ${masterName} 1`, ''
    ].join('\n'))
    return await startProcess(t, [file, '--sentinel'], port)
  }))
  const ask = async (port: number, ...args: string[]): Promise<unknown> => await withRedis(port, async (r) => await r.call('SENTINEL', ...args))
  await waitFor('every sentinel to see the replica and the two other sentinels', async () => {
    const views = await Promise.all(sentinelPorts.map(async (port) => [await ask(port, 'REPLICAS', masterName), await ask(port, 'SENTINELS', masterName)] as [unknown[], unknown[]]))
    return views.every(([replicas, others]) => replicas.length === 1 && others.length === 2)
  }, 15_000)

  return {
    url: `redis+sentinel://${sentinelPorts.map((p) => `${HOST}:${p}`).join(',')}/${masterName}`,
    masterName,
    master,
    replica,
    sentinels,
    currentMasterPort: async () => {
      const [, port] = await ask(sentinelPorts[0]!, 'GET-MASTER-ADDR-BY-NAME', masterName) as [string, string]
      return Number(port)
    }
  }
}
