import t from 'tap'
import { DEV_IDS, defaultSeed, type EmulatorSeed } from '../../src/emulator'
import { Directory } from '../../src/emulator/directory'
import { delegatedScopes } from '../../src/emulator/scopes'
import { ConsentModel } from '../../src/emulator/signin/consent'

const home = defaultSeed.tenants[0]!
const seed: EmulatorSeed = { ...defaultSeed, tenants: [{ ...home, enforceConsent: true }] }
const directory = new Directory(seed)
const tenant = directory.tenants[0]!
const gateway = directory.application(tenant, DEV_IDS.gateway.clientId)!
const SAMPLE_DEFAULT = `${DEV_IDS.sampleApi.identifierUri}/.default`

t.test('.default at the token endpoint: what was granted of it, refused only when nothing was', async (t) => {
  const consents = new ConsentModel(directory)
  const asked = delegatedScopes(directory, tenant, SAMPLE_DEFAULT, gateway)
  t.same(asked.names, ['Items.Read', 'Items.Write'], 'no requiredResourceAccess: every exposed scope')
  t.throws(() => consents.permitted(tenant, gateway, asked, DEV_IDS.alice.objectId), { name: 'EntraError', code: 65001 })
  consents.add(tenant, { clientId: gateway.clientId, resource: DEV_IDS.sampleApi.clientId, scopes: ['Items.Write'] })
  const permitted = consents.permitted(tenant, gateway, asked, DEV_IDS.alice.objectId)
  t.same(permitted.names, ['Items.Write'])
  t.same(permitted.granted, [`${DEV_IDS.sampleApi.identifierUri}/Items.Write`, SAMPLE_DEFAULT])
  const named = delegatedScopes(directory, tenant, `${DEV_IDS.sampleApi.identifierUri}/Items.Read`, gateway)
  t.throws(() => consents.permitted(tenant, gateway, named, DEV_IDS.alice.objectId), { name: 'EntraError', code: 65001 }, 'a named scope must be granted itself')
})

t.test('a user grant covers that user only, an admin grant everyone; clear() drops the seed\'s too', async (t) => {
  const withSeeded = new Directory({ ...seed, tenants: [{ ...tenant, consents: [{ clientId: gateway.clientId, resource: DEV_IDS.sampleApi.identifierUri, scopes: ['Items.Read'] }] }] })
  const consents = new ConsentModel(withSeeded)
  const seeded = withSeeded.tenants[0]!
  const read = delegatedScopes(withSeeded, seeded, `${DEV_IDS.sampleApi.identifierUri}/Items.Read`, gateway)
  const write = delegatedScopes(withSeeded, seeded, `${DEV_IDS.sampleApi.identifierUri}/Items.Write`, gateway)
  t.same(consents.missing(seeded, gateway.clientId, read, DEV_IDS.bob.objectId), [])
  const id = consents.add(seeded, { clientId: gateway.clientId, resource: DEV_IDS.sampleApi.clientId, scopes: ['Items.Write'], userObjectId: DEV_IDS.alice.objectId })
  t.same(consents.missing(seeded, gateway.clientId, write, DEV_IDS.alice.objectId), [])
  t.same(consents.missing(seeded, gateway.clientId, write, DEV_IDS.bob.objectId), ['Items.Write'])
  t.ok(consents.remove(id))
  t.notOk(consents.remove(id))
  consents.clear()
  t.same(consents.missing(seeded, gateway.clientId, read, DEV_IDS.bob.objectId), ['Items.Read'])
})
