import t from 'tap'
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ConfigError, loadConfigFile, resolveConfig } from '../../src/config/load'

const dir = mkdtempSync(join(tmpdir(), 'obo-config-'))
const TENANT = '7d3c1b52-6e5c-4a1f-9c0e-2f4b8a6d9e10'
const CLIENT = '5617d05d-1e0b-4a47-9d1a-3f2c3b7a9e11'

function write (name: string, text: string): string {
  const file = join(dir, name)
  writeFileSync(file, text)
  return file
}

function issues (fn: () => unknown): string[] {
  try {
    fn()
  } catch (err) {
    if (err instanceof ConfigError) return err.issues
    throw err
  }
  throw new Error('expected a ConfigError')
}

const minimal = {
  identity: { tenantId: TENANT, clientId: CLIENT, credential: { clientSecret: 's' } },
  routes: [{ prefix: '/graph', upstream: 'https://graph.example/v1.0', user: { requireScopes: ['access_as_user'], scopes: ['https://graph.example/User.Read'] } }]
}

t.test('a minimal YAML config gets every default', async (t) => {
  const file = write('min.yaml', `
identity:
  tenantId: ${TENANT}
  clientId: ${CLIENT}
  credential: { clientSecret: "\${env:GW_SECRET}" }
routes:
  - prefix: /graph
    upstream: https://graph.example/v1.0
    user: { requireScopes: [access_as_user], scopes: [https://graph.example/User.Read] }
`)
  const config = loadConfigFile(file, { GW_SECRET: 'from-env' })
  t.same(config.server, { host: '0.0.0.0', port: 8080, trustProxy: false, workers: 1, timeouts: { headersMs: 10_000, requestMs: 60_000, keepAliveMs: 72_000 }, overload: { maxEventLoopDelayMs: 1000, maxHeapUsedBytes: 0, maxRssBytes: 0, retryAfterSeconds: 10 } })
  t.equal(config.identity.instance, 'https://login.microsoftonline.com')
  t.same(config.identity.audiences, [`api://${CLIENT}`, CLIENT])
  t.same(config.identity.allowedTenants, [TENANT])
  t.equal(config.identity.clockSkewSeconds, 300)
  t.equal(config.identity.keyRefreshCooldownSeconds, 30)
  t.same(config.identity.credential, { kind: 'clientSecret', clientSecret: 'from-env' })
  t.equal(config.routes[0]?.upstream.href, 'https://graph.example/v1.0')
  t.same(config.routes[0]?.timeouts, { connectMs: 5000, headersMs: 30000, bodyMs: 60000 })
})

t.test('JSON files and the Azure environment variables work too', async (t) => {
  const file = write('env.json', JSON.stringify({
    identity: { instance: 'https://login.example/' },
    routes: minimal.routes
  }))
  const config = loadConfigFile(file, { AZURE_CLIENT_ID: CLIENT, AZURE_TENANT_ID: TENANT, AZURE_FEDERATED_TOKEN_FILE: '/var/run/token', AZURE_AUTHORITY_HOST: 'https://ignored.example' })
  t.equal(config.identity.clientId, CLIENT)
  t.equal(config.identity.tenantId, TENANT)
  t.equal(config.identity.instance, 'https://login.example', 'the file wins over AZURE_AUTHORITY_HOST; trailing slash dropped')
  t.same(config.identity.credential, { kind: 'federatedTokenFile', federatedTokenFile: '/var/run/token' })
})

t.test('every mistake is reported with its key path', async (t) => {
  const found = issues(() => resolveConfig({
    server: { port: 99999, bogus: true },
    identity: { tenantId: 'contoso', clientId: CLIENT, credential: { clientSecret: '${env:MISSING_SECRET}' } }, // eslint-disable-line no-template-curly-in-string
    routes: [{ prefix: '/graph/', upstream: 'ftp://x', user: { requireScopes: [], scopes: ['a'] } }]
  }, { source: 'test', env: {} }))
  t.same(found, [
    'identity.credential.clientSecret: environment variable MISSING_SECRET is not set',
    'server.bogus: unknown key',
    'server.port: expected an integer from 0 to 65535, got 99999',
    "identity.tenantId: expected a tenant GUID or 'organizations', got \"contoso\"",
    'routes.0.prefix: expected a path starting with / and not ending with /, got "/graph/"',
    'routes.0.upstream: expected an http(s) URL, got "ftp://x"',
    'routes.0.user.requireScopes: expected a non-empty list of strings, got an empty list'
  ])
})

