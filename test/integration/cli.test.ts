import t, { type Test } from 'tap'
import { spawnSync } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { createClientCertificate } from '../../src/emulator'
import { tsxChildEnv } from '../helpers/tsx-child'

const CLI = resolve(__dirname, '../../src/cli.ts')
const dir = mkdtempSync(join(tmpdir(), 'obo-cli-'))

function run (args: string[], env: Record<string, string> = {}, script = CLI): { status: number | null, stdout: string, stderr: string } {
  // tsx rather than tap's own loader: a child then starts in a second or two instead of ten.
  const res = spawnSync(process.execPath, ['--import', 'tsx', script, ...args], { encoding: 'utf8', env: tsxChildEnv({ LOG_LEVEL: 'error', ...env }), timeout: 60_000 })
  return { status: res.status, stdout: res.stdout, stderr: res.stderr }
}

function file (name: string, text: string): string {
  const path = join(dir, name)
  writeFileSync(path, text)
  return path
}

const valid = file('gateway.yaml', `
identity:
  tenantId: 7d3c1b52-6e5c-4a1f-9c0e-2f4b8a6d9e10
  clientId: 5617d05d-1e0b-4a47-9d1a-3f2c3b7a9e11
  credential: { clientSecret: "\${env:GW_SECRET}" }
routes:
  - prefix: /graph
    upstream: https://graph.example/v1.0
    user: { requireScopes: [access_as_user], scopes: [https://graph.example/User.Read] }
`)
const invalid = file('bad.yaml', `
identity: { tenantId: contoso, clientId: nope, credential: {} }
routes: [{ prefix: graph, upstream: https://x }]
`)

function noStackTrace (t: Test, text: string): void {
  t.notMatch(text, /\n\s+at /, 'no stack trace')
}

t.test('check-config accepts a valid file', async (t) => {
  const res = run(['check-config', valid], { GW_SECRET: 's' })
  t.equal(res.status, 0)
  t.match(res.stdout, /gateway\.yaml: valid \(1 route, tenant 7d3c1b52-6e5c-4a1f-9c0e-2f4b8a6d9e10, instance https:\/\/login\.microsoftonline\.com\)/)
})

