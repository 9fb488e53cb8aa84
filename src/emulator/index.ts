/**
 * The Entra ID emulator, `obo-gateway/emulator`: HTTPS OpenID metadata, JWKS and token endpoint
 * of local tenants, for development and tests that drive real Entra client libraries.
 *
 * ```ts
 * import { startEmulator, DEV_IDS } from 'obo-gateway/emulator'
 * const emulator = await startEmulator()          // https://127.0.0.1:<port>, the built-in dev seed
 * emulator.failures.inject({ grant: 'obo', kind: 'throttled', times: 1 })
 * await emulator.close()
 * ```
 *
 * It imports nothing of the gateway: loading it never loads the gateway, and the reverse holds too.
 */
export { startEmulator, type EmulatorOptions, type RunningEmulator, type WorkloadControls } from './start'
export type { EmulatorControls, FailureControls, SessionControls, MfaControls, KeyControls, RecordControls, TokenRequestCounts } from './controls'
export { ControlError } from './controls'
export { defaultSeed, DEV_IDS } from './default-seed'
export { parseSeed, loadSeedFile, SeedError } from './seed'
export type { EmulatorSeed, FailureRule, FailureKind, MfaPolicy, MfaShape } from './seed-schema'
export type { TokenRequestRecord } from './token-endpoint'
export type { FailureHandle } from './failure-rules'
export type { MfaPolicyHandle } from './conditional-access'
export type { ServiceAccountTokenRequest } from './workload-issuers'
export type { ManagedIdentityRequestRecord } from './managed-identity'
export { createClientCertificate, type ClientCertificate } from './client-certificates'
export { runEmulatorCommand } from './cli'
