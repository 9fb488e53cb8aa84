import { request, type Dispatcher } from 'undici'
import { IdentityUnavailableError } from '../errors'

export interface RelayedAnswer {
  status: number
  contentType: string
  body: Buffer
}

/**
 * Posts a token request to Entra and hands back its answer as it came (status, body), bounded in
 * time. Entra's refusals are the client's to read (invalid_grant, interaction_required...); only
 * an Entra that cannot be reached becomes the gateway's 503.
 */
export async function relayTokenRequest (url: string, form: URLSearchParams, options: { dispatcher: Dispatcher, timeoutMs: number, origin?: string | undefined }): Promise<RelayedAnswer> {
  try {
    const res = await request(url, {
      method: 'POST',
      dispatcher: options.dispatcher,
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        accept: 'application/json',
        // Entra redeems a spa redirect URI's code only cross-origin: the browser's Origin goes along.
        ...(options.origin === undefined ? {} : { origin: options.origin })
      },
      body: form.toString(),
      signal: AbortSignal.timeout(options.timeoutMs)
    })
    const body = Buffer.from(await res.body.arrayBuffer())
    if (res.statusCode >= 500 || res.statusCode === 429) {
      throw new IdentityUnavailableError(`Entra's token endpoint answered ${res.statusCode}`, 5)
    }
    return { status: res.statusCode, contentType: String(res.headers['content-type'] ?? 'application/json'), body }
  } catch (err) {
    if (err instanceof IdentityUnavailableError) throw err
    throw new IdentityUnavailableError(`Entra's token endpoint could not be reached (${(err as { code?: string, name?: string }).code ?? (err as Error).name})`, 5)
  }
}
