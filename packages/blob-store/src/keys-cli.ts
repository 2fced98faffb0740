// `./smgw keys rotate-master`: re-seals every KEK file of SMGW_KEY_STORE_DIR under the new master key.
// Rotation without downtime:
//   1. run every service with SMGW_MASTER_KEY=<new> and SMGW_MASTER_KEY_PREVIOUS=<old> (they read under both);
//   2. run this command with the same two settings (it may be run again if interrupted);
//   3. unset SMGW_MASTER_KEY_PREVIOUS everywhere: the old key opens none of the files any more.
// `./smgw keys list` shows the KEKs held (ids name their period's start).
import { base64Key, loadConfigOrExit, setting, settings } from '@smgw/config';
import { createFolderKeyStore, rotateMasterKey } from './folder-key-store.ts';

const [command] = process.argv.slice(2);
const config = loadConfigOrExit('keys', {
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
    if (!config.masterKeyPrevious) {
      process.stderr.write('keys: SMGW_MASTER_KEY_PREVIOUS (the old master key) is needed to rotate\n');
      process.exit(78);
    }
    const result = await rotateMasterKey({
      keyStoreDir: config.keyStoreDir,
      from: config.masterKeyPrevious,
      to: config.masterKey,
    });
    process.stderr.write(
      `keys: ${result.resealed} KEK file(s) re-sealed under the new master key, ${result.alreadyCurrent} already were\n`,
    );
  } else if (command === 'list') {
    for (const kek of await createFolderKeyStore(config).list()) {
      process.stdout.write(`${kek.id}\tperiod from ${kek.periodStart.toISOString()}\n`);
    }
  } else {
    process.stderr.write('usage: smgw keys rotate-master | list\n');
    process.exit(64);
  }
}
