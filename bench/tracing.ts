/**
 * What tracing costs the gateway's hot path (issue 15): the same proxied request (validation cache
 * hit, token cache hit, small JSON answer) through three gateway processes, in rounds, in one run:
 *
 *   off       this build, no telemetry: the disabled path, one `null` check per step
 *   on        this build, every request traced (always_on) and exported over OTLP/protobuf to a
 *             loopback receiver in this process
 *   baseline  (with --baseline DIR) another build of the gateway, e.g. the commit before tracing:
 *               git archive <commit> | tar -x -C /tmp/base && ln -s "$PWD/node_modules" /tmp/base/
 *               (cd /tmp/base && npx tsc -p tsconfig.build.json)
 *
 *   npm run bench:tracing -- [--baseline /tmp/base] [--rounds 3] [--seconds 5] [--warmup 3]
 *
 * Each gateway runs `dist/src/cli.js` in its own process; this process runs the Entra ID emulator
 * (idle once the caches are warm), the upstream, the OTLP receiver and autocannon. The figure that
 * matters is the gateway's CPU time per request (from /proc while under load), which other load on
 * the machine disturbs less than throughput; both are printed.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { PublicClientApplication } from '@azure/msal-node'
import autocannon from 'autocannon'
import { createMsalNetworkClient } from '../src/acquisition/msal-network-client'
import { DEV_IDS, startEmulator } from '../src/emulator'
import { devGatewayIdentity } from '../src/dev/dev-identity'
import { createHttpsAgent } from '../src/net/https-agent'
import { SAMPLE_USER_ROUTE } from './lib/sample-route'

const HOST = '127.0.0.1'
const CONNECTIONS = 20
const CLK_TCK = 100
const ANSWER = JSON.stringify({ id: 42, name: 'Widget', tags: ['a', 'b', 'c'], price: 9.99 })

const { values } = parseArgs({ options: { baseline: { type: 'string' }, rounds: { type: 'string' }, seconds: { type: 'string' }, warmup: { type: 'string' } } })
const rounds = Number(values.rounds ?? 3)
const seconds = Number(values.seconds ?? 5)
const warmup = Number(values.warmup ?? 3)

async function listen (server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve))
  return (server.address() as AddressInfo).port
}

async function freePort (): Promise<number> {
  const probe = createServer()
  const port = await listen(probe)
  await new Promise((resolve) => probe.close(resolve))
  return port
}

/** Seconds of CPU (user + system) the process has used so far. */
function cpuSeconds (pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK
}

interface Gateway { name: string, url: string, child: ChildProcess }

