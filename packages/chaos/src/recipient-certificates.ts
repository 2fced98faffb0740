// S/MIME certificates for the run's outside recipients, made by openssl under a CA of the run's own and handed to
// the gateway through the operator CLI, as an operator would.
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { TestGateway } from '@smgw/testing';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** Issues a leaf per address (emailProtection, the address in subjectAltName), trusts the CA, adds the leaves. */
export async function issueRecipientCertificates(gateway: TestGateway, addresses: readonly string[]): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'smgw-chaos-certs-'));
  const openssl = (args: string[]) => run('openssl', args, { cwd: dir });
  const smgw = (...args: string[]) =>
    run(process.execPath, [join(ROOT, 'services/admin/src/cli.ts'), ...args], {
      cwd: ROOT,
      env: {
        ...process.env,
        SMGW_ADMIN_URL: `http://127.0.0.1:${gateway.adminPort}/api/v1`,
        SMGW_ADMIN_TOKEN: gateway.adminToken,
      },
    });
  try {
    await openssl([
      ...['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '30'],
      ...['-subj', '/CN=Chaos Run CA', '-addext', 'basicConstraints=critical,CA:TRUE'],
      ...['-addext', 'keyUsage=critical,keyCertSign,cRLSign'],
    ]);
    await smgw('trust', 'add', join(dir, 'ca.pem'));
    for (const [i, address] of addresses.entries()) {
      await writeFile(
        join(dir, `${i}.ext`),
        `subjectAltName=email:${address}\nextendedKeyUsage=emailProtection\n` +
          'keyUsage=critical,digitalSignature,keyEncipherment\nbasicConstraints=CA:FALSE\n',
      );
      await openssl([
        ...['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${i}.key`, '-out', `${i}.csr`],
        ...['-subj', `/CN=${address}`],
      ]);
      await openssl([
        ...['x509', '-req', '-in', `${i}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial'],
        ...['-days', '30', '-sha256', '-extfile', `${i}.ext`, '-out', `${i}.pem`],
      ]);
      await smgw('cert', 'add', join(dir, `${i}.pem`));
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
