// `./smgw keys rotate-master | list`. Everything sealed under SMGW_MASTER_KEY is sealed again under a new one:
// the key store's KEK files (message blobs) and mailbox key files, the agencies' private keys and the data keys of
// mailboxes from before the key store (legacy rows; the others are sealed under their mailbox key file).
// Rotation without downtime:
//   1. run every service with SMGW_MASTER_KEY=<new> and SMGW_MASTER_KEY_PREVIOUS=<old> (they read under both);
//   2. run this command with the same two settings and DATABASE_URL (it may be run again if interrupted);
//   3. unset SMGW_MASTER_KEY_PREVIOUS everywhere: the old key opens nothing any more.
// The reaper and mailbox deletions go on meanwhile: a KEK retired or a mailbox deleted while its file is re-sealed is
// not brought back (rotateMasterKey, rotateMailboxKeyFiles look that up in the database after each rename).
// `./smgw keys list` shows the KEKs held (ids name their period's start).
import { createFolderKeyStore, rotateMasterKey } from '@smgw/blob-store';
import { base64Key, loadConfigOrExit, setting, settings } from '@smgw/config';
import { createPool } from '@smgw/db';
import { resealAgencyKeys } from '@smgw/key-directory';
import { resealMailboxKeys, rotateMailboxKeyFiles } from '@smgw/mailbox-store';

const [command] = process.argv.slice(2);
const config = loadConfigOrExit('keys', {
  databaseUrl: settings.databaseUrl,
  databaseSchema: settings.databaseSchema,
  masterKey: setting('SMGW_MASTER_KEY', base64Key(32), undefined, settings.masterKey.help, {
    secret: true,
    required: true,
  }),
  masterKeyPrevious: settings.masterKeyPrevious,
  keyStoreDir: setting('SMGW_KEY_STORE_DIR', settings.keyStoreDir.parse, undefined, settings.keyStoreDir.help, {
    required: true,
  }),
});

try {
  await run(command);
} catch (err) {
  const code = (err as { code?: string }).code;
  process.stderr.write(`keys: ${code ? `${code} ` : ''}${(err as Error).message}\n`);
  process.exitCode = 1;
}

async function run(command: string | undefined): Promise<void> {
  if (command === 'rotate-master') {
    const previous = config.masterKeyPrevious;
    if (!previous) {
      process.stderr.write('keys: SMGW_MASTER_KEY_PREVIOUS (the old master key) is needed to rotate\n');
      process.exit(78);
    }
    const pool = createPool({ url: config.databaseUrl, schema: config.databaseSchema });
    try {
      const rotation = { pool, keyStoreDir: config.keyStoreDir, from: previous, to: config.masterKey };
      const keks = await rotateMasterKey(rotation);
      say('KEK file(s)', keks, keks.retiredMeanwhile ? `, ${keks.retiredMeanwhile} retired meanwhile` : '');
      const mailboxKeys = await rotateMailboxKeyFiles(rotation);
      say(
        'mailbox key file(s)',
        mailboxKeys,
        (mailboxKeys.deletedMeanwhile ? `, ${mailboxKeys.deletedMeanwhile} deleted meanwhile` : '') +
          (mailboxKeys.withoutMailbox
            ? `, ${mailboxKeys.withoutMailbox} without a mailbox row left as they are (the reaper deletes orphans; ` +
              'a mailbox still being made: run again)'
            : ''),
      );
      say('agency private key(s)', await resealAgencyKeys(pool, { from: previous, to: config.masterKey }));
      say('legacy mailbox data key(s)', await resealMailboxKeys(pool, { from: previous, to: config.masterKey }));
    } finally {
      await pool.end();
    }
  } else if (command === 'list') {
    for (const kek of await createFolderKeyStore(config).list()) {
      process.stdout.write(`${kek.id}\tperiod from ${kek.periodStart.toISOString()}\n`);
    }
  } else {
    process.stderr.write('usage: smgw keys rotate-master | list\n');
    process.exit(64);
  }
}

function say(what: string, result: { resealed: number; alreadyCurrent: number }, more = ''): void {
  process.stderr.write(
    `keys: ${result.resealed} ${what} re-sealed under the new master key, ${result.alreadyCurrent} already were${more}\n`,
  );
}
