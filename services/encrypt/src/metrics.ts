// encrypt's metrics: the stage metrics every consumer has, and recipients by the form they got.
import { Counter, type Registry, stageMetrics } from '@smgw/observability';

export function encryptMetrics(registry: Registry) {
  return {
    ...stageMetrics(registry, 'encrypt'),
    recipients: new Counter({
      name: 'smgw_encrypt_recipients_total',
      help: 'Outbound recipients by the form their copy took (smime, pgp, portal, already-encrypted)',
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
