/**
 * Where the CPU of the gateway's OBO leg goes (bench:cold-path --breakdown), in the driver's own
 * process against the emulator the bench started: msal-node's acquireTokenOnBehalfOf built as the
 * gateway builds it, the gateway's network client alone with the request msal sends, and bare
 * undici POSTs, each case in turn per round, CPU of this process per operation. New TLS
 * connections are counted per case (every case should reuse its pool's connections).
 */
import type { AuthenticationResult, INetworkModule, NetworkRequestOptions } from '@azure/msal-node'
import { request, type Agent } from 'undici'
import type { ConfidentialClients as ConfidentialClientsType } from '../../src/acquisition/confidential-clients'
import type { GatewayConfig } from '../../src/config/types'
import { startOwnCpuProfile } from './control'
import { SILENT_LOG } from './silent-log'
import { median } from './report'
import { cpuPerOp } from './rounds'

/** The gateway's modules as `npm start` runs them (dist/), like the gateway process of the bench. */
const { ConfidentialClients } = require('../../dist/src/acquisition/confidential-clients') as typeof import('../../src/acquisition/confidential-clients')
const { MsalNetworkClient } = require('../../dist/src/acquisition/msal-network-client') as typeof import('../../src/acquisition/msal-network-client')
const { createHttpsAgent } = require('../../dist/src/net/https-agent') as typeof import('../../src/net/https-agent')
const { resolveConfig } = require('../../dist/src/config/load') as typeof import('../../src/config/load')

export interface BreakdownInput {
  /** The gateway's config file contents (the bench's). */
  rawConfig: string
  caPem: string
  /** The baseline's bare `crypto.verify` of one token (throws on a bad signature). */
  verifyToken: (token: string) => void
  tokens: string[]
  rounds: number
  inFlight: number
  /** The bench's own bare POST of msal-node's OBO form (agent: its keep-alive pool). */
  barePost: (token: string, agent: Agent) => Promise<void>
  /** The form that bare POST sends. */
  bareForm: (token: string) => string
  /** Where to write a CPU profile of one more batch of msal-node OBO calls, or undefined. */
  profileTo?: string | undefined
  profileIntervalUs?: number
  pool: <T>(items: T[], limit: number, op: (item: T) => Promise<void>) => Promise<void>
}

export interface BreakdownCase { name: string, usPerOp: number[], connections: number }

interface Captured { url: string, headers: Record<string, string>, body: string }

/** The token POST msal-node sends, captured once (one real OBO through a recording client). */
async function captureTokenPost (config: GatewayConfig, agent: Agent, token: string): Promise<Captured> {
  const inner = new MsalNetworkClient(agent)
  let captured: Captured | undefined
  const recording: INetworkModule = {
    sendGetRequestAsync: async (url, options) => await inner.sendGetRequestAsync(url, options),
    sendPostRequestAsync: async (url: string, options?: NetworkRequestOptions) => {
      if (url.includes('/token')) captured = { url, headers: { ...options?.headers }, body: options?.body ?? '' }
      return await inner.sendPostRequestAsync(url, options)
    }
  }
  const clients = new ConfidentialClients(config.identity, recording, SILENT_LOG)
  await clients.forTenant(config.identity.tenantId).acquireTokenOnBehalfOf({ oboAssertion: token, scopes: scopesOf(config), skipCache: true })
  if (captured === undefined) throw new Error('msal-node sent no token POST')
  return captured
}

function scopesOf (config: GatewayConfig): string[] {
  const access = config.routes[0]?.user
  if (access === undefined) throw new Error('the bench config has no user route')
  return [...access.scopes]
}

/** One pool per case, counting its new connections. */
function countedAgent (caPem: string): { agent: Agent, connections: () => number } {
  const agent = createHttpsAgent({ ca: [caPem] })
  let connections = 0
  agent.on('connect', () => { connections++ })
  return { agent, connections: () => connections }
}

