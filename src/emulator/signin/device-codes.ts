import { randomBytes, randomInt } from 'node:crypto'
import type { UserIdentity } from '../tokens'
import type { Clock } from './codes'

/** Entra's device codes: 15 minutes to sign in, polled every 5 seconds. */
export const DEVICE_CODE_LIFETIME_SECONDS = 900
export const DEVICE_CODE_INTERVAL_SECONDS = 5
const USER_CODE_ALPHABET = 'BCDFGHJKLMNPQRSTVWXZ23456789'

export interface DeviceAuthorization {
  deviceCode: string
  userCode: string
  tenantId: string
  clientId: string
  scope: string
  claims?: string
  issuedAt: number
  status: 'pending' | 'approved' | 'declined' | 'redeemed'
  lastPollAt?: number
  signedIn?: { user: UserIdentity, authTime: number }
}

export type Poll =
  | { outcome: 'unknown' | 'pending' | 'slow_down' | 'expired' | 'declined' | 'redeemed' }
  | { outcome: 'approved', authorization: DeviceAuthorization }

export class DeviceCodes {
  private readonly byDevice = new Map<string, DeviceAuthorization>()
  private readonly byUser = new Map<string, DeviceAuthorization>()

  constructor (private readonly clock: Clock) {}

  issue (request: Pick<DeviceAuthorization, 'tenantId' | 'clientId' | 'scope' | 'claims'>): DeviceAuthorization {
    let userCode: string
    do {
      userCode = Array.from({ length: 9 }, () => USER_CODE_ALPHABET[randomInt(USER_CODE_ALPHABET.length)]).join('')
    } while (this.byUser.has(userCode))
    const authorization: DeviceAuthorization = {
      ...request,
      deviceCode: randomBytes(48).toString('base64url'),
      userCode,
      issuedAt: this.clock(),
      status: 'pending'
    }
    this.byDevice.set(authorization.deviceCode, authorization)
    this.byUser.set(userCode, authorization)
    return authorization
  }

  /** The authorization a device code stands for, without polling it. */
  find (deviceCode: string): DeviceAuthorization | undefined {
    return this.byDevice.get(deviceCode)
  }

  /** What the device page's code names, while it can still be signed in to. */
  pendingByUserCode (userCode: string): DeviceAuthorization | undefined {
    const authorization = this.byUser.get(userCode.trim().toUpperCase().replace(/[\s-]/g, ''))
    return authorization?.status === 'pending' && !this.expired(authorization) ? authorization : undefined
  }

  approve (authorization: DeviceAuthorization, signedIn: NonNullable<DeviceAuthorization['signedIn']>): void {
    authorization.status = 'approved'
    authorization.signedIn = signedIn
  }

  decline (authorization: DeviceAuthorization): void {
    authorization.status = 'declined'
  }

  /** RFC 8628 §3.5: a poll sooner than the interval after the previous one is told to slow down. */
  poll (deviceCode: string): Poll {
    const authorization = this.byDevice.get(deviceCode)
    if (authorization === undefined) return { outcome: 'unknown' }
    const now = this.clock()
    const previous = authorization.lastPollAt
    authorization.lastPollAt = now
    if (this.expired(authorization) && authorization.status !== 'redeemed') return { outcome: 'expired' }
    switch (authorization.status) {
      case 'declined':
        return { outcome: 'declined' }
      case 'redeemed':
        return { outcome: 'redeemed' }
      case 'approved':
        authorization.status = 'redeemed'
        return { outcome: 'approved', authorization }
      case 'pending':
        return previous !== undefined && now - previous < DEVICE_CODE_INTERVAL_SECONDS * 1000 ? { outcome: 'slow_down' } : { outcome: 'pending' }
    }
  }

  private expired (authorization: DeviceAuthorization): boolean {
    return this.clock() - authorization.issuedAt >= DEVICE_CODE_LIFETIME_SECONDS * 1000
  }
}
