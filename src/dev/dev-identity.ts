import { DEV_IDS } from '../emulator'

/**
 * The `identity` block of a gateway registered in the emulator's development seed: what the dev
 * stack generates, and what tests start from (spread it and override what a case needs).
 */
export function devGatewayIdentity (emulator: { url: string, caFile: string }): {
  instance: string
  tenantId: string
  clientId: string
  credential: { clientSecret: string }
  tls: { caFile: string }
} {
  return {
    instance: emulator.url,
    tenantId: DEV_IDS.tenantId,
    clientId: DEV_IDS.gateway.clientId,
    credential: { clientSecret: DEV_IDS.gateway.secret },
    tls: { caFile: emulator.caFile }
  }
}
