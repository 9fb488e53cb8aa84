/**
 * Forwarding throughput (issues #5, #15): the gateway against a plain @fastify/reply-from proxy and
 * a one-worker nginx in front of the same upstream, and against the upstream called directly, in
 * one run, on loopback, 50 connections.
 *
 *   npm run bench:proxy                        (3 rounds, 2 s warm-up + 8 s per case)
 *   npm run bench:proxy -- --rounds 1 --seconds 5 --profile
 *   npm run bench:proxy -- --case small         (only the cases whose name contains "small")
 *   npm run bench:proxy -- --log                (the gateway logs one line per request, as `npm start` does)
 *
 * Through the gateway every request is a validation cache hit and a token cache hit: the same
 * real user token (Alice, signed in with msal-node against the in-process Entra ID emulator) is
 * sent every time, and the run checks at the end that the gateway asked Entra for exactly one
 * downstream token.
 *
 * Processes and cores (the machine has 2): this process runs autocannon (programmatic API) and the
 * emulator, which is idle once the gateway's caches are warm; the upstream (plain node:http), the
 * gateway and the reply-from proxy each run in their own child process (bench/lib/server-process.ts),
 * nginx in its own. With taskset, everything starts on CPU 0; for each measured case the server
 * under test, and only it, is moved to CPU 1 (in the direct case that is the upstream) and moved
 * back afterwards, so it has a core to itself and the load generator and the upstream share the
 * other. Its CPU time per request, and the share of its core it used, are read from /proc, with
 * what other processes and the hypervisor took from that core meanwhile. Within a round the servers
 * take turns: each case's measured seconds are cut into --slices slices per server (default 4),
 * taken in alternating order, so that a disturbance lasting a few seconds does not fall on one
 * server's window only; a round's figure for a server is the sum of its slices.
 *
 * --profile adds one more window of the first case run (small JSON, or what --case picks) per
 * node proxy with the V8 CPU profiler running in that proxy's process (what `node --cpu-prof`
 * records, but only over the measured window) and prints self time by area and the top self-time
 * functions, and for the gateway the inclusive time of its own functions.
 */
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import type autocannon from 'autocannon'
import { startEmulator } from '../src/emulator'
import { devGatewayIdentity } from '../src/dev/dev-identity'
import { profiled, startNodeServer, type NodeServer, type Server } from './lib/children'
import { PROFILE_SAMPLING_US } from './lib/control'
import { aloneOnSutCpu, LOAD_CPU, pin, pinning, SUT_CPU } from './lib/cpu'
import { check, combine, CONNECTIONS, load, measure, type Sample } from './lib/load'
import { NGINX, nginxInstalled, nginxVersion, startNginx } from './lib/nginx'
import { PAYLOADS, type Payload } from './lib/payloads'
import { printAllocations, printDifference, printSummary, summariseProfile, type ProfileSummary } from './lib/profile'
import { printResults, roundLine, Samples } from './lib/report'
import { SeedClients } from './lib/sign-in'
import { SAMPLE_USER_ROUTE } from './lib/sample-route'

function options (): { rounds: number, seconds: number, slices: number, warmup: number, profile: boolean, case: string, log: boolean } {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      rounds: { type: 'string', default: '3' },
      seconds: { type: 'string', default: '8' },
      // Each case's measured seconds in this many turns per server, interleaved with the others'
      slices: { type: 'string', default: '4' },
      warmup: { type: 'string', default: '2' },
      profile: { type: 'boolean', default: false },
      // Only the cases whose name contains this text, e.g. --case small
      case: { type: 'string', default: '' },
      // The gateway with the logger `npm start` gives it (info: a line per request) instead of none
      log: { type: 'boolean', default: false }
    }
  })
  return {
    rounds: Math.min(10, Math.max(1, Number(values.rounds))),
    seconds: Math.min(60, Math.max(1, Number(values.seconds))),
    slices: Math.min(20, Math.max(1, Math.round(Number(values.slices)))),
    warmup: Math.min(30, Math.max(0, Number(values.warmup))),
    profile: values.profile,
    case: values.case,
    log: values.log
  }
}