t.test('cross-field rules', async (t) => {
  t.same(issues(() => resolveConfig({ identity: { clientId: CLIENT, tenantId: TENANT }, routes: minimal.routes }, { source: 'x', env: {} })),
    ['identity.credential: expected exactly one of clientSecret, certificate, federatedTokenFile, managedIdentity'])
  t.same(issues(() => resolveConfig({
    identity: { ...minimal.identity, credential: { clientSecret: 'a', federatedTokenFile: '/f' } },
    routes: minimal.routes
  }, { source: 'x', env: {} })), ['identity.credential: expected exactly one of clientSecret, certificate, federatedTokenFile, managedIdentity (found clientSecret, federatedTokenFile)'])
  t.same(issues(() => resolveConfig({
    identity: { ...minimal.identity, tenantId: 'organizations' },
    routes: [...minimal.routes, { prefix: '/graph', upstream: 'http://x' }],
    tokenCache: { redis: { url: 'redis://127.0.0.1:6379' } }
  }, { source: 'x', env: {} })), [
    'identity.allowedTenants: required when tenantId is organizations (the tenants whose users may call)',
    'routes.1.prefix: /graph is used by an earlier route',
    'routes.1: needs a user block, an app block, or both (otherwise every caller is refused)',
    'tokenCache.encryptionKey: required with tokenCache.redis (tokens in Redis are always encrypted)'
  ])
  t.same(issues(() => resolveConfig({ identity: { credential: { clientSecret: 'a' } }, routes: minimal.routes }, { source: 'x', env: {} })), [
    "identity.tenantId: missing (expected a tenant GUID or 'organizations'; AZURE_TENANT_ID also works)",
    'identity.clientId: missing (expected a GUID; AZURE_CLIENT_ID also works)'
  ])
  t.same(issues(() => resolveConfig({ ...minimal, identity: { ...minimal.identity, tls: { caFile: 'nope.pem' } } }, { source: 'x', baseDir: dir, env: {} })),
    [`identity.tls.caFile: ${join(dir, 'nope.pem')} does not exist`])
})

t.test('relative file paths start at the config file\'s directory, not the working directory', async (t) => {
  const confDir = join(dir, 'etc', 'gateway')
  mkdirSync(confDir, { recursive: true })
  writeFileSync(join(confDir, 'ca.pem'), '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n')
  const routes = `routes:
  - prefix: /graph
    upstream: https://graph.example/v1.0
    tls: { caFile: ca.pem }
    app: { requireRoles: [Gateway.Relay], scopes: [https://graph.example/.default] }
`
  const identity = (credential: string): string => `identity:\n  tenantId: ${TENANT}\n  clientId: ${CLIENT}\n  credential: ${credential}\n  tls: { caFile: ./ca.pem }\n`
  writeFileSync(join(confDir, 'cert.yaml'), identity('{ certificate: { certificateFile: certs/cert.pem, privateKeyFile: ../secrets/key.pem } }') + routes)
  writeFileSync(join(confDir, 'token.yaml'), identity('{ federatedTokenFile: tokens/azure-identity-token }') + routes)
  writeFileSync(join(confDir, 'absolute.yaml'), identity('{ federatedTokenFile: /var/run/token }') + routes)
  writeFileSync(join(confDir, 'from-env.yaml'), `identity: { tenantId: ${TENANT}, clientId: ${CLIENT} }\n` + routes)
  const cwd = process.cwd()
  t.teardown(() => { process.chdir(cwd) })
  process.chdir(dir)

  const certificate = loadConfigFile('etc/gateway/cert.yaml', {})
  t.same(certificate.identity.credential, { kind: 'certificate', certificateFile: join(confDir, 'certs/cert.pem'), privateKeyFile: join(dir, 'etc/secrets/key.pem') })
  t.match(certificate.identity.extraCaPems, [/BEGIN CERTIFICATE/], 'identity.tls.caFile as before')
  t.match(certificate.routes[0]?.extraCaPems, [/BEGIN CERTIFICATE/], 'and a route\'s')
  t.same(loadConfigFile('etc/gateway/token.yaml', {}).identity.credential, { kind: 'federatedTokenFile', federatedTokenFile: join(confDir, 'tokens/azure-identity-token') })
  t.same(loadConfigFile('etc/gateway/absolute.yaml', {}).identity.credential, { kind: 'federatedTokenFile', federatedTokenFile: '/var/run/token' }, 'absolute paths unchanged')
  t.same(loadConfigFile('etc/gateway/from-env.yaml', { AZURE_FEDERATED_TOKEN_FILE: 'tokens/t' }).identity.credential, { kind: 'federatedTokenFile', federatedTokenFile: 'tokens/t' },
    'AZURE_FEDERATED_TOKEN_FILE is not the file\'s: as given')
})

