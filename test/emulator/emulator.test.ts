import { spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { createServer, type AddressInfo } from 'node:net'
import { X509Certificate, createHash, createPublicKey, createVerify } from 'node:crypto'
import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { Client, request } from 'undici'
import { DEV_IDS, defaultSeed, parseSeed, runEmulatorCommand, startEmulator, type EmulatorSeed, type RunningEmulator } from '../../src/emulator'
import { MsalKit, jwtClaims, jwtHeader, startEmulatorWithKit } from '../helpers/msal-clients'
import { tsxChildEnv } from '../helpers/tsx-child'

// Three emulators and two child processes (the CLI through tsx): more than the suite's two minutes on a busy machine.
t.setTimeout(300_000)

let emulator: RunningEmulator
let kit: MsalKit

t.before(async () => { ({ emulator, kit } = await startEmulatorWithKit(t)) })

async function getJson (path: string, on: { url: string } = emulator): Promise<{ status: number, body: Record<string, unknown>, headers: Record<string, unknown> }> {
  const res = await request(`${on.url}${path}`, { dispatcher: kit.agent })
  return { status: res.statusCode, body: await res.body.json() as Record<string, unknown>, headers: res.headers }
}

interface Jwk { kty: string, use: string, kid: string, x5t: string, n: string, e: string, x5c: string[], issuer: string }

t.test('startup', async (t) => {
  t.match(emulator.url, /^https:\/\/127\.0\.0\.1:\d+$/)
  t.equal(emulator.host, emulator.url.slice('https://'.length))
  t.equal(await readFile(emulator.caFile, 'utf8'), emulator.caPem, 'the CA is written to the data dir')
  const ca = new X509Certificate(emulator.caPem)
  t.ok(ca.ca)
  t.match(ca.subject, /CN=obo-gateway emulator CA/)
  t.same(emulator.seed, defaultSeed)
})

t.test('v2 metadata per tenant, by id or name, and templated for organizations/common', async (t) => {
  for (const segment of [DEV_IDS.tenantId, DEV_IDS.tenantName]) {
    const { status, body, headers } = await getJson(`/${segment}/v2.0/.well-known/openid-configuration`)
    t.equal(status, 200)
    t.match(headers['cache-control'], /no-store/)
    t.match(body, {
      issuer: `${emulator.url}/${DEV_IDS.tenantId}/v2.0`,
      token_endpoint: `${emulator.url}/${DEV_IDS.tenantId}/oauth2/v2.0/token`,
      authorization_endpoint: `${emulator.url}/${DEV_IDS.tenantId}/oauth2/v2.0/authorize`,
      jwks_uri: `${emulator.url}/${DEV_IDS.tenantId}/discovery/v2.0/keys`,
      id_token_signing_alg_values_supported: ['RS256'],
      subject_types_supported: ['pairwise'],
      token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
      scopes_supported: ['openid', 'profile', 'email', 'offline_access']
    }, `by ${segment}`)
  }
  for (const segment of ['organizations', 'common']) {
    const { body } = await getJson(`/${segment}/v2.0/.well-known/openid-configuration`)
    t.match(body, {
      issuer: `${emulator.url}/{tenantid}/v2.0`,
      token_endpoint: `${emulator.url}/${segment}/oauth2/v2.0/token`,
      jwks_uri: `${emulator.url}/${segment}/discovery/v2.0/keys`
    }, segment)
  }
  t.match(await getJson('/fabrikam/v2.0/.well-known/openid-configuration'), { status: 400, body: { error: 'invalid_tenant', error_codes: [90002] } })
})

t.test('a tenant is also named by its initial domain, <name>.onmicrosoft.com, as in Entra', async (t) => {
  const domain = `${DEV_IDS.tenantName}.onmicrosoft.com`
  t.match(await getJson(`/${domain}/v2.0/.well-known/openid-configuration`), {
    status: 200,
    body: { issuer: `${emulator.url}/${DEV_IDS.tenantId}/v2.0`, token_endpoint: `${emulator.url}/${DEV_IDS.tenantId}/oauth2/v2.0/token` }
  })
  t.equal((await getJson(`/${domain.toUpperCase()}/discovery/v2.0/keys`)).status, 200, 'case-insensitive, JWKS too')

  // msal-node with the domain in its authority: sign-in, OBO and client credentials.
  const user = await kit.signIn({ tenant: domain })
  t.match(jwtClaims(user.accessToken), { tid: DEV_IDS.tenantId, oid: DEV_IDS.alice.objectId })
  const obo = await kit.confidentialClient({ tenant: domain }).acquireTokenOnBehalfOf({ oboAssertion: user.accessToken, scopes: [`${DEV_IDS.sampleApi.identifierUri}/Items.Read`] })
  t.match(jwtClaims(obo?.accessToken ?? ''), { tid: DEV_IDS.tenantId, aud: DEV_IDS.sampleApi.clientId, scp: 'Items.Read' })
  const app = await kit.appToken({ tenant: domain })
  t.match(jwtClaims(app.accessToken), { tid: DEV_IDS.tenantId, roles: [DEV_IDS.gateway.appRole] })

  t.match(await getJson('/fabrikam.onmicrosoft.com/v2.0/.well-known/openid-configuration'), { status: 400, body: { error: 'invalid_tenant', error_codes: [90002] } }, 'an unknown domain is still AADSTS90002')
  t.match(await getJson(`/${DEV_IDS.tenantName}.onmicrosoft.com.evil/v2.0/.well-known/openid-configuration`), { status: 400 }, 'only the exact domain')
})

t.test('v1 metadata', async (t) => {
  const { body } = await getJson(`/${DEV_IDS.tenantName}/.well-known/openid-configuration`)
  t.match(body, {
    issuer: `https://sts.windows.net/${DEV_IDS.tenantId}/`,
    token_endpoint: `${emulator.url}/${DEV_IDS.tenantId}/oauth2/token`,
    jwks_uri: `${emulator.url}/${DEV_IDS.tenantId}/discovery/keys`
  })
  t.equal((await getJson('/common/.well-known/openid-configuration')).body.issuer, 'https://sts.windows.net/{tenantid}/')
})

t.test('JWKS: two keys, kid = x5t = thumbprint, x5c verifies, issuer template', async (t) => {
  const { body } = await getJson(`/${DEV_IDS.tenantId}/discovery/v2.0/keys`)
  const keys = body.keys as Jwk[]
  t.equal(keys.length, 2)
  for (const key of keys) {
    t.match(key, { kty: 'RSA', use: 'sig', e: 'AQAB', issuer: `${emulator.url}/{tenantid}/v2.0` })
    t.equal(key.kid, key.x5t)
    t.equal(key.x5c.length, 1)
    const der = Buffer.from(key.x5c[0] ?? '', 'base64')
    t.equal(key.kid, createHash('sha1').update(der).digest('base64url'), 'kid is the SHA-1 thumbprint of the certificate')
    const cert = new X509Certificate(der)
    t.ok(cert.verify(cert.publicKey), 'the certificate is self-signed and its signature verifies')
    t.same(cert.publicKey.export({ format: 'jwk' }), { kty: 'RSA', n: key.n, e: key.e }, 'n and e are the certificate key')
  }
  t.not(keys[0]?.kid, keys[1]?.kid)
  t.same((await getJson(`/${DEV_IDS.tenantName}/discovery/keys`)).body.keys, keys, 'v1 keys path serves the same keys')
  t.same(((await getJson('/common/discovery/v2.0/keys')).body.keys as Jwk[]).map((k) => k.kid), keys.map((k) => k.kid), 'common lists every tenant key')

  const token = emulator.keys.sign(DEV_IDS.tenantName, { hello: 'world' }, { typ: 'at+jwt' })
  t.same(jwtClaims(token), { hello: 'world' }, 'signToken adds nothing to the payload')
  t.match(jwtHeader(token), { alg: 'RS256', typ: 'at+jwt', kid: keys[0]?.kid })
  const [header, payload, signature] = token.split('.')
  const verified = createVerify('RSA-SHA256').update(`${header}.${payload}`).verify(createPublicKey({ key: { kty: 'RSA', n: keys[0]?.n ?? '', e: 'AQAB' }, format: 'jwk' }), Buffer.from(signature ?? '', 'base64url'))
  t.ok(verified, 'the token verifies with the first published key')
  t.throws(() => emulator.keys.sign('fabrikam', {}), /no tenant 'fabrikam'/)
})

t.test('unknown paths answer 404 JSON', async (t) => {
  const { status, body, headers } = await getJson('/nowhere/at/all?x=1')
  t.equal(status, 404)
  t.match(headers['content-type'], /application\/json/)
  t.match(headers['cache-control'], /no-store/)
  t.match(body, { error: 'not_found', error_description: /GET \/nowhere\/at\/all\./, correlation_id: String })
})

t.test('the data dir CA survives a restart; v1 resource apps get v1 tokens', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'obo-emulator-test-'))
  const first = await startEmulator({ dataDir })
  const firstCa = first.caPem
  await first.close()

  const tenantId = '2f6a0c1d-5b4e-4c3a-9d2e-1a0b9c8d7e6f'
  const seed: EmulatorSeed = {
    tenants: [{
      id: tenantId,
      name: 'fabrikam',
      applications: [
        { clientId: '3a1b2c3d-0000-4000-8000-000000000001', displayName: 'legacy-api', identifierUris: ['https://legacy.fabrikam.example'], appRoles: ['Legacy.Read'] },
        { clientId: '3a1b2c3d-0000-4000-8000-000000000002', displayName: 'worker', secrets: ['worker-secret'] }
      ],
      appRoleAssignments: [{ clientId: '3a1b2c3d-0000-4000-8000-000000000002', resource: '3a1b2c3d-0000-4000-8000-000000000001', role: 'Legacy.Read' }]
    }]
  }
  const second = await startEmulator({ dataDir, seed, tokenLifetimeSeconds: 600 })
  t.teardown(() => second.close())
  t.equal(second.caPem, firstCa, 'the CA is reused')
  t.equal(second.caFile, join(dataDir, 'ca.pem'))
  // This pool trusts only the first run's CA: the new server certificate must chain to it.
  const firstRunTrust = new MsalKit({ url: second.url, host: second.host, caPem: firstCa })
  t.teardown(() => firstRunTrust.close())
  t.equal((await request(`${second.url}/${tenantId}/v2.0/.well-known/openid-configuration`, { dispatcher: firstRunTrust.agent })).statusCode, 200)

  const secondKit = new MsalKit(second)
  t.teardown(() => secondKit.close())
  const result = await secondKit.appToken({ tenant: 'fabrikam', clientId: '3a1b2c3d-0000-4000-8000-000000000002', clientSecret: 'worker-secret', scopes: ['https://legacy.fabrikam.example/.default'] })
  const claims = jwtClaims(result.accessToken)
  t.match(claims, {
    aud: 'https://legacy.fabrikam.example',
    iss: `https://sts.windows.net/${tenantId}/`,
    appid: '3a1b2c3d-0000-4000-8000-000000000002',
    appidacr: '1',
    idtyp: 'app',
    roles: ['Legacy.Read'],
    ver: '1.0'
  })
  t.equal(claims.exp as number - (claims.iat as number), 600)
  t.notOk('azp' in claims)
  const header = jwtHeader(result.accessToken)
  t.equal(header.x5t, header.kid, 'v1 tokens carry x5t too')
})

