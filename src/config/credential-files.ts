import { closeSync, fstatSync, openSync } from 'node:fs'
import type { GatewayCredential } from './types'

/**
 * What check-config adds to validation: the credential's files exist and can be read. The gateway
 * itself starts without them (it answers 503 and says why in its log and /readyz), since a
 * projected token or a mounted secret may appear after the process.
 */
export function credentialFileProblems (credential: GatewayCredential): string[] {
  const files: Array<[key: string, file: string]> = credential.kind === 'certificate'
    ? [['identity.credential.certificate.certificateFile', credential.certificateFile], ['identity.credential.certificate.privateKeyFile', credential.privateKeyFile]]
    : credential.kind === 'federatedTokenFile'
      ? [['identity.credential.federatedTokenFile', credential.federatedTokenFile]]
      : []
  return files.flatMap(([key, file]) => {
    const problem = unreadable(file)
    return problem === undefined ? [] : [`${key}: cannot read ${file} (${problem})`]
  })
}

function unreadable (path: string): string | undefined {
  let fd: number
  try {
    fd = openSync(path, 'r')
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? String(err)
  }
  try {
    return fstatSync(fd).isFile() ? undefined : 'not a file'
  } finally {
    closeSync(fd)
  }
}
