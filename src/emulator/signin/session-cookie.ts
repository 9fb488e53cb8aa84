import { createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto'

/** Entra's session cookie name; the value here is `<session id>.<HMAC>`, so it cannot be forged. */
export const SESSION_COOKIE = 'ESTSAUTH'
/** "Stay signed in?" yes: the cookie outlives the browser (Entra keeps such sessions for 90 days). */
const PERSISTENT_SECONDS = 90 * 24 * 3600

export interface Session {
  id: string
  tenantId: string
  oid: string
  /** When the user entered credentials (seconds): the id token's `auth_time`. */
  authTime: number
  /** How the user signed in: ['pwd'] or ['pwd', 'mfa']. */
  amr: string[]
  persistent: boolean
}

/**
 * Browser sessions: server-side records named by a signed cookie. A cookie with a wrong signature,
 * or naming a session that ended (logout, revocation), is no session at all.
 */
export class Sessions {
  private readonly key = randomBytes(32)
  private readonly sessions = new Map<string, Session>()

  /** `stillValid` is asked on every use: revocations and disabled accounts end sessions. */
  constructor (private readonly stillValid: (session: Session) => boolean) {}

  create (fields: Omit<Session, 'id'>): Session {
    const session = { ...fields, id: randomUUID() }
    this.sessions.set(session.id, session)
    return session
  }

  /** The session a request's Cookie header names, if it is genuine and still valid. */
  fromCookieHeader (header: string | undefined): Session | undefined {
    const value = cookieValue(header, SESSION_COOKIE)
    if (value === undefined) return undefined
    const dot = value.lastIndexOf('.')
    const id = value.slice(0, dot)
    const presented = Buffer.from(value.slice(dot + 1), 'base64url')
    const expected = this.mac(id)
    if (dot <= 0 || presented.length !== expected.length || !timingSafeEqual(presented, expected)) return undefined
    const session = this.sessions.get(id)
    if (session === undefined) return undefined
    if (!this.stillValid(session)) {
      this.sessions.delete(id)
      return undefined
    }
    return session
  }

  end (id: string): void {
    this.sessions.delete(id)
  }

  /** Secure; HttpOnly; SameSite=None: a hidden iframe of the same site sends it (silent renewal). */
  setCookie (session: Session): string {
    const value = `${session.id}.${this.mac(session.id).toString('base64url')}`
    return `${SESSION_COOKIE}=${value}; Path=/; Secure; HttpOnly; SameSite=None${session.persistent ? `; Max-Age=${PERSISTENT_SECONDS}` : ''}`
  }

  clearCookie (): string {
    return `${SESSION_COOKIE}=; Path=/; Secure; HttpOnly; SameSite=None; Max-Age=0`
  }

  private mac (id: string): Buffer {
    return createHmac('sha256', this.key).update(id).digest()
  }
}

function cookieValue (header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=')
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim()
  }
  return undefined
}