async function main (): Promise<void> {
  const opts = options()
  pin(process.pid, LOAD_CPU)

  const emulator = await startEmulator({ dataDir: mkdtempSync(join(tmpdir(), 'obo-bench-')) })
  const clients = new SeedClients(emulator)
  const servers: Server[] = []
  try {
    const token = await clients.aliceToken()
    const upstream = await startNodeServer('upstream', 'upstream', [], LOAD_CPU)
    servers.push(upstream)
    const gatewayConfig = JSON.stringify({
      identity: devGatewayIdentity(emulator),
      routes: [{ prefix: '/api', upstream: upstream.url, user: SAMPLE_USER_ROUTE }]
    })
    const gateway = await startNodeServer('gateway', 'gateway', [gatewayConfig, ...(opts.log ? ['log'] : [])], LOAD_CPU)
    servers.push(gateway)
    const plain = await startNodeServer('reply-from', 'reply-from', [upstream.url], LOAD_CPU)
    servers.push(plain)
    let nginx: Server | undefined
    if (nginxInstalled()) {
      nginx = await startNginx(upstream.url, LOAD_CPU)
      servers.push(nginx)
    } else {
      console.error(`${NGINX} not found: skipping the nginx reference (apt-get install -y nginx to add it)`)
    }
    const oboCalls = (): number => emulator.records.tokenRequests().filter((r) => r.grantType.includes('jwt-bearer')).length

    const targets: Array<{ name: string, server: Server }> = [
      { name: 'gateway', server: gateway },
      { name: 'reply-from', server: plain },
      ...(nginx === undefined ? [] : [{ name: 'nginx', server: nginx }]),
      { name: 'direct', server: upstream }
    ]
    const references = ['reply-from', ...(nginx === undefined ? [] : ['nginx']), 'direct']
    const payloads = PAYLOADS.filter((p) => p.name.includes(opts.case))
    for (const payload of payloads) for (const target of targets) await check(target.server.url, payload, token)
    const oboAfterWarm = oboCalls()

    console.error(`node ${process.version}, ${process.platform}/${process.arch}, ${opts.rounds} round(s) of ${opts.warmup} s warm-up + ${opts.seconds} s per case in ${opts.slices} interleaved slices, ${CONNECTIONS} connections, ` +
      `pinning ${pinning ? `on (server under test alone on CPU ${SUT_CPU}, the rest on CPU ${LOAD_CPU})` : 'off (no taskset)'}`)
    const samples = new Samples()
    const started = Date.now()
    for (let round = 1; round <= opts.rounds; round++) {
      for (const payload of payloads) {
        if (opts.warmup > 0) {
          for (const target of targets) {
            await aloneOnSutCpu(target.server.pid, async () => { await load(target.server.url, payload, token, opts.warmup) })
          }
        }
        // The servers take turns, slice by slice, in alternating order (A B C D, D C B A, ...): a
        // disturbance of a few seconds, or a drift over the round, falls on every server alike,
        // instead of on whichever one had the core at the time.
        const slices = new Map<string, Sample[]>(targets.map((t) => [t.name, []]))
        for (let slice = 0; slice < opts.slices; slice++) {
          for (const target of slice % 2 === 0 ? targets : [...targets].reverse()) {
            const sample = await aloneOnSutCpu(target.server.pid, async () => await measure(target.server, payload, token, opts.seconds / opts.slices))
            slices.get(target.name)!.push(sample)
          }
        }
        for (const target of targets) {
          const sample = combine(slices.get(target.name)!)
          samples.add(payload.name, target.name, sample)
          console.error(roundLine(round, payload.name, target.name, sample))
        }
      }
    }
    const oboDuringRun = oboCalls() - oboAfterWarm

    const version = (name: string): string => (require(`${name}/package.json`) as { version: string }).version
    console.log(`Node ${process.version}, ${process.platform}/${process.arch}, fastify ${version('fastify')}, @fastify/reply-from ${version('@fastify/reply-from')}, undici ${version('undici')}, autocannon ${version('autocannon')}` +
      `${nginx === undefined ? '' : `, ${nginxVersion()}`}; ${opts.rounds} round(s), each case ${opts.warmup} s warm-up + ${opts.seconds} s measured in ${opts.slices} slices per server taken in turns, ${CONNECTIONS} connections, ` +
      `${pinning ? 'each server under test alone on one core' : 'no pinning'}, gateway ${opts.log ? 'logging a line per request (info, to /dev/null)' : 'without a logger'}; medians of the rounds; ${Math.round((Date.now() - started) / 1000)} s in all\n`)
    printResults(samples, payloads, targets.map((t) => t.name), references, opts.rounds)
    console.log(`\nDownstream token requests (OBO) the gateway made during the timed run: ${oboDuringRun} (0 = every request was a token cache hit)`)

    if (opts.profile) await profile([gateway, plain], payloads[0]!, token, opts.warmup, opts.seconds)
  } finally {
    for (const server of servers.reverse()) await server.stop()
    await clients.close()
    await emulator.close()
  }
}

/** The first case run (small JSON unless --case says otherwise) once more per node proxy, alone on its core, under the CPU and then the heap profiler. */
async function profile (proxies: NodeServer[], payload: Payload, token: string, warmup: number, seconds: number): Promise<void> {
  const summaries: ProfileSummary[] = []
  for (const proxy of proxies) {
    await aloneOnSutCpu(proxy.pid, async () => {
      const dir = mkdtempSync(join(tmpdir(), `obo-prof-${proxy.name}-`))
      const cpuFile = join(dir, 'case.cpuprofile')
      await load(proxy.url, payload, token, warmup)
      let result: autocannon.Result | undefined
      const gcStats = await profiled(proxy, 'cpu', cpuFile, async () => { result = await load(proxy.url, payload, token, seconds) })
      const requests = result!.requests.total
      const summary = summariseProfile(proxy.name, cpuFile, requests)
      summaries.push(summary)
      console.log(`\n### ${proxy.name} under the V8 sampling profiler (${PROFILE_SAMPLING_US} µs interval), ${payload.name}, ${seconds} s: ` +
        `${Math.round(requests / result!.duration)} req/s, ${summary.busyUsPerRequest.toFixed(0)} µs busy CPU per request\nprofile: ${cpuFile}`)
      console.log(`garbage collection while profiling: ${Object.entries(gcStats).map(([kind, { count, ms }]) => `${kind} ${count}× ${ms.toFixed(0)} ms`).join(', ')}`)
      printSummary(summary)
      let allocRequests = 0
      const heapFile = join(dir, 'case.heapprofile')
      await profiled(proxy, 'alloc', heapFile, async () => { allocRequests = (await load(proxy.url, payload, token, Math.min(seconds, 4))).requests.total })
      printAllocations(heapFile, allocRequests)
    })
  }
  printDifference(summaries[0]!, summaries[1]!)
}

main().catch((err: unknown) => { console.error(err); process.exit(1) })
