import { blobDirectorySpace } from '@smgw/blob-store';
import { Counter, Gauge, Histogram, type Registry } from '@smgw/observability';

/** smgw_ingest_* metrics (README.md lists them). */
export function ingestMetrics(registry: Registry) {
  return {
    messages: new Counter({
      name: 'smgw_ingest_messages_total',
      help: 'Messages that reached the end of DATA, by listener and outcome (accepted or the refusal code)',
      labelNames: ['listener', 'outcome'],
      registers: [registry],
    }),
    bytes: new Counter({
      name: 'smgw_ingest_bytes_total',
      help: 'Bytes of accepted messages (as stored, Received header included)',
      labelNames: ['listener'],
      registers: [registry],
    }),
    connections: new Gauge({
      name: 'smgw_ingest_connections',
      help: 'Open SMTP sessions that passed the connection checks',
      labelNames: ['listener'],
      registers: [registry],
    }),
    recipientVerifications: new Counter({
      name: 'smgw_ingest_recipient_verifications_total',
      help: 'MX recipients checked against the agencies relay, by result (known, unknown, unverified, limited)',
      labelNames: ['result'],
      registers: [registry],
    }),
    submissionLimited: new Counter({
      name: 'smgw_ingest_submission_limited_total',
      help: 'Submission MAIL FROM, RCPT or message refused over an hourly limit, by limit (messages, recipients, bytes) and sender (account, network); the log line names which',
      labelNames: ['limit', 'sender'],
      registers: [registry],
    }),
    tlsSessionsLimited: new Counter({
      name: 'smgw_ingest_tls_sessions_limited_total',
      help: 'STARTTLS refused before the handshake over the new TLS sessions per minute, by listener and limit (client, network)',
      labelNames: ['listener', 'limit'],
      registers: [registry],
    }),
    tlsCertificateExpiry: new Gauge({
      name: 'smgw_ingest_tls_certificate_expiry_timestamp_seconds',
      help: 'When the STARTTLS certificate ingest loaded at start expires (Unix time; the first of the file)',
      registers: [registry],
    }),
    acceptDuration: new Histogram({
      name: 'smgw_ingest_accept_duration_seconds',
      help: 'Time from the DATA command to the final reply: streaming into the blob store, recording, publishing',
      labelNames: ['listener'],
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [registry],
    }),
    scans: new Counter({
      name: 'smgw_ingest_scans_total',
      help: 'Scans by ingest itself, by result: clean (the scan stage is skipped) or why the scan stage has the message',
      labelNames: ['result'],
      registers: [registry],
    }),
  };
}
export type IngestMetrics = ReturnType<typeof ingestMetrics>;

/**
 * smgw_blob_dir_* : the space left where message contents are kept (SMGW_BLOB_DIR), read when scraped (one statfs
 * per scrape for both). Exported by ingest, which every message's first write goes through and which answers 451
 * once the folder is full.
 */
export function blobDirectoryMetrics(registry: Registry, directory: string): void {
  // The first gauge collected asks; the second takes the same answer.
  let asked: ReturnType<typeof blobDirectorySpace> | undefined;
  const space = () => {
    asked ??= blobDirectorySpace(directory).finally(() => {
      asked = undefined;
    });
    return asked;
  };
  new Gauge({
    name: 'smgw_blob_dir_available_bytes',
    help: 'Bytes still free for the gateway on the file system of SMGW_BLOB_DIR',
    registers: [registry],
    async collect() {
      this.set((await space()).availableBytes);
    },
  });
  new Gauge({
    name: 'smgw_blob_dir_size_bytes',
    help: 'Size of the file system of SMGW_BLOB_DIR',
    registers: [registry],
    async collect() {
      this.set((await space()).sizeBytes);
    },
  });
}

/** smgw_ingest_scan_copy_bytes: what the copies kept for ingest's own scan hold now, of all messages being received. */
export function scanCopyMetrics(registry: Registry, held: () => number): void {
  new Gauge({
    name: 'smgw_ingest_scan_copy_bytes',
    help: 'Bytes held now by the copies of messages being received that ingest keeps for its own scan',
    registers: [registry],
    collect() {
      this.set(held());
    },
  });
}
