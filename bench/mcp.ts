/**
 * MCP through the gateway (issue 13): `tools/call` through the gateway's /mcp route against the
 * sample MCP server called directly, and the time to the first byte of a server-sent event stream.
 *
 *   npm run bench:mcp                          (5 s warm-up + 10 s per case)
 *   npm run bench:mcp -- --seconds 5
 *
 * Everything runs in this process on loopback (the emulator, the sample MCP server from the dev
 * stack, the gateway, autocannon), so both cases pay for the load generator alike. Through the
 * gateway every call is a validation cache hit and a token cache hit (one user token for the
 * gateway, sent every time; the run checks that Entra was asked for one OBO token); directly, the
 * server gets a token for itself. Each case has its own MCP session, opened first. The MCP server
 * answers tools/call as an event stream (the SDK's default), so the first case already streams.
 */
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import { PublicClientApplication } from '@azure/msal-node'
import { request } from 'undici'
import { createMsalNetworkClient } from '../src/acquisition/msal-network-client'
import { startDevStack } from '../src/dev/stack'
import { DEV_IDS } from '../src/emulator'
import { createHttpsAgent } from '../src/net/https-agent'

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '10' }, samples: { type: 'string', default: '300' } } })
const SECONDS = Number(values.seconds)
const SAMPLES = Number(values.samples)
const PROTOCOL = '2025-06-18'

async function signIn (emulatorUrl: string, caPem: string, host: string, scope: string): Promise<string> {
  const agent = createHttpsAgent({ ca: [caPem] })
  const pca = new PublicClientApplication({
    auth: { clientId: DEV_IDS.devClient.clientId, authority: `${emulatorUrl}/${DEV_IDS.tenantId}`, knownAuthorities: [host] },
    system: { networkClient: createMsalNetworkClient(agent) }
  })
  const result = await pca.acquireTokenByUsernamePassword({ username: DEV_IDS.alice.username, password: DEV_IDS.alice.password, scopes: [scope] })
  await agent.close()
  if (result === null) throw new Error('no token')
  return result.accessToken
}

/** A new MCP session at `url`: its headers for every later request. */
async function openSession (url: string, token: string): Promise<Record<string, string>> {
  const base = { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' }
  const init = await request(url, {
    method: 'POST',
    headers: base,
    body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: PROTOCOL, capabilities: {}, clientInfo: { name: 'bench', version: '1' } } })
  })
  await init.body.text()
  const sessionId = String(init.headers['mcp-session-id'])
  const headers = { ...base, 'mcp-session-id': sessionId, 'mcp-protocol-version': PROTOCOL }
  const initialized = await request(url, { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) })
  await initialized.body.dump()
  return headers
}

const CALL = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'whoami', arguments: {} } })
const STREAMED = JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'whoami', arguments: { steps: 1 }, _meta: { progressToken: 'p' } } })

async function throughput (url: string, headers: Record<string, string>, seconds: number): Promise<autocannon.Result> {
  return await autocannon({ url, method: 'POST', headers, body: CALL, connections: 10, duration: seconds })
}

/** Median milliseconds from sending a streamed tools/call to its first byte, sequentially. */
async function timeToFirstByte (url: string, headers: Record<string, string>): Promise<number> {
  const times: number[] = []
  for (let i = 0; i < SAMPLES; i++) {
    const started = performance.now()
    const res = await request(url, { method: 'POST', headers, body: STREAMED })
    const reader = res.body[Symbol.asyncIterator]()
    await reader.next()
    times.push(performance.now() - started)
    for (let next = await reader.next(); next.done !== true; next = await reader.next()) { /* drain */ }
  }
  times.sort((a, b) => a - b)
  return times[Math.floor(times.length / 2)]!
}

async function main (): Promise<void> {
  const stack = await startDevStack({ gatewayPort: 0, emulatorPort: 0, sampleApiPort: 0, mcpServerPort: 0, spaPort: 0, dataDir: mkdtempSync(join(tmpdir(), 'obo-bench-mcp-')) })
  try {
    const { emulator } = stack
    const gatewayToken = await signIn(emulator.url, emulator.caPem, emulator.host, `${DEV_IDS.gateway.identifierUri}/${DEV_IDS.gateway.scope}`)
    const serverToken = await signIn(emulator.url, emulator.caPem, emulator.host, `${DEV_IDS.mcpServer.identifierUri}/${DEV_IDS.mcpServer.scope}`)
    const viaGateway = { url: `${stack.gatewayUrl}/mcp`, headers: await openSession(`${stack.gatewayUrl}/mcp`, gatewayToken) }
    const direct = { url: stack.mcpServerUrl, headers: await openSession(stack.mcpServerUrl, serverToken) }

    await throughput(viaGateway.url, viaGateway.headers, Math.min(5, SECONDS))
    await throughput(direct.url, direct.headers, Math.min(5, SECONDS))
    const gw = await throughput(viaGateway.url, viaGateway.headers, SECONDS)
    const dr = await throughput(direct.url, direct.headers, SECONDS)
    const ttfbGateway = await timeToFirstByte(viaGateway.url, viaGateway.headers)
    const ttfbDirect = await timeToFirstByte(direct.url, direct.headers)

    const obo = emulator.records.tokenRequests().filter((r) => r.grantType === 'urn:ietf:params:oauth:grant-type:jwt-bearer').length
    const errors = gw.errors + gw.non2xx + dr.errors + dr.non2xx
    console.log(`tools/call via gateway  ${gw.requests.average.toFixed(0)} req/s  p50 ${gw.latency.p50} ms  p99 ${gw.latency.p99} ms`)
    console.log(`tools/call direct       ${dr.requests.average.toFixed(0)} req/s  p50 ${dr.latency.p50} ms  p99 ${dr.latency.p99} ms`)
    console.log(`ratio gateway/direct    ${(gw.requests.average / dr.requests.average).toFixed(2)} (throughput)`)
    console.log(`SSE first byte median   gateway ${ttfbGateway.toFixed(2)} ms, direct ${ttfbDirect.toFixed(2)} ms, ratio ${(ttfbGateway / ttfbDirect).toFixed(2)} (${SAMPLES} sequential calls each)`)
    console.log(`OBO token requests to Entra: ${obo} (expected 1: every call after the first is a token cache hit); errors/non-2xx: ${errors}`)
    if (obo !== 1 || errors !== 0) process.exitCode = 1
  } finally {
    await stack.close()
  }
}

main().catch((err: unknown) => { console.error(err); process.exitCode = 1 })