t.test('server.adminPort must differ from server.port, the default 8080 included', async (t) => {
  const message = (port: number): string => `server.adminPort: ${port} is server.port too; /healthz, /readyz and /metrics need a port of their own (or leave adminPort out to serve them on server.port)`
  t.same(issues(() => resolveConfig({ ...minimal, server: { port: 9090, adminPort: 9090 } }, { source: 'x', env: {} })), [message(9090)])
  t.same(issues(() => resolveConfig({ ...minimal, server: { adminPort: 8080 } }, { source: 'x', env: {} })), [message(8080)])
  t.equal(resolveConfig({ ...minimal, server: { port: 8080, adminPort: 9090 } }, { source: 'x', env: {} }).server.adminPort, 9090)
  t.match(resolveConfig({ ...minimal, server: { port: 0, adminPort: 0 } }, { source: 'x', env: {} }).server, { port: 0, adminPort: 0 }, 'port 0 twice: two free ports')
})

t.test('CORS and per-route CA files', async (t) => {
  write('route-ca.pem', '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n')
  const config = resolveConfig({
    ...minimal,
    server: { cors: { origins: ['https://app.contoso.com'] } },
    routes: [{ ...minimal.routes[0], tls: { caFile: 'route-ca.pem' } }]
  }, { source: 'x', baseDir: dir, env: {} })
  t.same(config.server.cors, { origins: ['https://app.contoso.com'], credentials: false, exposedHeaders: [], maxAgeSeconds: 600 })
  t.match(config.routes[0]?.extraCaPems, [/BEGIN CERTIFICATE/])
  t.same(issues(() => resolveConfig({
    ...minimal,
    server: { cors: { origins: ['https://app.contoso.com/path'] } },
    routes: [{ ...minimal.routes[0], tls: { caFile: 'missing.pem' } }]
  }, { source: 'x', baseDir: dir, env: {} })), [
    'server.cors.origins.0: expected an origin such as https://app.contoso.com (scheme and host, no path), got "https://app.contoso.com/path"'
  ])
  t.same(issues(() => resolveConfig({ ...minimal, routes: [{ ...minimal.routes[0], tls: { caFile: 'missing.pem' } }] }, { source: 'x', baseDir: dir, env: {} })),
    [`routes.0.tls.caFile: ${join(dir, 'missing.pem')} does not exist`])
})

