/** What the upstream answers and what the load generator sends, shared by both sides. */
export const MIB = 1024 * 1024
export const SMALL_JSON = Buffer.from(JSON.stringify({ id: 42, name: 'Widget', owner: 'alice@contoso.example', tags: ['a', 'b', 'c'], price: 9.99, inStock: true }))
export const ONE_MIB = Buffer.alloc(MIB, 'x')

export interface Payload { name: string, path: string, method: 'GET' | 'POST', body?: Buffer, expectBytes: number }

export const PAYLOADS: Payload[] = [
  { name: 'small JSON response', path: '/api/small', method: 'GET', expectBytes: SMALL_JSON.length },
  { name: '1 MiB response', path: '/api/1mb', method: 'GET', expectBytes: MIB },
  { name: '1 MiB upload', path: '/api/upload', method: 'POST', body: ONE_MIB, expectBytes: `{"received":${MIB}}`.length }
]
