import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { configFromText } from '../../src/config/load'
import { createSelfSignedRsa } from '../../src/emulator/self-signed'

// The README's reference configuration is what newcomers paste first: it must load as printed, with
// only its placeholders filled in.
t.test("the README's reference configuration loads as written", async (t) => {
  const readme = readFileSync(join(__dirname, '..', '..', 'README.md'), 'utf8')
  const example = /```yaml\n(server:\n[\s\S]*?)```/.exec(readme)?.[1]
  if (example === undefined) throw new Error('README: no yaml block starting with server:')
  const guid = '6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b'
  const text = example.replace(/<[^>\n]*guid>|<clientId>/g, guid)
  const names = [...new Set([...text.matchAll(/\$\{env:(\w+)\}/g)].map((m) => m[1]!))]
  t.ok(names.length > 0, 'the example takes secrets from the environment')
  const env = Object.fromEntries(names.map((name, i) => [name, `${name.toLowerCase()}-value-${i}-0123456789`]))
  const { certificatePem } = await createSelfSignedRsa({ commonName: 'readme example CA', notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 3_600_000) })
  const dir = t.testdir({ 'extra-ca.pem': certificatePem, 'upstream-ca.pem': certificatePem })

  const config = configFromText(text, join(dir, 'gateway.yaml'), env)
  t.equal(config.identity.tenantId, guid)
  t.same(config.tokenCache.previousEncryptionKeys, [env.GATEWAY_CACHE_KEY_OLD], 'a list of one secret from the environment')
  t.equal(config.tokenCache.encryptionKey, env.GATEWAY_CACHE_KEY)
  t.ok(config.routes.length > 0)
})