t.test('seed validation names the key path', async (t) => {
  const bad = structuredClone(defaultSeed) as unknown as { tenants: Array<Record<string, unknown> & { applications: Array<Record<string, unknown>> }> }
  const tenant = bad.tenants[0]
  if (tenant === undefined) throw new Error('default seed has a tenant')
  tenant.applications[1] = { ...tenant.applications[1], clientId: 'not-a-guid', colour: 'blue' }
  t.throws(() => parseSeed(bad, 'bad.yaml'), {
    name: 'SeedError',
    message: /^invalid emulator seed in bad\.yaml: /,
    issues: ['tenants[0].applications[1].colour: unknown key', 'tenants[0].applications[1].clientId: expected a GUID, got "not-a-guid"']
  })
  const dangling = structuredClone(defaultSeed)
  dangling.tenants[0]?.appRoleAssignments?.push({ clientId: DEV_IDS.daemon.clientId, resource: DEV_IDS.sampleApi.clientId, role: 'Nope' })
  t.throws(() => parseSeed(dangling), /tenants\[0\]\.appRoleAssignments\[2\]\.role: 'Nope' is not an app role of sample-api/)
  const duplicate = structuredClone(defaultSeed)
  const copy = structuredClone(duplicate.tenants[0])
  if (copy !== undefined) duplicate.tenants.push(copy)
  t.throws(() => parseSeed(duplicate), /tenants\[1\]: a tenant with id or name/)
  t.throws(() => parseSeed({}), /\(root\)|tenants: missing/)
  await t.rejects(startEmulator({ seed: { tenants: [] } }), /tenants: /)
})

