import { X509Certificate, createHash, createPrivateKey, type KeyObject } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type { NodeAuthOptions } from '@azure/msal-node'
import { GatewayCredentialError } from '../errors'

export interface GatewayCertificate {
  /** msal-node's `clientCertificate`. */
  msal: NonNullable<NodeAuthOptions['clientCertificate']>
  /** SHA-1, as the Entra portal lists the app's certificates. */
  thumbprint: string
  expiresAt: Date
}

/**
 * Reads and checks the certificate credential so a mistake is reported at start (and by
 * check-config, which runs this same check), not as Entra's AADSTS700027 later.
 */
export function readClientCertificate (certificateFile: string, privateKeyFile: string): GatewayCertificate {
  const read = (file: string, what: string): string => {
    try {
      return readFileSync(file, 'utf8')
    } catch (err) {
      throw fileProblem((name) => `Cannot read ${name} (${(err as NodeJS.ErrnoException).code ?? String(err)})`, what, file)
    }
  }
  const certificatePem = read(certificateFile, 'certificate')
  const keyPem = read(privateKeyFile, 'private key')
  // The file may hold a chain; the first certificate is the one registered on the app.
  const pems = certificatePem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []
  let leaf: X509Certificate
  try {
    leaf = new X509Certificate(pems[0] ?? '')
  } catch {
    throw fileProblem((name) => `${upper(name)} holds no PEM certificate`, 'certificate', certificateFile)
  }
  let key: KeyObject
  try {
    key = createPrivateKey(keyPem)
  } catch (err) {
    const encrypted = /ENCRYPTED/.test(keyPem)
    throw fileProblem((name) => `${upper(name)} holds no usable private key${encrypted ? ' (it is encrypted; mount it decrypted)' : ''}: ${(err as Error).message}`, 'private key', privateKeyFile)
  }
  // Entra signs nothing but RSA client assertions, and msal-node refuses RSA keys under 2048 bits.
  if (key.asymmetricKeyType !== 'rsa' || (key.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) {
    const found = `${key.asymmetricKeyType ?? 'unknown'} ${key.asymmetricKeyDetails?.modulusLength ?? ''}`.trim()
    throw fileProblem((name) => `${upper(name)} must hold an RSA key of at least 2048 bits for Entra (found ${found})`, 'private key', privateKeyFile)
  }
  if (!leaf.checkPrivateKey(key)) {
    throw new GatewayCredentialError(`The private key does not belong to the certificate (thumbprint ${thumbprint(leaf)})`, undefined,
      `The private key in ${privateKeyFile} does not belong to the certificate in ${certificateFile} (thumbprint ${thumbprint(leaf)})`)
  }
  const now = Date.now()
  const validTo = Date.parse(leaf.validTo)
  if (validTo <= now) throw fileProblem((name) => `The certificate in ${name} (thumbprint ${thumbprint(leaf)}) expired on ${new Date(validTo).toISOString()}`, 'certificate', certificateFile)
  if (Date.parse(leaf.validFrom) > now) throw fileProblem((name) => `The certificate in ${name} (thumbprint ${thumbprint(leaf)}) is not valid before ${new Date(Date.parse(leaf.validFrom)).toISOString()}`, 'certificate', certificateFile)
  return {
    msal: {
      // SHA-256 thumbprint: msal-node then signs PS256 with `x5t#S256`, the form Entra documents today.
      thumbprintSha256: createHash('sha256').update(leaf.raw).digest('hex'),
      // PKCS#8 whatever the file's format (PKCS#1 "RSA PRIVATE KEY" too): what msal-node's signer expects.
      privateKey: key.export({ format: 'pem', type: 'pkcs8' }).toString(),
      // x5c lets Entra apply subject name + issuer authentication when the app is set up for it.
      x5c: pems.join('\n')
    },
    thumbprint: thumbprint(leaf),
    expiresAt: new Date(validTo)
  }
}

/**
 * A problem with one of the credential's files: clients read "the certificate file", the log the
 * path too. Error bodies never carry server paths.
 */
export function fileProblem (text: (name: string) => string, what: string, file: string): GatewayCredentialError {
  return new GatewayCredentialError(text(`the ${what} file`), undefined, text(`the ${what} file ${file}`))
}

export function upper (text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1)
}

/** The SHA-1 thumbprint as the Entra portal shows it, to find the certificate among the app's credentials. */
function thumbprint (cert: X509Certificate): string {
  return cert.fingerprint.replace(/:/g, '')
}
