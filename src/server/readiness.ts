import type { FastifyInstance } from 'fastify'

export type CheckStatus = 'ok' | 'degraded' | 'failed'

export interface Check {
  status: CheckStatus
  detail?: string
}

export type ReadinessStatus = 'ready' | 'degraded' | 'not_ready'

/** What /readyz answers: 503 only when `not_ready`. */
export interface Readiness {
  status: ReadinessStatus
  checks: Record<string, Check>
}

type Gateway = Pick<FastifyInstance, 'entraStatus' | 'credentialCheck' | 'tokenAcquirer'>

/**
 * Whether one gateway can serve requests, part by part: the identity provider's metadata and keys,
 * the gateway's own credential, the shared token cache. A Redis outage only degrades (L1 and Entra
 * carry on).
 */
export async function gatewayReadiness (gateway: Gateway): Promise<Readiness> {
  const trust = await gateway.entraStatus({ refresh: true })
  const tenantsMissing = Object.entries(trust.keys).filter(([, s]) => s === 'not_loaded').map(([t]) => t)
  // Stale keys still validate known kids, but a key published since cannot be learned: 503s for its tokens.
  const tenantsStale = Object.entries(trust.keys).filter(([, s]) => s === 'stale').map(([t]) => t)
  const identity: Check = trust.metadata !== 'loaded'
    ? { status: 'failed', detail: trust.lastError ?? 'OpenID metadata not loaded yet' }
    : tenantsMissing.length > 0
      ? { status: 'degraded', detail: `signing keys not loaded for ${tenantsMissing.join(', ')}` }
      : tenantsStale.length > 0
        ? { status: 'degraded', detail: `signing keys of ${tenantsStale.join(', ')} could not be refreshed (${trust.lastError ?? 'unknown error'}); the last good keys stay in use` }
        : { status: 'ok' }
  const problem = await gateway.credentialCheck()
  const credential: Check = problem === undefined ? { status: 'ok' } : { status: 'failed', detail: problem }
  const l2 = gateway.tokenAcquirer.status().l2
  const tokenCache: Check = l2 === 'degraded'
    ? { status: 'degraded', detail: 'Redis unreachable: serving from the in-process cache and Entra' }
    : { status: 'ok', ...(l2 === 'disabled' ? { detail: 'no Redis configured' } : {}) }
  return fromChecks({ identity, credential, tokenCache })
}

const SEVERITY: Record<CheckStatus, number> = { ok: 0, degraded: 1, failed: 2 }

/**
 * The readiness of worker processes behind one port: each check is the worst any worker reports,
 * with that worker's detail; a worker restarting or not answering degrades, and no worker serving
 * fails. A worker that is down takes no connections, so the others still serve everything.
 */
export function workersReadiness (workers: Array<{ worker: number, readiness?: Readiness }>, expected: number): Readiness {
  const worst = new Map<string, { check: Check, worker: number }>()
  for (const { worker, readiness } of workers) {
    for (const [name, check] of Object.entries(readiness?.checks ?? {})) {
      const seen = worst.get(name)
      if (seen === undefined || SEVERITY[check.status] > SEVERITY[seen.check.status]) worst.set(name, { check, worker })
    }
  }
  const checks: Record<string, Check> = {}
  for (const [name, { check, worker }] of worst) {
    checks[name] = check.status === 'ok' || check.detail === undefined ? check : { status: check.status, detail: `worker ${worker}: ${check.detail}` }
  }
  const answering = workers.filter((w) => w.readiness !== undefined)
  const silent = workers.filter((w) => w.readiness === undefined).map((w) => w.worker)
  const serving = `${answering.length} of ${expected} workers serving`
  checks.workers = answering.length === 0
    ? { status: 'failed', detail: serving }
    : answering.length < expected
      ? { status: 'degraded', detail: `${serving}${silent.length > 0 ? ` (worker ${silent.join(', ')} did not answer)` : ' (the others are restarting)'}` }
      : { status: 'ok', detail: serving }
  return fromChecks(checks)
}

function fromChecks (checks: Record<string, Check>): Readiness {
  const statuses = Object.values(checks).map((c) => c.status)
  const status = statuses.includes('failed') ? 'not_ready' : statuses.includes('degraded') ? 'degraded' : 'ready'
  return { status, checks }
}