t.test('unreadable and unparsable files', async (t) => {
  t.same(issues(() => loadConfigFile(join(dir, 'absent.yaml'))), ['the file does not exist'])
  t.same(issues(() => loadConfigFile(dir)), ['the file is a directory, not a file'])
  t.same(issues(() => loadConfigFile(join(write('plain', ''), 'gateway.yaml'))), ['the file does not exist (part of its path is a file, not a directory)'])
  t.same(issues(() => loadConfigFile(write('bad.json', '{"identity": '))), ['not valid JSON: Unexpected end of JSON input'])
  t.same(issues(() => loadConfigFile(write('comma.json', '{\n  "routes": [],\n}'))), ['not valid JSON: Expected double-quoted property name at line 3, column 1'])
  t.same(issues(() => loadConfigFile(write('bad.yaml', 'identity: [unclosed'))), ['not valid YAML: Flow sequence in block collection must be sufficiently indented and end with a ] at line 1, column 20'])
  t.same(issues(() => loadConfigFile(write('list.yaml', '- a\n- b'))), ['the file must hold an object with identity and routes'])
  const err = t.throws(() => loadConfigFile(write('empty.yaml', 'routes: []\nidentity: {}'))) as ConfigError
  t.match(err.message, /^invalid configuration in .*empty\.yaml:\n {2}- routes: expected /)
})

t.test('syntax errors say where, and quote nothing of the file', async (t) => {
  const yaml = issues(() => loadConfigFile(write('nested.yaml', 'identity:\n  credential:\n    clientSecret: Zx9: SecretPart\n')))
  t.same(yaml, ['not valid YAML: Nested mappings are not allowed in compact mappings at line 3, column 19'])
  const token = issues(() => loadConfigFile(write('header.yaml', 'identity:\n  credential:\n    clientSecret: |xSecretKey\n      more\n')))
  t.same(token, ['not valid YAML: Block scalar header includes extra characters at line 3, column 20'])
  const escape = issues(() => loadConfigFile(write('escape.yaml', 'identity: { credential: { clientSecret: "ab\\qSecret" } }\n')))
  t.same(escape, ['not valid YAML: Invalid escape sequence in a double-quoted string at line 1, column 44'])
  const json = issues(() => loadConfigFile(write('secret.json', '{ "identity": { "credential": { "clientSecret": Zx9SecretPart } } }')))
  t.same(json, ["not valid JSON: Unexpected token 'Z'"])

  // Unquoted values starting with ! or * are tags and aliases to YAML: refused, not printed, not lost.
  const warnings: Error[] = []
  const onWarning = (warning: Error): void => { warnings.push(warning) }
  process.on('warning', onWarning)
  t.teardown(() => { process.off('warning', onWarning) })
  const tag = issues(() => loadConfigFile(write('tag.yaml', 'identity:\n  credential: { clientSecret: !SecretTag }\n')))
  t.same(tag, ['not valid YAML: Unresolved tag at line 2, column 31'])
  const alias = issues(() => loadConfigFile(write('alias.yaml', 'identity:\n  credential: { clientSecret: *SecretAlias }\n')))
  t.same(alias, ['not valid YAML: Unresolved alias (the anchor must be set before the alias)'])
  await new Promise((resolve) => setImmediate(resolve))
  t.same(warnings.map((w) => w.message), [], 'and yaml prints no warning with the line either')

  t.notMatch([...yaml, ...token, ...escape, ...json, ...tag, ...alias].join('\n'), /Secret|\\q/, 'neither the value nor the line it is on')
})

t.test('one run lists the missing identity keys even when the schema refused something else', async (t) => {
  t.same(issues(() => resolveConfig({ identity: {}, routes: [] }, { source: 'x', env: {} })), [
    'routes: expected a non-empty list of routes, got an empty list',
    "identity.tenantId: missing (expected a tenant GUID or 'organizations'; AZURE_TENANT_ID also works)",
    'identity.clientId: missing (expected a GUID; AZURE_CLIENT_ID also works)',
    'identity.credential: expected exactly one of clientSecret, certificate, federatedTokenFile, managedIdentity'
  ])
  t.same(issues(() => resolveConfig({ server: 5, identity: { clientId: CLIENT, credential: { clientSecrt: 'x' } } }, { source: 'x', env: { AZURE_TENANT_ID: TENANT } })), [
    'routes: missing (expected a non-empty list of routes)',
    'server: expected an object, got 5',
    'identity.credential.clientSecrt: unknown key',
    'identity.credential: expected exactly one of clientSecret, certificate, federatedTokenFile, managedIdentity'
  ], 'a misspelt credential is both an unknown key and no credential')
  t.same(issues(() => resolveConfig({ ...minimal, identity: { ...minimal.identity, credential: 'x', tenantId: 5 } }, { source: 'x', env: {} })).map((i) => i.slice(0, i.indexOf(':'))),
    ['identity.tenantId', 'identity.credential'], 'a key the schema refused is not reported missing as well')
})

