// smtp-server's own log lines: levels our logger does not write are no-ops on smtp-server's logger (nothing is built
// for them), and the levels it does write still arrive with smtp-server's fields.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLogger } from '@smgw/observability';
import { SMTPServer } from 'smtp-server';
import { quietLevelsNotLogged } from '../src/smtp-listener.ts';

function capture(level: string) {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger('ingest', level, { write: (line: string) => lines.push(JSON.parse(line)) });
  const server = new SMTPServer({ logger: log as unknown as SMTPServer['logger'] });
  quietLevelsNotLogged(server, log);
  return { server, lines };
}

describe("smtp-server's log lines", () => {
  it('builds nothing for the levels our log does not write, and passes on the ones it does', () => {
    const { server, lines } = capture('info');
    server.logger.debug({ tnx: 'command', cid: 'c1' }, 'C: %s', 'NOOP');
    server.logger.trace({ tnx: 'command', cid: 'c1' }, 'C: %s', 'NOOP');
    server.logger.info({ tnx: 'close', cid: 'c1' }, 'Connection closed to %s', '192.0.2.1');
    assert.deepEqual(
      lines.map((l) => [l.level, l.tnx, l.msg]),
      [['info', 'close', 'Connection closed to 192.0.2.1']],
    );
    assert.equal(server.logger.debug.length, 0, 'debug is a no-op');
  });

  it('writes debug lines when the level asks for them', () => {
    const { server, lines } = capture('debug');
    server.logger.debug({ tnx: 'command', cid: 'c2' }, 'C: %s', 'NOOP');
    assert.deepEqual(
      lines.map((l) => [l.level, l.msg]),
      [['debug', 'C: NOOP']],
    );
  });
});
