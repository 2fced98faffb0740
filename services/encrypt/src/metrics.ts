// encrypt's metrics: the stage metrics every consumer has, recipients by the form they got, and when the agencies'
// certificates (the keys encrypt loads to decrypt and sign) expire.
import type { AgencyCertificateExpiry } from '@smgw/key-directory';
import { Counter, Gauge, type Registry, stageMetrics } from '@smgw/observability';

/** `agencyCertificates` is read on every scrape (one small query); without it the gauge stays empty. */
export function encryptMetrics(registry: Registry, agencyCertificates?: () => Promise<AgencyCertificateExpiry[]>) {
  return {
    agencyCertificateExpiry: new Gauge({
      name: 'smgw_encrypt_agency_certificate_expiry_timestamp_seconds',
      help: 'When each agency S/MIME certificate (decryption and signing key) expires, Unix time',
      labelNames: ['address', 'fingerprint'] as const,
      registers: [registry],
      async collect() {
        if (!agencyCertificates) return;
        // The database unreachable: the last values stay (an alert on expiry must not flap with an outage).
        const expiries = await agencyCertificates().catch(() => undefined);
        if (!expiries) return;
        this.reset();
        for (const e of expiries) {
          this.set({ address: e.address, fingerprint: e.fingerprint }, e.notAfter.getTime() / 1000);
        }
      },
    }),
    ...stageMetrics(registry, 'encrypt'),
    recipients: new Counter({
      name: 'smgw_encrypt_recipients_total',
      help: 'Outbound recipients by the form their copy took (smime, pgp, portal, already-encrypted; not-encryptable: given up)',
      labelNames: ['form'] as const,
      registers: [registry],
    }),
    inbound: new Counter({
      name: 'smgw_encrypt_inbound_total',
      help: 'Inbound messages by result (decrypted, not-decrypted, plain)',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
  };
}
export type EncryptMetrics = ReturnType<typeof encryptMetrics>;