t.test('check-config names every broken key and exits 1', async (t) => {
  const res = run(['check-config', invalid])
  t.equal(res.status, 1)
  t.match(res.stderr, /^obo-gateway: invalid configuration in .*bad\.yaml:\n/)
  t.match(res.stderr, /identity\.tenantId: expected a tenant GUID or 'organizations', got "contoso"/)
  t.match(res.stderr, /identity\.clientId: expected a GUID, got "nope"/)
  t.match(res.stderr, /routes\.0\.prefix: expected a path starting with \//)
  noStackTrace(t, res.stderr)
})

t.test('check-config reports credential files that cannot be read', async (t) => {
  const certificate = file('cert.yaml', `
identity:
  tenantId: 7d3c1b52-6e5c-4a1f-9c0e-2f4b8a6d9e10
  clientId: 5617d05d-1e0b-4a47-9d1a-3f2c3b7a9e11
  credential: { certificate: { certificateFile: /nope/a.pem, privateKeyFile: ${dir} } }
routes:
  - prefix: /graph
    upstream: https://graph.example/v1.0
    user: { requireScopes: [access_as_user], scopes: [https://graph.example/User.Read] }
`)
  const res = run(['check-config', certificate])
  t.equal(res.status, 1)
  t.equal(res.stderr, `obo-gateway: invalid configuration in ${certificate}:\n` +
    '  - identity.credential.certificate.certificateFile: /nope/a.pem does not exist\n' +
    `  - identity.credential.certificate.privateKeyFile: ${dir} is a directory, not a file\n`)
  const federated = run(['check-config', file('federated.yaml', 'identity: {}\nroutes: [{ prefix: /a, upstream: http://x, app: { requireRoles: [r], scopes: [s] } }]\n')],
    { AZURE_CLIENT_ID: '5617d05d-1e0b-4a47-9d1a-3f2c3b7a9e11', AZURE_TENANT_ID: '7d3c1b52-6e5c-4a1f-9c0e-2f4b8a6d9e10', AZURE_FEDERATED_TOKEN_FILE: '/nope/token' })
  t.equal(federated.status, 1)
  t.match(federated.stderr, /identity\.credential\.federatedTokenFile: \/nope\/token does not exist/)
})

t.test('check-config finds a certificate named relative to the config file from any working directory', async (t) => {
  const { certificatePem, privateKeyPem } = await createClientCertificate()
  const confDir = join(dir, 'relative')
  mkdirSync(join(confDir, 'certs'), { recursive: true })
  writeFileSync(join(confDir, 'certs', 'gateway.pem'), certificatePem)
  writeFileSync(join(confDir, 'certs', 'gateway.key'), privateKeyPem)
  file('relative/gateway.yaml', `
identity:
  tenantId: 7d3c1b52-6e5c-4a1f-9c0e-2f4b8a6d9e10
  clientId: 5617d05d-1e0b-4a47-9d1a-3f2c3b7a9e11
  credential: { certificate: { certificateFile: certs/gateway.pem, privateKeyFile: ./certs/gateway.key } }
routes:
  - prefix: /graph
    upstream: https://graph.example/v1.0
    user: { requireScopes: [access_as_user], scopes: [https://graph.example/User.Read] }
`)
  // The child runs in the repository (tsx is found from there), far from the config's directory.
  t.not(process.cwd(), confDir)
  const res = run(['check-config', join(confDir, 'gateway.yaml')])
  t.equal(res.stderr, '')
  t.equal(res.status, 0)
  t.match(res.stdout, /gateway\.yaml: valid \(1 route/)
})

t.test('check-config runs the gateway\'s own certificate check: a key of another certificate, a key where the certificate belongs', async (t) => {
  const [mine, other] = await Promise.all([createClientCertificate(), createClientCertificate()])
  const certFile = file('mine.pem', mine.certificatePem)
  const otherKey = file('other.key', other.privateKeyPem)
  const config = (name: string, certificateFile: string, privateKeyFile: string): string => file(name, `
identity:
  tenantId: 7d3c1b52-6e5c-4a1f-9c0e-2f4b8a6d9e10
  clientId: 5617d05d-1e0b-4a47-9d1a-3f2c3b7a9e11
  credential: { certificate: { certificateFile: ${certificateFile}, privateKeyFile: ${privateKeyFile} } }
routes:
  - prefix: /graph
    upstream: https://graph.example/v1.0
    user: { requireScopes: [access_as_user], scopes: [https://graph.example/User.Read] }
`)
  const thumbprint = new X509Certificate(mine.certificatePem).fingerprint.replace(/:/g, '')
  const mismatched = config('mismatched.yaml', certFile, otherKey)
  const res = run(['check-config', mismatched])
  t.equal(res.status, 1)
  t.equal(res.stderr, `obo-gateway: invalid configuration in ${mismatched}:\n` +
    `  - identity.credential.certificate: the private key in ${otherKey} does not belong to the certificate in ${certFile} (thumbprint ${thumbprint})\n`)
  t.equal(res.stdout, '', 'not "valid"')

  const keyOnly = config('key-only.yaml', otherKey, otherKey)
  const keyAsCertificate = run(['check-config', keyOnly])
  t.equal(keyAsCertificate.status, 1)
  t.equal(keyAsCertificate.stderr, `obo-gateway: invalid configuration in ${keyOnly}:\n` +
    `  - identity.credential.certificate: the certificate file ${otherKey} holds no PEM certificate\n`)
  t.notMatch(res.stderr + keyAsCertificate.stderr, /PRIVATE KEY/, 'no key material printed')
})

t.test('check-config never prints a secret, from the file, the environment or a URL', async (t) => {
  const secrets = file('secrets.yaml', `
identity:
  tenantId: 7d3c1b52-6e5c-4a1f-9c0e-2f4b8a6d9e10
  clientId: 5617d05d-1e0b-4a47-9d1a-3f2c3b7a9e11
  credential: { clientSecret: 12345 }
routes:
  - prefix: /graph
    upstream: https://graph.example/v1.0
    user: { requireScopes: [access_as_user], scopes: [https://graph.example/User.Read] }
tokenCache:
  redis: { url: "memcached://:SecretPw@redis:6379" }
  encryptionKey: "\${env:GATEWAY_CACHE_KEY}"
  previousEncryptionKeys: [oldsecretkey]
`)
  const res = run(['check-config', secrets], { GATEWAY_CACHE_KEY: 'mysecretkey' })
  t.equal(res.status, 1)
  t.equal(res.stderr, `obo-gateway: invalid configuration in ${secrets}:\n` +
    '  - identity.credential.clientSecret: expected a non-empty string, got a number\n' +
    '  - tokenCache.redis.url: expected a redis://, rediss://, redis+sentinel:// or redis+cluster:// URL, got "memcached://***@redis:6379"\n' +
    '  - tokenCache.encryptionKey: expected a secret of at least 16 characters (32 random bytes, base64, recommended), got a string of 11 characters (from ${env:GATEWAY_CACHE_KEY})\n' + // eslint-disable-line no-template-curly-in-string
    '  - tokenCache.previousEncryptionKeys.0: expected a secret of at least 16 characters (32 random bytes, base64, recommended), got a string of 12 characters\n')
  for (const secret of ['12345', 'SecretPw', 'mysecretkey', 'oldsecretkey']) t.notOk(res.stderr.includes(secret), `${secret} is not printed`)
})

t.test('the gateway refuses to start on a bad config, from --config or OBO_GATEWAY_CONFIG', async (t) => {
  for (const res of [run(['--config', invalid]), run([], { OBO_GATEWAY_CONFIG: invalid }), run(['--config', valid])]) {
    t.equal(res.status, 1)
    t.match(res.stderr, /^obo-gateway: invalid configuration in /)
    noStackTrace(t, res.stderr)
  }
})

t.test('usage mistakes print the usage, not a stack trace', async (t) => {
  const unknown = run(['--bogus'])
  t.equal(unknown.status, 1)
  t.match(unknown.stderr, /Unknown option '--bogus'[\s\S]*usage:/)
  noStackTrace(t, unknown.stderr)
  const missing = run(['check-config'])
  t.equal(missing.status, 1)
  t.match(missing.stderr, /check-config takes exactly one FILE/)
  const help = run(['--help'])
  t.equal(help.status, 0)
  t.match(help.stdout, /obo-gateway check-config FILE/)
})

t.test('--help anywhere prints the usage, which lists every command and option; --version the version', async (t) => {
  for (const args of [['--help'], ['check-config', '--help'], ['sample-api', '-h']]) {
    const res = run(args)
    t.equal(res.status, 0, args.join(' '))
    t.match(res.stdout, /^usage:/, args.join(' '))
    t.equal(res.stderr, '')
  }
  const usage = run(['--help']).stdout
  for (const part of ['obo-gateway [--config FILE]', 'check-config FILE', 'emulator [--host H] [--port N] [--seed FILE] [--data-dir DIR] [--public-url URL] [--no-control-api]',
    'sample-api --instance URL [--ca-file FILE] [--host H] [--port N]', '--version']) {
    t.ok(usage.includes(part), part)
  }
  const { version } = JSON.parse(readFileSync(resolve(__dirname, '../../package.json'), 'utf8')) as { version: string }
  t.same(run(['--version']), { status: 0, stdout: `obo-gateway ${version}\n`, stderr: '' })
})