export async function oboBreakdown (input: BreakdownInput): Promise<BreakdownCase[]> {
  const config = resolveConfig(JSON.parse(input.rawConfig), { source: 'bench' })
  const tenant = config.identity.tenantId
  const scopes = scopesOf(config)
  const users = input.tokens.length

  // (a) as the gateway does it: ConfidentialClients over MsalNetworkClient, skipCache, then removeAccount.
  const msalPool = countedAgent(input.caPem)
  const gatewayClients: ConfidentialClientsType = new ConfidentialClients(config.identity, new MsalNetworkClient(msalPool.agent, { onCall: () => {} }), SILENT_LOG)
  const obo = async (token: string): Promise<AuthenticationResult> => {
    const app = gatewayClients.forTenant(tenant)
    const result = await app.acquireTokenOnBehalfOf({ oboAssertion: token, scopes: [...scopes], skipCache: true })
    if (result === null) throw new Error('msal-node returned no result')
    if (result.account !== null) await app.getTokenCache().removeAccount(result.account)
    return result
  }
  // (a'), one call at a time: CPU of this process split at the network client's edges.
  const phasePool = countedAgent(input.caPem)
  const phaseNetwork = new MsalNetworkClient(phasePool.agent, { onCall: () => {} })
  let marks: number[] = []
  const cpuNow = (): number => { const c = process.cpuUsage(); return c.user + c.system }
  const marking: INetworkModule = {
    sendGetRequestAsync: async (url, options) => await phaseNetwork.sendGetRequestAsync(url, options),
    sendPostRequestAsync: async (url: string, options?: NetworkRequestOptions) => {
      marks.push(cpuNow())
      try {
        return await phaseNetwork.sendPostRequestAsync(url, options)
      } finally {
        marks.push(cpuNow())
      }
    }
  }
  const phaseClients = new ConfidentialClients(config.identity, marking, SILENT_LOG)
  const phased = async (token: string): Promise<number[]> => {
    marks = [cpuNow()]
    const app = phaseClients.forTenant(tenant)
    const result = await app.acquireTokenOnBehalfOf({ oboAssertion: token, scopes: [...scopes], skipCache: true })
    marks.push(cpuNow())
    await app.getTokenCache().removeAccount(result!.account!)
    marks.push(cpuNow())
    if (marks.length !== 5) throw new Error(`expected one token POST, saw ${(marks.length - 3) / 2}`)
    return marks.slice(1).map((m, i) => m - marks[i]!)
  }

  const capturePool = countedAgent(input.caPem)
  const template = await captureTokenPost(config, capturePool.agent, input.tokens[0]!)
  await capturePool.agent.close()
  const bodyFor = (token: string): string => template.body.replace(input.tokens[0]!, token)

  // (b) the gateway's network client alone, with the URL, headers and body msal-node sends.
  const clientPool = countedAgent(input.caPem)
  const networkClient = new MsalNetworkClient(clientPool.agent, { onCall: () => {} })
  // (c) bare undici with that same request; (d) bare undici with the bench's baseline form.
  const msalFormPool = countedAgent(input.caPem)
  const barePool = countedAgent(input.caPem)

  const cases: Array<{ name: string, connections: () => number, op: (token: string) => Promise<void> }> = [
    { name: 'msal-node OBO + removeAccount (the gateway\'s leg)', connections: msalPool.connections, op: async (t) => { await obo(t) } },
    {
      name: 'MsalNetworkClient.sendPostRequestAsync, msal\'s request',
      connections: clientPool.connections,
      op: async (t) => {
        const res = await networkClient.sendPostRequestAsync<{ access_token?: string }>(template.url, { headers: template.headers, body: bodyFor(t) })
        if (res.status !== 200 || typeof res.body.access_token !== 'string') throw new Error(`network client: ${res.status}`)
      }
    },
    {
      name: 'bare undici POST, msal\'s request',
      connections: msalFormPool.connections,
      op: async (t) => {
        const res = await request(template.url, { method: 'POST', dispatcher: msalFormPool.agent, headers: template.headers, body: bodyFor(t) })
        const body = await res.body.json() as { access_token?: string }
        if (res.statusCode !== 200 || typeof body.access_token !== 'string') throw new Error(`token POST: ${res.statusCode}`)
      }
    },
    { name: 'bare undici POST, the baseline\'s form', connections: barePool.connections, op: async (t) => { await input.barePost(t, barePool.agent) } }
  ]
  const verifyCase = {
    name: 'bare crypto.verify',
    batch: (): number => {
      for (const token of input.tokens) input.verifyToken(token)
      return users
    }
  }

  // Warm-up, not measured: authority metadata, connections, and msal-node's code optimised (its
  // first few hundred calls cost up to twice what later ones do).
  for (const c of cases) await input.pool(input.tokens, input.inFlight, c.op)
  const warmConnections = cases.map((c) => c.connections())

  const results: BreakdownCase[] = [...cases.map((c) => ({ name: c.name, usPerOp: [] as number[], connections: 0 })), { name: verifyCase.name, usPerOp: [], connections: 0 }]
  console.log(`\n### Breakdown of the OBO leg (this process, ${input.rounds} interleaved rounds of ${users} tokens, ${input.inFlight} in flight; CPU µs per operation)`)
  console.log(`\nmsal-node's token POST: ${template.body.length} bytes of form (the baseline's: ${input.bareForm(input.tokens[0]!).length}), headers ${Object.keys(template.headers).join(', ')}; URL query ${new URL(template.url).search === '' ? 'none' : `${new URL(template.url).searchParams.size} parameters`}`)
  console.log(`\n| round | ${results.map((r) => r.name).join(' | ')} |`)
  console.log(`|---:|${results.map(() => '---:').join('|')}|`)
  for (let round = 1; round <= input.rounds; round++) {
    const figures: number[] = []
    for (const [i, c] of cases.entries()) {
      const us = await cpuPerOp(async () => { await input.pool(input.tokens, input.inFlight, c.op); return users })
      results[i]!.usPerOp.push(us)
      figures.push(us)
    }
    const verifyUs = await cpuPerOp(verifyCase.batch)
    results[cases.length]!.usPerOp.push(verifyUs)
    figures.push(verifyUs)
    console.log(`| ${round} | ${figures.map((f) => `${f.toFixed(0)} µs`).join(' | ')} |`)
  }
  for (const [i, c] of cases.entries()) results[i]!.connections = c.connections() - warmConnections[i]!
  console.log(`\nnew TLS connections during the measured rounds, per case: ${cases.map((c, i) => `${c.name} ${results[i]!.connections}`).join('; ')} (${warmConnections.join(', ')} during warm-up)`)

  for (const token of input.tokens) await phased(token)
  console.log(`\nThe gateway's leg one call at a time (no other work in this process), split where msal-node calls the network client; µs per call, median of ${users}, per round:`)
  console.log('\n| round | msal-node before the POST | MsalNetworkClient (request, answer, JSON) | msal-node after the answer | removeAccount | total |')
  console.log('|---:|---:|---:|---:|---:|---:|')
  for (let round = 1; round <= input.rounds; round++) {
    const split: number[][] = [[], [], [], []]
    for (const token of input.tokens) (await phased(token)).forEach((us, i) => split[i]!.push(us))
    const medians = split.map(median)
    console.log(`| ${round} | ${medians.map((m) => `${m.toFixed(0)} µs`).join(' | ')} | ${medians.reduce((a, b) => a + b, 0).toFixed(0)} µs |`)
  }

  if (input.profileTo !== undefined) {
    const stop = await startOwnCpuProfile(input.profileIntervalUs ?? 50)
    await input.pool(input.tokens, input.inFlight, cases[0]!.op)
    await stop(input.profileTo)
  }
  for (const pool of [msalPool, phasePool, clientPool, msalFormPool, barePool]) await pool.agent.close()
  return results
}
