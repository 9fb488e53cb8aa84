import t from 'tap'
import type { InsufficientScopeError } from '../../src/errors'
import { bearerToken } from '../../src/validation/bearer'
import { IssuerPolicy } from '../../src/validation/issuer-policy'
import { principalFromClaims } from '../../src/validation/principal'
import { authorize } from '../../src/validation/requirements'

const TID = '7d3c1b52-6e5c-4a1f-9c0e-2f4b8a6d9e10'
const OTHER = '0f0f0f0f-0000-4000-8000-000000000000'

t.test('bearer token extraction', async (t) => {
  t.equal(bearerToken('Bearer abc.deg.ghk'), 'abc.deg.ghk')
  t.equal(bearerToken('bearer   abc.deg.ghk  '), 'abc.deg.ghk', 'scheme is case-insensitive, spacing tolerated')
  const cases: Array<[string | undefined, string, RegExp]> = [
    [undefined, 'OBO_NO_TOKEN', /No access token/],
    ['', 'OBO_NO_TOKEN', /No access token/],
    ['Basic dXNlcjpwYXNz', 'OBO_NO_TOKEN', /Bearer scheme/],
    ['Bearer', 'OBO_INVALID_TOKEN', /empty/],
    ['Bearer a.b.c d.e.f', 'OBO_INVALID_TOKEN', /exactly one/],
    ['Bearer a"b', 'OBO_INVALID_TOKEN', /malformed/],
    ['Bearer abc.deg.ghl', 'OBO_INVALID_TOKEN', /canonical/],
    ['Bearer ab.dQ.gA', 'OBO_INVALID_TOKEN', /canonical/],
    ['Bearer abc.deg', 'OBO_INVALID_TOKEN', /canonical/],
    ['Bearer abc.de+g.ghk', 'OBO_INVALID_TOKEN', /canonical/],
    ['Bearer abcde.deg.ghk', 'OBO_INVALID_TOKEN', /canonical/],
    ['Bearer ' + 'a'.repeat(17000), 'OBO_INVALID_TOKEN', /malformed/]
  ]
  for (const [header, code, message] of cases) {
    t.throws(() => bearerToken(header), { code, message }, String(header).slice(0, 30))
  }
})

t.test('issuer policy: v1 and v2 issuers, tenant allow-list, tid/iss agreement', async (t) => {
  const single = new IssuerPolicy({ v2: `https://login.example/${TID}/v2.0`, v1: `https://sts.windows.net/${TID}/` }, [TID])
  t.equal(single.tenantOf(`https://login.example/${TID}/v2.0`, TID), TID)
  t.equal(single.tenantOf(`https://sts.windows.net/${TID}/`, TID.toUpperCase()), TID)
  t.throws(() => single.tenantOf('https://evil.example/v2.0', TID), { message: 'The token issuer is not trusted' })
  t.throws(() => single.tenantOf(`https://login.example/${TID}/v2.0`, 'not-a-guid'), { message: 'The token has no valid tid claim' })
  t.throws(() => single.tenantOf(`https://login.example/${TID}/v2.0`, OTHER), { message: `Tenant ${OTHER} is not allowed to call this API` })

  const multi = new IssuerPolicy({ v2: 'https://login.example/{tenantid}/v2.0', v1: 'https://sts.windows.net/{tenantid}/' }, [TID, OTHER])
  t.equal(multi.tenantOf(`https://login.example/${OTHER}/v2.0`, OTHER), OTHER)
  t.throws(() => multi.tenantOf(`https://login.example/${TID}/v2.0`, OTHER), { code: 'OBO_INVALID_TOKEN' }, 'iss of one tenant with tid of another')
})

t.test('principals: delegated, app-only, and tokens that carry no permission', async (t) => {
  const user = principalFromClaims({ scp: 'a b', azp: 'client', oid: 'o', sub: 's', exp: 10, ver: '2.0', xms_cc: ['CP1'], acrs: ['c1'], name: 'N', preferred_username: 'u@x' }, TID)
  t.same(user, { kind: 'user', tenantId: TID, clientId: 'client', objectId: 'o', expiresAt: 10, tokenVersion: '2.0', subject: 's', scopes: ['a', 'b'], clientCapabilities: ['cp1'], authContexts: ['c1'], name: 'N', username: 'u@x' })
  const v1 = principalFromClaims({ scp: 'a', appid: 'client', oid: 'o', exp: 1, upn: 'u@x', xms_cc: 'cp1' }, TID)
  t.match(v1, { kind: 'user', clientId: 'client', tokenVersion: '1.0', subject: 'o', username: 'u@x', clientCapabilities: ['cp1'] })
  t.match(principalFromClaims({ roles: ['R'], azp: 'daemon', oid: 'sp', exp: 1 }, TID), { kind: 'app', roles: ['R'], clientId: 'daemon' })
  t.match(principalFromClaims({ roles: ['R'], scp: '', idtyp: 'app', azp: 'daemon', oid: 'sp' }, TID), { kind: 'app' })
  t.throws(() => principalFromClaims({ azp: 'c', oid: 'o' }, TID), { message: 'The token carries neither scp nor roles' })
  t.throws(() => principalFromClaims({ idtyp: 'app', azp: 'c', oid: 'o' }, TID), { message: 'The app-only token carries no roles' })
  t.throws(() => principalFromClaims({ scp: 'a', oid: 'o' }, TID), { message: 'The token names no client application (azp/appid)' })
  t.throws(() => principalFromClaims({ scp: 'a', azp: 'c' }, TID), { message: 'The token has no oid claim' })
})

t.test('route requirements are any-of and refuse callers the route has no block for', async (t) => {
  const user = principalFromClaims({ scp: 'read', azp: 'c', oid: 'o' }, TID)
  const app = principalFromClaims({ roles: ['Relay'], azp: 'd', oid: 's' }, TID)
  const both = { user: { requireScopes: ['write', 'read'] }, app: { requireRoles: ['Relay'] } }
  t.doesNotThrow(() => authorize(user, both))
  t.doesNotThrow(() => authorize(app, both))
  const err = t.throws(() => authorize(user, { user: { requireScopes: ['write'] } })) as InsufficientScopeError
  t.same(err.scopes, ['write'])
  t.throws(() => authorize(app, { user: { requireScopes: ['read'] } }), { message: 'This route does not accept app-only tokens' })
  t.throws(() => authorize(user, { app: { requireRoles: ['Relay'] } }), { message: 'This route does not accept delegated (user) tokens' })
  t.throws(() => authorize(app, { app: { requireRoles: ['Other'] } }), { message: 'The token needs one of the app roles: Other' })
})
