import t from 'tap'
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { parse, parseAllDocuments } from 'yaml'
import { ConfigError, resolveConfig } from '../../src/config/load'

/**
 * deploy/kubernetes/obo-gateway.yaml checked against what the gateway and the image really do: the
 * ConfigMap's config loads once the Secret is filled in (and is refused as shipped), the ports and
 * probes are the config's and the image's, every variable the config reads is set from the Secret
 * (or by the workload identity webhook), selectors select.
 */

const ROOT = resolve(__dirname, '../..')
const MANIFEST = join(ROOT, 'deploy/kubernetes/obo-gateway.yaml')

interface Metadata { name: string, namespace?: string, labels?: Record<string, string>, annotations?: Record<string, string> }
interface Probe { httpGet?: { path: string, port: string | number } }
interface EnvVar { name: string, value?: string, valueFrom?: { secretKeyRef?: { name: string, key: string } } }
interface Container {
  name: string
  env?: EnvVar[]
  ports?: Array<{ name?: string, containerPort: number }>
  livenessProbe?: Probe
  readinessProbe?: Probe
  startupProbe?: Probe
  volumeMounts?: Array<{ name: string, mountPath: string }>
}
interface PodSpec {
  serviceAccountName?: string
  containers: Container[]
  volumes?: Array<{ name: string, configMap?: { name: string, items?: Array<{ key: string, path: string }> } }>
}
interface Resource {
  apiVersion: string
  kind: string
  metadata: Metadata
  data?: Record<string, string>
  stringData?: Record<string, string>
  spec?: {
    replicas?: number
    selector?: { matchLabels?: Record<string, string> } | Record<string, string>
    template?: { metadata: Metadata, spec: PodSpec }
    ports?: Array<{ name?: string, port: number, targetPort: string | number }>
    scaleTargetRef?: { apiVersion: string, kind: string, name: string }
    minReplicas?: number
    maxReplicas?: number
    maxUnavailable?: number
  }
}

const documents = parseAllDocuments(readFileSync(MANIFEST, 'utf8'))
const resources = documents.map((d) => d.toJS() as Resource)
const one = (kind: string): Resource => {
  const found = resources.filter((r) => r.kind === kind)
  if (found.length !== 1) throw new Error(`expected one ${kind} in ${MANIFEST}, found ${found.length}`)
  return found[0]!
}
const namespace = one('Namespace')
const serviceAccount = one('ServiceAccount')
const secret = one('Secret')
const configMap = one('ConfigMap')
const deployment = one('Deployment')
const service = one('Service')
const pdb = one('PodDisruptionBudget')
const hpa = one('HorizontalPodAutoscaler')
const pod = deployment.spec!.template!
const container = pod.spec.containers[0]!
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** What the workload identity webhook injects into a pod labelled azure.workload.identity/use. */
const webhookEnv = {
  AZURE_CLIENT_ID: serviceAccount.metadata.annotations?.['azure.workload.identity/client-id'],
  AZURE_TENANT_ID: serviceAccount.metadata.annotations?.['azure.workload.identity/tenant-id'],
  AZURE_AUTHORITY_HOST: 'https://login.microsoftonline.com/',
  AZURE_FEDERATED_TOKEN_FILE: '/var/run/secrets/azure/tokens/azure-identity-token'
}
/** What an operator puts in the Secret: generated, as the manifest says. */
const filledIn: Record<string, string> = {
  GATEWAY_REDIS_URL: `rediss://:${randomBytes(16).toString('hex')}@redis.obo-gateway.svc.cluster.local:6380`,
  GATEWAY_CACHE_KEY: randomBytes(32).toString('base64')
}
/** The container's environment as the kubelet builds it: literal values and the keys of `secretData`. */
const containerEnv = (secretData: Record<string, string> | undefined): Record<string, string | undefined> => Object.fromEntries((container.env ?? []).map((e) => {
  const ref = e.valueFrom?.secretKeyRef
  return [e.name, ref === undefined ? e.value : ref.name === secret.metadata.name ? secretData?.[ref.key] : undefined]
}))
const gatewayYaml = configMap.data?.['gateway.yaml'] ?? ''
const loadWith = (secretData: Record<string, string> | undefined): ReturnType<typeof resolveConfig> =>
  resolveConfig(parse(gatewayYaml), { source: 'the ConfigMap', env: { ...webhookEnv, ...containerEnv(secretData) } })
const config = loadWith({ ...secret.stringData, ...filledIn })

t.test('the file parses as Kubernetes resources, all in one namespace', async (t) => {
  t.same(documents.flatMap((d) => d.errors.map((e) => e.message)), [], 'no YAML errors')
  for (const r of resources) {
    t.ok(r.apiVersion && r.kind && r.metadata.name, `${r.kind}/${r.metadata.name}: apiVersion, kind, name`)
    if (r.kind !== 'Namespace') t.equal(r.metadata.namespace, namespace.metadata.name, `${r.kind} is in namespace ${namespace.metadata.name}`)
  }
})

