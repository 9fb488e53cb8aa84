import t, { type Test } from 'tap'
import { execFile, spawnSync } from 'node:child_process'
import diagnostics from 'node:diagnostics_channel'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer } from 'node:net'
import { promisify } from 'node:util'
import { devStackBanner, startDevStack } from '../../src/dev/stack'
import { DEV_IDS } from '../../src/emulator'

const run = promisify(execFile)

t.test('npm start\'s dev stack: the printed command signs Alice in and reaches the sample API through the gateway', async (t) => {
  // Every outgoing connection this process makes, by host: the gateway must never ask Microsoft.
  const hosts = new Set<string>()
  const onConnect = (message: unknown): void => { hosts.add(String((message as { connectParams: { hostname: string } }).connectParams.hostname)) }
  const onHttp = (message: unknown): void => { hosts.add(String((message as { request: { host: string } }).request.host)) }
  diagnostics.subscribe('undici:client:beforeConnect', onConnect)
  diagnostics.subscribe('http.client.request.start', onHttp)
  t.teardown(() => {
    diagnostics.unsubscribe('undici:client:beforeConnect', onConnect)
    diagnostics.unsubscribe('http.client.request.start', onHttp)
  })

  const stack = await startDevStack({ gatewayPort: 0, emulatorPort: 0, sampleApiPort: 0, mcpServerPort: 0, spaPort: 0, dataDir: mkdtempSync(join(tmpdir(), 'obo-dev-')) })
  t.teardown(() => stack.close())
  const banner = devStackBanner(stack)
  t.match(banner, /LOCAL DEVELOPMENT STACK/)
  t.match(banner, `Entra ID emulator  ${stack.emulator.url}`)
  t.match(banner, `gateway            ${stack.gatewayUrl}   route /api -> ${stack.sampleApiUrl}`)
  const firstAddress = banner.split('\n').find((line) => line.includes('://'))
  t.match(firstAddress, new RegExp(`^  open ${stack.spaUrl}/ in a browser: the demo SPA`), 'the demo SPA comes first')
  t.match(stack.spaUrl, /^https:\/\/127\.0\.0\.1:\d+$/, 'on the emulator\'s site, over https')
  const command = banner.split('\n').find((line) => line.trimStart().startsWith('TOKEN='))?.trim()
  t.ok(command, 'the banner holds one command to copy')

  const curlMissing = spawnSync('curl', ['--version']).status !== 0
  await t.test('the printed command, run as printed', { skip: curlMissing && 'curl is not installed here' }, async (t) => {
    await runPrinted(t, command!)
  })
  t.same([...hosts].filter((h) => !['127.0.0.1', 'localhost'].includes(h)), [], 'no connection left loopback (no instance discovery)')
  t.ok(hosts.has('127.0.0.1'), 'the channels did see the gateway\'s own calls')
})

t.test('a dev stack port in use: the start stops with one line naming that port and its part', async (t) => {
  const taken = createServer()
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => taken.close(() => { resolve() })))
  const port = (taken.address() as { port: number }).port
  const anyPort = { gatewayPort: 0, emulatorPort: 0, sampleApiPort: 0, mcpServerPort: 0, spaPort: 0, dataDir: mkdtempSync(join(tmpdir(), 'obo-dev-busy-')) }
  // The first part to listen, and the last, whose refusal closes the four listening already (one left
  // open would keep this file from ending).
  for (const [option, part] of [['emulatorPort', 'Entra ID emulator'], ['spaPort', 'demo SPA']] as const) {
    await t.rejects(startDevStack({ ...anyPort, [option]: port }), {
      name: 'StartError',
      message: `cannot listen on 127.0.0.1:${port} (the dev stack's ${part}): the address is in use`
    }, option)
  }
})

async function runPrinted (t: Test, command: string): Promise<void> {
  const { stdout } = await run('bash', ['-c', command], { timeout: 30_000 })
  const answer = JSON.parse(stdout) as { api: string, token: Record<string, unknown> }
  t.equal(answer.api, 'sample-api')
  t.equal(answer.token.aud, DEV_IDS.sampleApi.clientId)
  t.equal(answer.token.scp, 'Items.Read')
  t.equal(answer.token.oid, DEV_IDS.alice.objectId)
  t.equal(answer.token.azp, DEV_IDS.gateway.clientId)
}
