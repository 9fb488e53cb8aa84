/** The Entra ID emulator: HTTPS metadata, keys and token endpoint for local development and tests. */
export { startEmulator, type EmulatorOptions, type RunningEmulator } from './start'
export { defaultSeed, DEV_IDS, parseSeed, loadSeedFile, SeedError, type EmulatorSeed } from './seed'
export type { TokenRequestRecord } from './token-endpoint'
export type { FailureRule, FailureKind, FailureHandle } from './failure-rules'
export type { ServiceAccountTokenRequest } from './workload-issuers'
export type { ManagedIdentityRequestRecord } from './managed-identity'
export { createClientCertificate, type ClientCertificate } from './client-certificates'
export { runEmulatorCommand } from './cli'