t.test('CLI: bad arguments and bad seed files give one readable line and exit code 1', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'obo-emulator-cli-'))
  const files = {
    wrongType: join(dir, 'wrong-type.yaml'),
    notYaml: join(dir, 'broken.yaml'),
    notJson: join(dir, 'broken.json')
  }
  await writeFile(files.wrongType, 'tenants:\n  - id: 7d3c1b52-6e5c-4a1f-9c0e-2f4b8a6d9e10\n    name: contoso\n    applications: yes\n')
  await writeFile(files.notYaml, 'tenants: [\n')
  await writeFile(files.notJson, '{"tenants":')
  const cases: Array<[string[], RegExp]> = [
    [['--seed', files.wrongType], /seed in .*wrong-type\.yaml: tenants\[0\]\.applications: expected array/],
    [['--seed', files.notYaml], /broken\.yaml: not valid YAML/],
    [['--seed', files.notJson], /broken\.json: not valid JSON/],
    [['--seed', join(dir, 'missing.yaml')], /missing\.yaml: cannot read the file \(ENOENT\)/],
    [['--colour', 'blue'], /Unknown option '--colour'/],
    [['--port', 'eighty'], /--port must be a number/]
  ]
  const write = process.stderr.write.bind(process.stderr)
  for (const [argv, expected] of cases) {
    let stderr = ''
    process.stderr.write = ((chunk: string | Uint8Array) => { stderr += String(chunk); return true }) as typeof process.stderr.write
    try {
      await runEmulatorCommand(argv)
    } finally {
      process.stderr.write = write
    }
    const code = process.exitCode
    process.exitCode = 0
    t.equal(code, 1, `${argv.join(' ')}: exit code 1`)
    t.match(stderr, expected, argv.join(' '))
    t.match(stderr, /^obo-gateway emulator: /)
    t.notMatch(stderr, /\n\s+at /, 'no stack trace')
  }
})

