import type { Directory } from '../directory'

/** Accounts switched off at run time (an admin's "block sign-in"), on top of the seed's accountEnabled. */
export class Accounts {
  private readonly disabled = new Set<string>()

  constructor (private readonly directory: Directory) {}

  setEnabled (tenantId: string, oid: string, enabled: boolean): void {
    const key = `${tenantId}|${oid}`.toLowerCase()
    if (enabled) this.disabled.delete(key)
    else this.disabled.add(key)
  }

  enabled (tenantId: string, oid: string): boolean {
    const tenant = this.directory.tenant(tenantId)
    const user = tenant?.users?.find((u) => u.objectId.toLowerCase() === oid.toLowerCase())
    return user !== undefined && user.accountEnabled !== false && !this.disabled.has(`${tenant?.id ?? ''}|${oid}`.toLowerCase())
  }
}
