// SPEC.md: "A CLI (`pnpm smgw …` or a `smgw` bin) wraps the same calls for operators." Both doors are one command:
// after `./smgw up` printed the admin token (and wrote it to the state folder's env), `pnpm smgw trust add ca.pem`
// calls the admin API with it as `./smgw trust add ca.pem` does, without the operator exporting it first.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const TOKEN = 'state-folder-token-0123456789abcdefghij';
const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';

interface Received {
  method: string | undefined;
  url: string | undefined;
  authorization: string | undefined;
  body: string;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

describe('pnpm smgw: the operator CLI through pnpm, as through ./smgw', () => {
  let stateDir: string;
  let admin: Server;
  const received: Received[] = [];

  before(async () => {
    // Stands in for the admin API: records what the CLI sends and answers as a new trust anchor.
    admin = createServer(async (req, res) => {
      received.push({
        method: req.method,
        url: req.url,
        authorization: req.headers.authorization,
        body: await readBody(req),
      });
      res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ fingerprint: 'ab' }));
    });
    await new Promise<void>((resolve) => admin.listen(0, '127.0.0.1', resolve));
    const { port } = admin.address() as AddressInfo;
    stateDir = mkdtempSync(join(tmpdir(), 'smgw-state-'));
    // What `./smgw up` leaves in the state folder (.smgw/env).
    writeFileSync(
      join(stateDir, 'env'),
      `set -a\n: "\${SMGW_ADMIN_TOKEN:=${TOKEN}}"\nSMGW_ADMIN_URL=http://127.0.0.1:${port}/api/v1\nset +a\n`,
    );
    writeFileSync(join(stateDir, 'ca.pem'), PEM);
  });
  after(async () => {
    await new Promise((resolve) => admin.close(resolve));
    rmSync(stateDir, { recursive: true, force: true });
  });

  it('takes the admin token and URL from the state folder, as ./smgw does', async () => {
    const { SMGW_ADMIN_TOKEN: _token, SMGW_ADMIN_URL: _url, SMGW_ADMIN_PORT: _port, ...env } = process.env;
    const run = await promisify(execFile)('pnpm', ['smgw', 'trust', 'add', join(stateDir, 'ca.pem'), '--json'], {
      cwd: ROOT,
      env: { ...env, SMGW_STATE_DIR: stateDir },
    }).catch((err: { stdout: string; stderr: string; code: number }) => err);
    assert.deepEqual(
      received.map(({ method, url, authorization, body }) => ({ method, url, authorization, body })),
      [{ method: 'POST', url: '/api/v1/trust-anchors', authorization: `Bearer ${TOKEN}`, body: PEM }],
      `${run.stdout}\n${run.stderr}`,
    );
    assert.match(run.stdout, /"fingerprint": "ab"/);
  });
});