t.test('CLI: --help prints every option and exits 0', async (t) => {
  let stdout = ''
  const write = process.stdout.write.bind(process.stdout)
  process.stdout.write = ((chunk: string | Uint8Array) => { stdout += String(chunk); return true }) as typeof process.stdout.write
  try {
    await runEmulatorCommand(['--help'])
  } finally {
    process.stdout.write = write
  }
  t.not(process.exitCode, 1)
  t.match(stdout, /^usage: obo-gateway emulator \[options\]/)
  for (const option of ['--host H', '--port N', '--seed FILE', '--data-dir DIR', '--public-url URL', '--no-control-api', '-h, --help']) t.match(stdout, option, option)

  // The same through the real command line, as a user types it (under tsx, which gives a dynamic
  // import of a TypeScript module its named exports as node does for the built dist/).
  const cli = spawnSync(process.execPath, ['--import', 'tsx', join(__dirname, '../../src/cli.ts'), 'emulator', '--help'], { encoding: 'utf8', env: tsxChildEnv(), timeout: 60_000 })
  t.equal(cli.status, 0, 'obo-gateway emulator --help exits 0')
  t.equal(cli.stdout, stdout, 'and prints the usage')
  t.notMatch(cli.stderr, /Unknown option/)
})

t.test('CLI: a port in use is one line naming it, no stack trace', async (t) => {
  const busy = createServer()
  busy.listen(0, '127.0.0.1')
  await once(busy, 'listening')
  t.teardown(() => { busy.close() })
  const { port } = busy.address() as AddressInfo
  const dataDir = await mkdtemp(join(tmpdir(), 'obo-emulator-busy-'))
  let stderr = ''
  const write = process.stderr.write.bind(process.stderr)
  process.stderr.write = ((chunk: string | Uint8Array) => { stderr += String(chunk); return true }) as typeof process.stderr.write
  const exitCode = process.exitCode
  try {
    await runEmulatorCommand(['--port', String(port), '--data-dir', dataDir])
    t.equal(process.exitCode, 1)
  } finally {
    process.stderr.write = write
    process.exitCode = exitCode
  }
  t.equal(stderr, `obo-gateway emulator: cannot listen on 127.0.0.1:${port}: the address is in use\n`)
})