t.test('tokenCache: every key, the accepted Redis URL forms, and what is refused', async (t) => {
  const key = 'k'.repeat(32)
  const full = resolveConfig({
    ...minimal,
    tokenCache: {
      redis: { url: 'redis+sentinel://:pw@s1:26379,s2:26379/mymaster', commandTimeoutMs: 100 },
      encryptionKey: '${env:CACHE_KEY}', // eslint-disable-line no-template-curly-in-string
      previousEncryptionKeys: ['o'.repeat(16)],
      l1: { maxEntries: 1000, maxBytes: 1_048_576 },
      expiryMarginSeconds: 120,
      lockMs: 2000
    }
  }, { source: 'x', env: { CACHE_KEY: key } })
  t.same(full.tokenCache, {
    redisUrl: 'redis+sentinel://:pw@s1:26379,s2:26379/mymaster',
    redisCommandTimeoutMs: 100,
    encryptionKey: key,
    previousEncryptionKeys: ['o'.repeat(16)],
    l1: { maxEntries: 1000, maxBytes: 1_048_576 },
    expiryMarginSeconds: 120,
    lockMs: 2000
  })
  t.same(resolveConfig(minimal, { source: 'x', env: {} }).tokenCache, {
    redisCommandTimeoutMs: 250,
    previousEncryptionKeys: [],
    l1: { maxEntries: 50_000, maxBytes: 134_217_728 },
    expiryMarginSeconds: 300,
    lockMs: 3000
  }, 'no tokenCache: L1 only, with the defaults')
  t.same(resolveConfig({ ...minimal, tokenCache: { l1: { maxEntries: 10 } } }, { source: 'x', env: {} }).tokenCache.l1, { maxEntries: 10, maxBytes: 134_217_728 }, 'one bound given, the other defaulted')
  for (const url of ['redis://h:6379/1', 'rediss://:p@h', 'rediss+sentinel://s1,s2/m/2', 'redis+cluster://n1:7000,n2:7001']) {
    t.equal(resolveConfig({ ...minimal, tokenCache: { redis: { url }, encryptionKey: key } }, { source: 'x', env: {} }).tokenCache.redisUrl, url, url)
  }
  t.same(issues(() => resolveConfig({
    ...minimal,
    tokenCache: { redis: { url: 'memcached://h' }, encryptionKey: 'short', l1: { maxEntries: 0 }, lockMs: 5, extra: 1 }
  }, { source: 'x', env: {} })), [
    'tokenCache.extra: unknown key',
    'tokenCache.redis.url: expected a redis://, rediss://, redis+sentinel:// or redis+cluster:// URL, got "memcached://h"',
    'tokenCache.encryptionKey: expected a secret of at least 16 characters (32 random bytes, base64, recommended), got a string of 5 characters',
    'tokenCache.l1.maxEntries: expected an integer of at least 1, got 0',
    'tokenCache.lockMs: expected an integer from 100 to 60000, got 5'
  ])
  t.same(issues(() => resolveConfig({ ...minimal, tokenCache: { redis: { url: 'redis+sentinel://s1:26379' }, encryptionKey: key } }, { source: 'x', env: {} })),
    ['tokenCache.redis.url: a sentinel URL names the master after the hosts: redis+sentinel://host:26379/mymaster'])
})

