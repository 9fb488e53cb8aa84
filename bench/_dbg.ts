import { startEmulator, DEV_IDS } from '../src/emulator'
import { MsalKit } from '../test/helpers/msal-clients'
async function main () {
  const em = await startEmulator()
  const kit = new MsalKit(em)
  const a = (await kit.signIn()).accessToken
  const cca = kit.confidentialClient()
  const S = [`${DEV_IDS.sampleApi.identifierUri}/Items.Read`]
  const r1 = await cca.acquireTokenOnBehalfOf({ oboAssertion: a, scopes: S })
  const r2 = await cca.acquireTokenOnBehalfOf({ oboAssertion: a, scopes: S })
  console.log('plain second call fromCache', r2?.fromCache, r1?.accessToken === r2?.accessToken, em.tokenRequests().length)
  const ser = cca.getTokenCache().serialize()
  cca.getTokenCache().deserialize(ser)
  const r3 = await cca.acquireTokenOnBehalfOf({ oboAssertion: a, scopes: S })
  console.log('after deserialize(self)', r3?.fromCache, em.tokenRequests().length)
  await kit.close(); await em.close()
}
main()
