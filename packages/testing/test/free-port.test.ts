import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { test } from 'node:test';
import { freePort } from '../src/gateway-processes.ts';

test('a free port lies below the ephemeral range, where outgoing connections cannot take it', async () => {
  const ephemeralStart = Number((await readFile('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')).split(/\s+/)[0]);
  for (let i = 0; i < 20; i++) {
    const port = await freePort();
    // A machine whose ephemeral range starts at 20000 or lower leaves no room below it: any free port will do there.
    if (ephemeralStart > 20_000) assert.ok(port >= 20_000 && port < ephemeralStart, `port ${port}`);
    const server = createServer().listen(port, '127.0.0.1');
    await once(server, 'listening');
    server.close();
    await once(server, 'close');
  }
});
