// The alerts and the Grafana dashboard read only metrics that really exist: every service runs (the whole gateway,
// mailbox and lifecycle reaper included, on a RabbitMQ with its Prometheus plugin), each /metrics is scraped, and
// every metric name in every alert expression (deploy/prometheus/smgw-alerts.yml and the PrometheusRule of
// deploy/k8s/base/alerts.yaml, which must hold the same groups) and in every dashboard panel must be among them.
// Run: node --test deploy/test/alerts.test.ts
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  type PrivateServers,
  startPrivateServers,
  startTestGateway,
  type TestGateway,
} from '../../packages/testing/src/index.ts';
import { expandAlternatives, metricNamesIn } from './promql-names.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SERVICES = ['ingest', 'scan', 'encrypt', 'signature-verify', 'deliver', 'mailbox', 'lifecycle-reaper', 'admin'];

// biome-ignore lint/suspicious/noExplicitAny: parsed YAML is untyped JSON
type Json = any;

/** A YAML document → JSON, by kubectl (no YAML library in the workspace), wrapped as a manifest when it is none. */
function yamlToJson(yaml: string): Json[] {
  const json = execFileSync('kubectl', ['label', '--local', '-f', '-', 'smgw.test/parsed=true', '-o', 'json'], {
    input: yaml,
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  const objects = JSON.parse(`[${json.replace(/^}\n\{/gm, '},\n{')}]`) as Json[];
  return objects.flatMap((o) => (o.kind === 'List' ? o.items : [o]));
}

function ruleFileGroups(): Json[] {
  const file = readFileSync(`${ROOT}deploy/prometheus/smgw-alerts.yml`, 'utf8');
  const indented = file
    .split('\n')
    .map((l) => (l.trim() ? `  ${l}` : l))
    .join('\n');
  const [doc] = yamlToJson(`apiVersion: smgw.test/v1\nkind: RuleFile\nmetadata:\n  name: rules\nspec:\n${indented}`);
  return doc.spec.groups;
}

function prometheusRuleGroups(): Json[] {
  const rendered = execFileSync('kubectl', ['kustomize', 'deploy/k8s/base'], { cwd: ROOT, encoding: 'utf8' });
  const rule = yamlToJson(rendered).find((o) => o.kind === 'PrometheusRule');
  assert.ok(rule, 'the kustomize base has a PrometheusRule');
  return rule.spec.groups;
}

function dashboardExpressions(): string[] {
  const found: string[] = [];
  const walk = (o: Json) => {
    if (Array.isArray(o)) for (const x of o) walk(x);
    else if (o && typeof o === 'object') {
      for (const [k, v] of Object.entries(o)) {
        if (k === 'expr' && typeof v === 'string') found.push(v);
        else walk(v);
      }
    }
  };
  walk(JSON.parse(readFileSync(`${ROOT}deploy/grafana/smgw-dashboard.json`, 'utf8')));
  return found;
}

/** Metric names in a Prometheus text exposition (`# TYPE` lines), with the series names of histograms and summaries. */
function exportedNames(text: string): string[] {
  return [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].flatMap(([, name, type]) =>
    type === 'histogram' || type === 'summary'
      ? [name as string, `${name}_bucket`, `${name}_sum`, `${name}_count`]
      : [name as string],
  );
}

describe('PromQL metric names', () => {
  it('are read from selectors, not from functions, labels, strings, ranges or grouping clauses', () => {
    const cases: Array<[string, string[], string[]]> = [
      ['sum by (queue) (rate(a_total{queue=~"smgw[.]x"}[5m])) > 0', ['a_total'], []],
      ['histogram_quantile(0.9, sum by (le) (rate(b_bucket[$__rate_interval])))', ['b_bucket'], []],
      ['time() - max by (sweep) (c_seconds) > 3600', ['c_seconds'], []],
      ['(x > 0) unless on (queue) (y == 0)', ['x', 'y'], []],
      ['sum({__name__=~"smgw_(a|b)_z"})', [], ['smgw_(a|b)_z']],
      ['label_replace(q{queue=~"a"}, "stage", "$1", "queue", "smgw[.]([a-z]+)")', ['q'], []],
      ['absent(r) and s - time() < 14 * 86400', ['r', 's'], []],
    ];
    for (const [expr, names, patterns] of cases) {
      assert.deepEqual(metricNamesIn(expr), { names, patterns }, expr);
    }
    assert.deepEqual(expandAlternatives('smgw_(a|b)_z'), ['smgw_a_z', 'smgw_b_z']);
  });
});

describe('alerts and dashboard against the running services', { timeout: 10 * 60_000 }, () => {
  let servers: PrivateServers;
  let gateway: TestGateway;
  const exported = new Set<string>();

  before(async () => {
    // RabbitMQ with its Prometheus plugin (the shared one has only the management plugin).
    servers = await startPrivateServers();
    Object.assign(process.env, servers.env);
    gateway = await startTestGateway({ services: SERVICES, env: { SMGW_REVOCATION_MODE: 'off' } });
    for (const s of Object.values(gateway.services)) {
      const res = await fetch(`http://127.0.0.1:${s.healthPort}/metrics`);
      assert.equal(res.status, 200, `${s.name} serves /metrics`);
      for (const n of exportedNames(await res.text())) exported.add(n);
    }
    const rabbit = await fetch(`${servers.rabbitmq.prometheusUrl}/metrics/per-object`);
    for (const n of exportedNames(await rabbit.text())) exported.add(n);
  });
  after(async () => {
    await gateway?.close();
    await servers?.close();
  });

  /** Names (and patterns) an expression reads that nothing exports. */
  function missing(expr: string): string[] {
    const { names, patterns } = metricNamesIn(expr);
    const plain = [...names, ...patterns.flatMap(expandAlternatives).filter((p) => /^[a-zA-Z0-9_:]+$/.test(p))];
    const regexes = patterns.filter((p) => !/^[a-zA-Z0-9_:]+$/.test(expandAlternatives(p)[0] ?? ''));
    return [
      ...plain.filter((n) => !exported.has(n)),
      ...regexes.filter((re) => ![...exported].some((n) => new RegExp(`^(?:${re})$`).test(n))).map((re) => `~${re}`),
    ];
  }

  it('scraped every service and RabbitMQ', () => {
    for (const name of ['smgw_ingest_messages_total', 'smgw_reaper_sweep_seconds', 'smgw_mailbox_arrivals_total']) {
      assert.ok(exported.has(name), name);
    }
    assert.ok(exported.has('rabbitmq_queue_messages_ready'));
  });

  it('has the same alert groups for docker compose and for the Prometheus Operator', () => {
    assert.deepEqual(prometheusRuleGroups(), ruleFileGroups());
  });

  it('alerts on parked messages, queue age, clamd, deferred deliveries, the reaper and certificate expiry', () => {
    const alerts = ruleFileGroups().flatMap((g: Json) => g.rules.map((r: Json) => r.alert));
    for (const name of [
      'SmgwMessagesParked',
      'SmgwQueueAgeGrowing',
      'SmgwClamdUnreachable',
      'SmgwDeliveriesDeferredForHours',
      'SmgwReaperSweepNotRun',
      'SmgwTlsCertificateExpiresSoon',
      'SmgwAgencyCertificateExpiresSoon',
    ]) {
      assert.ok(alerts.includes(name), name);
    }
  });

  it('names in every alert expression only metrics the services or RabbitMQ export', () => {
    for (const group of ruleFileGroups()) {
      for (const rule of group.rules) {
        assert.deepEqual(missing(rule.expr), [], `${rule.alert}: ${rule.expr}`);
      }
    }
  });

  it('names in every dashboard panel only metrics the services or RabbitMQ export', () => {
    const expressions = dashboardExpressions();
    assert.ok(expressions.length > 10);
    for (const expr of expressions) assert.deepEqual(missing(expr), [], expr);
  });
});