t.test('a ${ that is not a well-formed ${env:NAME} is refused with its key path, not used as a literal', async (t) => { // eslint-disable-line no-template-curly-in-string
  for (const bad of ['${GW_SECRET}', '${env:}', '${env:1X}', '${env:A', 'x${env:OK}y${', '${ env:OK }']) { // eslint-disable-line no-template-curly-in-string
    const found = issues(() => resolveConfig({
      ...minimal,
      identity: { ...minimal.identity, credential: { clientSecret: bad } }
    }, { source: 'test', env: { OK: 'fine', GW_SECRET: 'leaked?' } }))
    t.same(found, ['identity.credential.clientSecret: has a ${ that is not a well-formed ${env:NAME} reference (NAME: letters, digits and _, not starting with a digit)'], bad) // eslint-disable-line no-template-curly-in-string
  }
  const ok = resolveConfig({ ...minimal, identity: { ...minimal.identity, credential: { clientSecret: 'a${env:OK}b${env:_2}' } } }, { source: 'test', env: { OK: 'x', _2: 'y' } }) // eslint-disable-line no-template-curly-in-string
  t.same(ok.identity.credential, { kind: 'clientSecret', clientSecret: 'axby' })
})

t.test('no config error shows a secret, a URL\'s credentials, or a value that came from ${env:NAME}', async (t) => { // eslint-disable-line no-template-curly-in-string
  const found = issues(() => resolveConfig({
    identity: { tenantId: '${env:TENANT}', clientId: CLIENT, credential: { clientSecret: 12345 } }, // eslint-disable-line no-template-curly-in-string
    routes: [{ ...minimal.routes[0], upstream: 'ftp://relay:Upstream@Pw@x/api?code=FunctionKey' }],
    tokenCache: {
      redis: { url: 'memcached://:RedisPw@h:6379/0?sentinelPassword=SentinelPw' },
      encryptionKey: '${env:GATEWAY_CACHE_KEY}', // eslint-disable-line no-template-curly-in-string
      previousEncryptionKeys: ['oldsecretkey']
    }
  }, { source: 'test', env: { TENANT: 'contoso', GATEWAY_CACHE_KEY: 'mysecretkey' } }))
  t.same(found, [
    "identity.tenantId: expected a tenant GUID or 'organizations', got a string of 7 characters (from ${env:TENANT})", // eslint-disable-line no-template-curly-in-string
    'identity.credential.clientSecret: expected a non-empty string, got a number',
    'routes.0.upstream: expected an http(s) URL, got "ftp://***@x/api?***"',
    'tokenCache.redis.url: expected a redis://, rediss://, redis+sentinel:// or redis+cluster:// URL, got "memcached://***@h:6379/0?***"',
    'tokenCache.encryptionKey: expected a secret of at least 16 characters (32 random bytes, base64, recommended), got a string of 11 characters (from ${env:GATEWAY_CACHE_KEY})', // eslint-disable-line no-template-curly-in-string
    'tokenCache.previousEncryptionKeys.0: expected a secret of at least 16 characters (32 random bytes, base64, recommended), got a string of 12 characters'
  ])
  const misplaced = issues(() => resolveConfig({
    ...minimal,
    identity: { ...minimal.identity, credential: 'PlainSecret' },
    tokenCache: { previousEncryptionKeys: 'AnotherSecret' }
  }, { source: 'test', env: {} }))
  t.match(misplaced, [/^identity\.credential: expected .*, got a string of 11 characters$/, /^tokenCache\.previousEncryptionKeys: expected .*, got a string of 13 characters$/],
    'a secret where its block or list belongs is not shown either')
  t.same(issues(() => resolveConfig({ ...minimal, tokenCache: { redis: { url: 'redis+cluster://u:SecretPw@' }, encryptionKey: 'k'.repeat(32) } }, { source: 'test', env: {} })),
    ['tokenCache.redis.url: the user or password holds an unencoded @ or / (percent-encode them: @ is %40, / is %2F)'])
  t.same(issues(() => resolveConfig({ ...minimal, tokenCache: { redis: { url: 'redis+sentinel://u:Secret/Pw@h:26379/m' }, encryptionKey: 'k'.repeat(32) } }, { source: 'test', env: {} })),
    ['tokenCache.redis.url: the user or password holds an unencoded @ or / (percent-encode them: @ is %40, / is %2F)'])
})
