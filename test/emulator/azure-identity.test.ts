import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { DEV_IDS, startEmulator } from '../../src/emulator'

const ROOT = resolve(__dirname, '../..')

/** The README's @azure/identity example, exactly as a user copies it. */
function readmeExample (): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
  const block = [...readme.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1] ?? '').find((code) => code.startsWith('// NODE_EXTRA_CA_CERTS=') && code.includes('identity-example.mjs'))
  if (block === undefined) throw new Error('the README has no identity-example.mjs block')
  return block
}

t.test('the README\'s @azure/identity example (ClientSecretCredential, UsernamePasswordCredential, OnBehalfOfCredential) runs against the emulator over TLS', async (t) => {
  const emulator = await startEmulator()
  t.teardown(() => emulator.close())
  const dir = mkdtempSync(join(tmpdir(), 'obo-identity-example-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  // Where a user's project has @azure/identity installed.
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir')
  writeFileSync(join(dir, 'identity-example.mjs'), readmeExample())

  const { stdout } = await promisify(execFile)(process.execPath, ['identity-example.mjs'], {
    cwd: dir,
    timeout: 60_000,
    env: { ...process.env, NODE_OPTIONS: '', NODE_EXTRA_CA_CERTS: emulator.caFile, EMULATOR_URL: emulator.url }
  })
  t.same(JSON.parse(stdout), {
    app: [DEV_IDS.gateway.appRole],
    user: DEV_IDS.gateway.scope,
    obo: { aud: DEV_IDS.sampleApi.clientId, scp: 'Items.Read', oid: DEV_IDS.alice.objectId }
  }, 'the tokens the example prints')
  t.match(emulator.records.tokenRequests(), [
    { grantType: 'client_credentials', clientId: DEV_IDS.daemon.clientId, status: 200 },
    { grantType: 'password', clientId: DEV_IDS.devClient.clientId, userObjectId: DEV_IDS.alice.objectId, status: 200 },
    { grantType: 'urn:ietf:params:oauth:grant-type:jwt-bearer', clientId: DEV_IDS.gateway.clientId, userObjectId: DEV_IDS.alice.objectId, status: 200 }
  ], 'each credential reached the emulator once')
})