t.test('the ConfigMap holds a gateway config that loads, with the Secret and the webhook providing the variables', async (t) => {
  const referenced = [...gatewayYaml.matchAll(/\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}/g)].map((m) => m[1]!)
  t.ok(referenced.length >= 2, `the config reads ${referenced.join(', ')} from the environment`)
  for (const name of referenced) {
    const variable = container.env?.find((e) => e.name === name)
    t.ok(variable, `${name} is set on the container`)
    const ref = variable?.valueFrom?.secretKeyRef
    t.equal(ref?.name, secret.metadata.name, `${name} comes from the Secret`)
    t.ok(ref !== undefined && secret.stringData?.[ref.key] !== undefined, `the Secret has the key ${ref?.key}`)
  }
  t.equal(config.tokenCache.redisUrl, filledIn.GATEWAY_REDIS_URL, 'the Redis URL is the Secret\'s')
  t.equal(config.tokenCache.encryptionKey, filledIn.GATEWAY_CACHE_KEY, 'and so is the cache key')
  t.match(gatewayYaml, /^ +url: \$\{env:GATEWAY_REDIS_URL\}$/m, 'no secret value in the ConfigMap: the Redis URL')
  t.match(gatewayYaml, /^ +encryptionKey: \$\{env:GATEWAY_CACHE_KEY\}$/m, 'nor the cache key')
  t.equal(config.identity.credential.kind, 'federatedTokenFile', 'the credential is the workload identity token')
  t.equal(config.identity.clientId, webhookEnv.AZURE_CLIENT_ID, 'the client id is the service account\'s annotation')
  t.ok(config.routes.length >= 1)
})

t.test('the Secret ships empty, and the gateway refuses to start with it as shipped', async (t) => {
  t.same(Object.keys(secret.stringData ?? {}).sort(), Object.keys(filledIn).sort(), 'the test fills in every key of the Secret')
  for (const [key, value] of Object.entries(secret.stringData ?? {})) t.equal(value, '', `${key} is empty, not a placeholder that would work`)
  const refused = t.throws(() => loadWith(secret.stringData)) as ConfigError
  t.ok(refused instanceof ConfigError)
  t.same(refused.issues, [
    'tokenCache.redis.url: expected a redis://, rediss://, redis+sentinel:// or redis+cluster:// URL, got an empty string (from ${env:GATEWAY_REDIS_URL})', // eslint-disable-line no-template-curly-in-string
    'tokenCache.encryptionKey: expected a secret of at least 16 characters (32 random bytes, base64, recommended), got an empty string (from ${env:GATEWAY_CACHE_KEY})' // eslint-disable-line no-template-curly-in-string
  ])
})

t.test('the config file is mounted where OBO_GATEWAY_CONFIG points', async (t) => {
  const path = containerEnv(secret.stringData).OBO_GATEWAY_CONFIG
  const volume = pod.spec.volumes?.find((v) => v.configMap?.name === configMap.metadata.name)
  t.ok(volume, 'a volume from the ConfigMap')
  const mount = container.volumeMounts?.find((m) => m.name === volume?.name)
  const item = volume?.configMap?.items?.find((i) => i.key === 'gateway.yaml')
  t.equal(path, `${mount?.mountPath}/${item?.path ?? 'gateway.yaml'}`)
})

t.test('ports and probes are the config\'s and the image\'s', async (t) => {
  const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8')
  const exposed = [...dockerfile.matchAll(/^EXPOSE (.+)$/gm)].flatMap((m) => m[1]!.trim().split(/\s+/)).map((p) => Number(p.replace(/\/tcp$/, '')))
  const { port, adminPort } = config.server
  t.ok(adminPort !== undefined, 'an admin port, so probes and metrics stay off the public port')
  const portNumber = (p: string | number | undefined): number | undefined => typeof p === 'number' ? p : container.ports?.find((c) => c.name === p)?.containerPort
  t.same(container.ports?.map((p) => p.containerPort).sort(), [port, adminPort].sort(), 'the container declares the gateway\'s two ports')
  for (const p of [port, adminPort]) t.ok(exposed.includes(p!), `the image exposes ${p}`)
  t.match(container.livenessProbe?.httpGet, { path: '/healthz' }, 'liveness: /healthz')
  t.match(container.readinessProbe?.httpGet, { path: '/readyz' }, 'readiness: /readyz')
  for (const probe of [container.livenessProbe, container.readinessProbe, container.startupProbe]) {
    if (probe !== undefined) t.equal(portNumber(probe.httpGet?.port), adminPort, `${probe.httpGet?.path} is probed on the admin port`)
  }
  const servicePort = service.spec!.ports![0]!
  t.equal(portNumber(servicePort.targetPort), port, 'the Service sends traffic to the public port')
  t.notOk(service.spec!.ports!.some((p) => portNumber(p.targetPort) === adminPort), 'and not to the admin port')
})

t.test('labels, selectors and names agree', async (t) => {
  const podLabels = pod.metadata.labels ?? {}
  const selects = (selector: Record<string, string> | undefined): boolean => selector !== undefined && Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => podLabels[k] === v)
  const matchLabels = (r: Resource): Record<string, string> | undefined => (r.spec?.selector as { matchLabels?: Record<string, string> } | undefined)?.matchLabels
  t.ok(selects(matchLabels(deployment)), 'the Deployment selects its own pods')
  t.ok(selects(service.spec?.selector as Record<string, string>), 'the Service selects the gateway pods')
  t.ok(selects(matchLabels(pdb)), 'the PodDisruptionBudget covers them')
  t.match(hpa.spec?.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: deployment.metadata.name }, 'the autoscaler scales the Deployment')
  t.equal(deployment.spec?.replicas, 3)
  t.ok(hpa.spec!.minReplicas! >= deployment.spec!.replicas!, 'the autoscaler never goes below the 3 replicas')
  t.ok(hpa.spec!.minReplicas! - (pdb.spec?.maxUnavailable ?? 1) >= 2, 'a disruption leaves at least two serving')

  t.equal(podLabels['azure.workload.identity/use'], 'true', 'pods carry the workload identity label, as the string "true"')
  t.equal(pod.spec.serviceAccountName, serviceAccount.metadata.name, 'and run as the federated service account')
  t.match(webhookEnv.AZURE_CLIENT_ID, GUID, 'whose client-id annotation is a GUID')
})
