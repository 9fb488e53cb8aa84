import t from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { request } from 'undici'
import { serveDemoSpa } from '../../src/dev/demo-spa-server'
import { tsxChildEnv } from '../helpers/tsx-child'

const ROOT = resolve(__dirname, '../..')

t.test('the README\'s "Handling challenges in a SPA" shows the demo SPA\'s challenges.js, whole', async (t) => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
  const section = readme.slice(readme.indexOf('### Handling challenges in a SPA'))
  const blocks = [...section.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1])
  const code = readFileSync(join(ROOT, 'src/dev/demo-spa/challenges.js'), 'utf8')
  t.ok(blocks.includes(code), 'one js block of the section equals src/dev/demo-spa/challenges.js')
})

t.test('demo-spa-server CONFIG.json serves the page against the tenant the file names', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'obo-spa-'))
  const config = {
    authority: 'https://login.microsoftonline.com/contoso.onmicrosoft.com',
    knownAuthorities: ['login.microsoftonline.com'],
    clientId: '00000000-0000-4000-8000-0000000000aa',
    scopes: ['api://gateway/access_as_user'],
    gatewayUrl: 'https://gateway.contoso.com',
    calls: [{ id: 'api', label: 'Call', path: '/graph/me', explains: 'OBO for Graph' }]
  }
  writeFileSync(join(dir, 'spa.json'), JSON.stringify(config))
  const served = await serveDemoSpa([join(dir, 'spa.json'), '--port', '0'])
  t.teardown(() => served.close())
  t.match(served.url, /^http:\/\/localhost:\d+$/)
  const get = async (path: string): Promise<{ status: number, type: unknown, body: string }> => {
    const res = await request(`${served.url}${path}`)
    return { status: res.statusCode, type: res.headers['content-type'], body: await res.body.text() }
  }
  t.same(JSON.parse((await get('/config.json')).body), config)
  t.match(await get('/'), { status: 200, type: /^text\/html/, body: /<script src="msal\/msal-browser.js">/ })
  t.match(await get('/msal/msal-browser.js'), { status: 200, type: /^text\/javascript/, body: /@azure\/msal-browser v5\./ })
  t.match(await get('/msal/msal-redirect-bridge.js'), { status: 200, body: /broadcastResponseToMainFrame/ })
  t.match(await get('/redirect.html'), { status: 200, body: /msalRedirectBridge\.broadcastResponseToMainFrame/ })
  t.equal((await get('/../package.json')).status, 404, 'only the page\'s own files')

  writeFileSync(join(dir, 'partial.json'), JSON.stringify({ clientId: 'x' }))
  await t.rejects(serveDemoSpa([join(dir, 'partial.json')]), /partial\.json lacks authority, knownAuthorities, scopes, gatewayUrl, calls/)
  await t.rejects(serveDemoSpa([]), /usage: demo-spa-server CONFIG\.json/)
})

t.test('demo-spa-server on a port in use: exit 1 and one line naming it, as the gateway words it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'obo-spa-busy-'))
  const config = { authority: 'https://login.microsoftonline.com/x', knownAuthorities: ['login.microsoftonline.com'], clientId: 'c', scopes: ['s'], gatewayUrl: 'https://g', calls: [] }
  writeFileSync(join(dir, 'spa.json'), JSON.stringify(config))
  const taken = createServer()
  await new Promise<void>((resolve) => taken.listen(0, 'localhost', resolve))
  t.teardown(() => new Promise<void>((resolve) => taken.close(() => { resolve() })))
  const port = (taken.address() as { port: number }).port
  await t.rejects(serveDemoSpa([join(dir, 'spa.json'), '--port', String(port)]), { name: 'StartError', message: `cannot listen on localhost:${port}: the address is in use` })
  const script = join(ROOT, 'src/dev/demo-spa-server.ts')
  const res = spawnSync(process.execPath, ['--import', 'tsx', script, join(dir, 'spa.json'), '--port', String(port)], { encoding: 'utf8', env: tsxChildEnv(), timeout: 60_000 })
  t.equal(res.status, 1)
  t.equal(res.stderr, `cannot listen on localhost:${port}: the address is in use\n`)
})