t.test('CLI: serves until SIGTERM, prints what clients need; --no-control-api', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'obo-emulator-run-'))
  // The same TypeScript loader (and coverage hook) as this test process.
  const child = spawn(process.execPath, [...process.execArgv, '-e',
    `require('./src/emulator').runEmulatorCommand(['--port', '0', '--no-control-api', '--data-dir', ${JSON.stringify(dataDir)}])`],
  { cwd: join(__dirname, '..', '..'), stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString()
      if (stdout.includes('user bob@contoso.example')) resolve()
    })
    child.on('exit', () => reject(new Error(`the emulator exited early: ${stderr}`)))
  })
  t.match(stdout, /listening on https:\/\/127\.0\.0\.1:\d+/)
  t.match(stdout, new RegExp(`CA certificate: ${join(dataDir, 'ca.pem').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`))
  t.match(stdout, /@azure\/identity: authorityHost https:\/\/127\.0\.0\.1:\d+ with disableInstanceDiscovery: true/)
  t.match(stdout, `tenant contoso ${DEV_IDS.tenantId}`)
  t.match(stdout, `obo-gateway ${DEV_IDS.gateway.clientId} confidential (secret)`)
  t.match(stdout, `user alice@contoso.example ${DEV_IDS.alice.objectId}`)
  t.notMatch(stdout, /dev-gateway-secret|alice-dev-password/, 'no secrets printed')
  const url = /listening on (\S+)/.exec(stdout)?.[1] ?? ''
  const agent = new MsalKit({ url, host: '', caPem: await readFile(join(dataDir, 'ca.pem'), 'utf8') })
  t.equal((await request(`${url}/common/discovery/v2.0/keys`, { dispatcher: agent.agent })).statusCode, 200)
  t.match(stdout, 'control API: off (--no-control-api)')
  t.equal((await request(`${url}/_emulator/`, { dispatcher: agent.agent })).statusCode, 404, 'no control API')
  await agent.close()
  child.kill('SIGTERM')
  t.equal(await exited, 0)
  t.match(stdout, /SIGTERM received, stopping/)
})

t.test('a public URL (docker compose) becomes the issuer and a name on the certificate', async (t) => {
  const behind = await startEmulator({ publicUrl: 'https://emulator.test:9443' })
  t.teardown(() => behind.close())
  t.equal(behind.url, 'https://emulator.test:9443')
  t.equal(behind.host, 'emulator.test:9443')
  // Reach the real listener while presenting the public name, as a container on the compose network would.
  const client = new Client(`https://127.0.0.1:${behind.port}`, { connect: { ca: [behind.caPem], servername: 'emulator.test' } })
  t.teardown(() => client.close())
  const res = await client.request({ method: 'GET', path: `/${DEV_IDS.tenantId}/v2.0/.well-known/openid-configuration` })
  t.equal(res.statusCode, 200, 'the certificate is valid for the public name')
  t.match(await res.body.json(), {
    issuer: `https://emulator.test:9443/${DEV_IDS.tenantId}/v2.0`,
    token_endpoint: `https://emulator.test:9443/${DEV_IDS.tenantId}/oauth2/v2.0/token`
  })
})

t.test('key rollover at run time: the new key signs and is published, the old signing key is withdrawn', async (t) => {
  const own = await startEmulator()
  t.teardown(() => own.close())
  const ownKit = new MsalKit(own)
  t.teardown(() => ownKit.close())
  const keysPath = `/${DEV_IDS.tenantId}/discovery/v2.0/keys`
  const before = (await request(`${own.url}${keysPath}`, { dispatcher: ownKit.agent }).then((r) => r.body.json()) as { keys: Jwk[] }).keys.map((k) => k.kid)
  t.equal(own.keys.jwksFetches(DEV_IDS.tenantId), 1)
  const fresh = await own.keys.rotate(DEV_IDS.tenantName)
  const after = (await request(`${own.url}${keysPath}`, { dispatcher: ownKit.agent }).then((r) => r.body.json()) as { keys: Jwk[] }).keys.map((k) => k.kid)
  t.same(after, [fresh, before[1]], 'new key first, the other key kept, the old signing key gone')
  t.notOk(after.includes(before[0]!))
  t.equal(own.keys.jwksFetches(DEV_IDS.tenantId), 2)
  t.equal(jwtHeader((await ownKit.signIn()).accessToken).kid, fresh, 'tokens are signed with the new key')
})
