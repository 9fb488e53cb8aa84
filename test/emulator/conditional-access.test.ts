import t from 'tap'
import { DEV_IDS, defaultSeed, parseSeed, startEmulator } from '../../src/emulator'
import { jwtClaims, MsalKit } from '../helpers/msal-clients'

const ITEMS_READ = `${DEV_IDS.sampleApi.identifierUri}/Items.Read`

t.test('session revocation, nbf claims requests and MFA policies, through real msal-node', async (t) => {
  const emulator = await startEmulator({
    seed: { ...defaultSeed, mfaPolicies: [{ resource: DEV_IDS.sampleApi.clientId, shape: 'interaction_required', userObjectId: DEV_IDS.bob.objectId, policyId: 'b0b0b0b0-0000-4000-8000-00000000b0b0' }] }
  })
  t.teardown(() => emulator.close())
  const kit = new MsalKit(emulator)
  t.teardown(() => kit.close())
  const obo = async (assertion: string, claims?: string) =>
    await kit.confidentialClient().acquireTokenOnBehalfOf({ oboAssertion: assertion, scopes: [ITEMS_READ], skipCache: true, ...(claims === undefined ? {} : { claims }) })

  await t.test('revokeSessions: older assertions get interaction_required + AADSTS50173 + nbf claims; a new sign-in works', async (t) => {
    const old = (await kit.signIn()).accessToken
    t.equal(emulator.sessions.revocationTime(DEV_IDS.tenantId, DEV_IDS.alice.objectId), undefined)
    const revokedAt = emulator.sessions.revoke(DEV_IDS.tenantName, DEV_IDS.alice.objectId)
    t.equal(emulator.sessions.revocationTime(DEV_IDS.tenantId, DEV_IDS.alice.objectId), revokedAt, 'by tenant name or id')
    t.ok(Number(jwtClaims(old).iat) < revokedAt)
    await t.rejects(obo(old), {
      name: 'InteractionRequiredAuthError',
      errorCode: 'interaction_required',
      errorNo: 50173,
      errorMessage: /AADSTS50173: The provided grant has expired due to it being revoked, a fresh auth token is needed/,
      claims: `{"access_token":{"nbf":{"essential":true, "value":"${revokedAt}"}}}`
    })
    t.match(emulator.records.tokenRequests().at(-1), { status: 400, errorCode: 50173, userObjectId: DEV_IDS.alice.objectId })

    const fresh = await kit.signIn()
    t.ok(Number(jwtClaims(fresh.accessToken).iat) >= revokedAt && Number(jwtClaims(fresh.accessToken).nbf) >= revokedAt, 'issued at or after the revocation')
    const downstream = await obo(fresh.accessToken)
    t.ok(Number(jwtClaims(downstream!.accessToken).iat) >= revokedAt)

    const again = emulator.sessions.revoke(DEV_IDS.tenantId, DEV_IDS.alice.objectId)
    t.ok(again > Number(jwtClaims(fresh.accessToken).iat), 'a second revocation postdates every token issued before it, even within the same second')
    await t.rejects(obo(fresh.accessToken), { name: 'InteractionRequiredAuthError', errorNo: 50173 })
    t.throws(() => emulator.sessions.revoke('nowhere', DEV_IDS.alice.objectId), /no tenant/)
  })

  await t.test('an nbf claims request: the OBO assertion must not be older, and tokens are not issued before it', async (t) => {
    const token = (await kit.signIn({ username: DEV_IDS.bob.username, password: DEV_IDS.bob.password, scopes: [ITEMS_READ] })).accessToken
    const iat = Number(jwtClaims(token).iat)
    const satisfied = await kit.signIn({ username: DEV_IDS.bob.username, password: DEV_IDS.bob.password, scopes: [ITEMS_READ], claims: `{"access_token":{"nbf":{"essential":true,"value":"${iat + 2}"}}}` })
    t.equal(jwtClaims(satisfied.accessToken).iat, iat + 2, 'the password grant honours nbf')
    t.equal(jwtClaims(satisfied.accessToken).nbf, iat + 2)

    const assertion = (await kit.signIn({ clientCapabilities: ['CP1'] })).accessToken
    const at = Number(jwtClaims(assertion).iat)
    await t.rejects(obo(assertion, `{"access_token":{"nbf":{"essential":true,"value":"${at + 1}"}}}`), { name: 'InteractionRequiredAuthError', errorNo: 50173, claims: `{"access_token":{"nbf":{"essential":true, "value":"${at + 1}"}}}` })
    const ok = await obo(assertion, `{"access_token":{"nbf":{"essential":true,"value":"${at}"}}}`)
    t.ok(Number(jwtClaims(ok!.accessToken).iat) >= at)
  })

  await t.test('MFA policies: by seed and at run time, per user and resource; the policy\'s claims complete MFA and amr flows through OBO', async (t) => {
    const bob = { username: DEV_IDS.bob.username, password: DEV_IDS.bob.password }
    const bobToken = (await kit.signIn(bob)).accessToken
    const seededClaims = '{"access_token":{"polids":{"essential":true,"values":["b0b0b0b0-0000-4000-8000-00000000b0b0"]}}}'
    await t.rejects(obo(bobToken), { name: 'InteractionRequiredAuthError', errorCode: 'interaction_required', errorNo: 50079, claims: seededClaims }, 'the seed\'s policy, for bob')
    const aliceToken = (await kit.signIn()).accessToken
    t.ok(await obo(aliceToken), 'not for alice')

    const policy = emulator.mfa.require({ resource: DEV_IDS.sampleApi.identifierUri })
    t.equal(policy.policyId, '3e5e4b1c-7b0b-4f38-8a7d-4c2b8e1d9f00', 'the fixtures\' policy id by default')
    await t.rejects(obo(aliceToken), { name: 'InteractionRequiredAuthError', errorCode: 'invalid_grant', subError: 'basic_action', errorNo: 50076, claims: policy.claims })
    t.equal(policy.hits(), 1)

    const stepped = (await kit.signIn({ claims: policy.claims })).accessToken
    t.same(jwtClaims(stepped).amr, ['pwd', 'mfa'])
    const downstream = await obo(stepped)
    t.same(jwtClaims(downstream!.accessToken).amr, ['pwd', 'mfa'], 'OBO carries the assertion\'s amr')
    t.same(jwtClaims((await kit.signIn({ claims: '{"access_token":{"capolids":{"essential":true,"values":["not-a-policy"]}}}' })).accessToken).amr, ['pwd'], 'an unknown policy id completes nothing')

    policy.remove()
    t.ok(await obo(aliceToken), 'removed')
    emulator.mfa.clear()
    t.ok(await obo(bobToken), 'the seed\'s policy cleared too')
  })

  await t.test('a seed policy must name a registered resource', async (t) => {
    t.throws(() => parseSeed({ ...defaultSeed, mfaPolicies: [{ resource: 'api://nothing' }] }), /mfaPolicies\[0\]\.resource: no application 'api:\/\/nothing'/)
    t.throws(() => parseSeed({ ...defaultSeed, mfaPolicies: [{ resource: DEV_IDS.sampleApi.clientId, shape: 'sms' }] }), /mfaPolicies\[0\]\.shape/)
  })
})