async function startGateway (name: string, root: string, config: object): Promise<Gateway> {
  const port = await freePort()
  const file = join(mkdtempSync(join(tmpdir(), 'obo-bench-tracing-')), 'gateway.json')
  writeFileSync(file, JSON.stringify({ ...config, server: { host: HOST, port, overload: { maxEventLoopDelayMs: 0 } } }))
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('OTEL_')))
  const child = spawn(process.execPath, [join(root, 'dist/src/cli.js'), '--config', file], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...env, LOG_LEVEL: 'warn', OTEL_TRACES_SAMPLER: 'always_on' } })
  const url = `http://${HOST}:${port}`
  for (let i = 0; ; i++) {
    try {
      await fetch(`${url}/healthz`)
      break
    } catch {
      if (i > 300 || child.exitCode !== null) throw new Error(`${name} did not start`)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
  return { name, url, child }
}

async function measure (gateway: Gateway, headers: Record<string, string>, duration: number): Promise<{ rps: number, cpuUsPerRequest: number, errors: number }> {
  const pid = gateway.child.pid!
  const before = cpuSeconds(pid)
  const result = await autocannon({ url: `${gateway.url}/api/items`, connections: CONNECTIONS, duration, headers })
  const cpu = cpuSeconds(pid) - before
  const requests = result.requests.total
  return { rps: result.requests.average, cpuUsPerRequest: cpu / requests * 1e6, errors: result.non2xx + result.errors }
}

async function main (): Promise<void> {
  const emulator = await startEmulator()
  const upstream = createServer((_req, res) => { res.writeHead(200, { 'content-type': 'application/json' }).end(ANSWER) })
  const upstreamPort = await listen(upstream)
  let spansReceived = 0
  const receiver = createServer((req, res) => {
    req.resume()
    req.on('end', () => { spansReceived++; res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end() })
  })
  const receiverPort = await listen(receiver)

  const agent = createHttpsAgent({ ca: [emulator.caPem] })
  const pca = new PublicClientApplication({
    auth: { clientId: DEV_IDS.devClient.clientId, authority: `${emulator.url}/${DEV_IDS.tenantId}`, knownAuthorities: [new URL(emulator.url).host] },
    system: { networkClient: createMsalNetworkClient(agent) }
  })
  const signedIn = await pca.acquireTokenByUsernamePassword({ username: DEV_IDS.alice.username, password: DEV_IDS.alice.password, scopes: [`${DEV_IDS.gateway.identifierUri}/${DEV_IDS.gateway.scope}`] })
  const headers = { authorization: `Bearer ${signedIn!.accessToken}`, traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' }

  const base = {
    identity: devGatewayIdentity(emulator),
    routes: [{ prefix: '/api', upstream: `http://${HOST}:${upstreamPort}`, user: SAMPLE_USER_ROUTE }]
  }
  const here = resolve(__dirname, '..')
  const gateways = [
    await startGateway('off', here, base),
    await startGateway('on', here, { ...base, telemetry: { otlpEndpoint: `http://${HOST}:${receiverPort}`, protocol: 'http/protobuf' } }),
    ...(values.baseline !== undefined ? [await startGateway('baseline', resolve(values.baseline), base)] : [])
  ]

  console.log(`node ${process.version}, ${rounds} round(s) of ${warmup} s warm-up + ${seconds} s per gateway, ${CONNECTIONS} connections`)
  const figures = new Map<string, Array<{ rps: number, cpuUsPerRequest: number }>>()
  for (let round = 1; round <= rounds; round++) {
    const line: string[] = []
    for (const gateway of gateways) {
      await measure(gateway, headers, warmup)
      const m = await measure(gateway, headers, seconds)
      if (m.errors > 0) throw new Error(`${gateway.name}: ${m.errors} failed requests`)
      figures.set(gateway.name, [...(figures.get(gateway.name) ?? []), m])
      line.push(`${gateway.name} ${Math.round(m.rps)} req/s ${m.cpuUsPerRequest.toFixed(1)} µs CPU/req`)
    }
    const [off, on, baseline] = gateways.map((g) => figures.get(g.name)!.at(-1)!)
    line.push(`on÷off CPU ${(on!.cpuUsPerRequest / off!.cpuUsPerRequest).toFixed(3)}`)
    if (baseline !== undefined) line.push(`off÷baseline CPU ${(off!.cpuUsPerRequest / baseline.cpuUsPerRequest).toFixed(3)} req/s ${(off!.rps / baseline.rps).toFixed(3)}`)
    console.log(`round ${round}: ${line.join(', ')}`)
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
  const cpu = (name: string): number => median(figures.get(name)!.map((m) => m.cpuUsPerRequest))
  const rps = (name: string): number => median(figures.get(name)!.map((m) => m.rps))
  console.log(`medians: ${gateways.map((g) => `${g.name} ${Math.round(rps(g.name))} req/s ${cpu(g.name).toFixed(1)} µs CPU/req`).join(', ')}`)
  console.log(`on ÷ off, CPU per request: ${(cpu('on') / cpu('off')).toFixed(3)}; OTLP exports received: ${spansReceived}`)
  if (values.baseline !== undefined) console.log(`off ÷ baseline: CPU per request ${(cpu('off') / cpu('baseline')).toFixed(3)}, throughput ${(rps('off') / rps('baseline')).toFixed(3)}`)

  for (const gateway of gateways) {
    gateway.child.kill('SIGTERM')
    await once(gateway.child, 'exit')
  }
  await agent.close()
  upstream.close()
  receiver.close()
  await emulator.close()
}

main().catch((err: unknown) => {
  console.error(err)
  process.exitCode = 1
})
