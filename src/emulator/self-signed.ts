// @peculiar/x509 builds its services with tsyringe, which needs the Reflect metadata API loaded first.
import 'reflect-metadata'
import { webcrypto } from 'node:crypto'
import * as x509 from '@peculiar/x509'
import { toPkcs8Pem } from './ca'

const RSA = { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' }

export interface SelfSignedRsa {
  certificatePem: string
  /** The certificate's DER: thumbprints (`x5t`, kid) and `x5c` are taken from it. */
  der: Buffer
  privateKeyPem: string
}

/** An RSA-2048 key and a self-signed certificate for it: token signing keys and client credentials alike. */
export async function createSelfSignedRsa (options: { commonName: string, notBefore: Date, notAfter: Date }): Promise<SelfSignedRsa> {
  const keys = await webcrypto.subtle.generateKey(RSA, true, ['sign', 'verify'])
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    name: `CN=${options.commonName}`,
    keys,
    notBefore: options.notBefore,
    notAfter: options.notAfter,
    signingAlgorithm: RSA
  }, webcrypto)
  return {
    certificatePem: certificate.toString('pem'),
    der: Buffer.from(certificate.rawData),
    privateKeyPem: await toPkcs8Pem(keys.privateKey)
  }
}
