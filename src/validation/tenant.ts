const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

export function isGuid (value: unknown): value is string {
  return typeof value === 'string' && GUID.test(value)
}
