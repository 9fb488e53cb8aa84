/** Claims requests travel base64-encoded in WWW-Authenticate (what MSAL.js decodes with atob). */
export function encodeClaims (claimsJson: string): string {
  return Buffer.from(claimsJson, 'utf8').toString('base64')
}

/** The claims request a route sends when it needs auth context `id` (Entra's `acrs`). */
export function authContextClaims (id: string): string {
  return JSON.stringify({ access_token: { acrs: { essential: true, value: id } } })
}
