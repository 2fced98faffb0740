// Writes the gateway's RabbitMQ topology (default retry ladders) as a definitions file for vhost "/".
// Usage: node packages/mq/src/export-definitions.ts [output file]   (default: deploy/rabbitmq/definitions.json)
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defaultRetryLadders } from './default-ladders.ts';
import { exportDefinitions } from './definitions.ts';

const defaultOutput = fileURLToPath(new URL('../../../deploy/rabbitmq/definitions.json', import.meta.url));
const output = process.argv[2] ?? defaultOutput;
writeFileSync(output, `${JSON.stringify(exportDefinitions(defaultRetryLadders()), null, 2)}\n`);
console.log(`wrote ${output}`);
