import { readClientCertificate } from '../acquisition/client-certificate'
import { GatewayCredentialError } from '../errors'
import { unreadable } from './file-problems'
import type { GatewayCredential } from './types'

/**
 * What check-config adds to validation: the credential's files exist and can be read, and a
 * certificate passes the check the gateway runs at start (key matches, RSA 2048+, in its validity
 * period). The gateway itself starts without them (it answers 503 and says why in its log and
 * /readyz), since a projected token or a mounted secret may appear after the process.
 */
export function credentialFileProblems (credential: GatewayCredential): string[] {
  const files: Array<[key: string, file: string]> = credential.kind === 'certificate'
    ? [['identity.credential.certificate.certificateFile', credential.certificateFile], ['identity.credential.certificate.privateKeyFile', credential.privateKeyFile]]
    : credential.kind === 'federatedTokenFile'
      ? [['identity.credential.federatedTokenFile', credential.federatedTokenFile]]
      : []
  const problems = files.flatMap(([key, file]) => {
    const problem = unreadable(file)
    return problem === undefined ? [] : [`${key}: ${file} ${problem}`]
  })
  if (problems.length > 0 || credential.kind !== 'certificate') return problems
  try {
    readClientCertificate(credential.certificateFile, credential.privateKeyFile)
    return []
  } catch (err) {
    if (!(err instanceof GatewayCredentialError)) throw err
    return [`identity.credential.certificate: ${err.detail.charAt(0).toLowerCase()}${err.detail.slice(1)}`]
  }
}
