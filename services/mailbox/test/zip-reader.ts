// Reads a zip the portal wrote (yauzl, strict about names): every entry's path and bytes, in order.
import { fromBuffer } from 'yauzl';

export async function readZip(zip: Buffer): Promise<Array<{ path: string; content: Buffer }>> {
  return new Promise((resolve, reject) => {
    fromBuffer(zip, { lazyEntries: true, strictFileNames: true, validateEntrySizes: true }, (err, file) => {
      if (err || !file) return reject(err);
      const entries: Array<{ path: string; content: Buffer }> = [];
      file.on('error', reject);
      file.on('end', () => resolve(entries));
      file.on('entry', (entry) => {
        file.openReadStream(entry, (openErr, stream) => {
          if (openErr || !stream) return reject(openErr);
          const chunks: Buffer[] = [];
          stream.on('data', (chunk: Buffer) => chunks.push(chunk));
          stream.on('error', reject);
          stream.on('end', () => {
            entries.push({ path: entry.fileName, content: Buffer.concat(chunks) });
            file.readEntry();
          });
        });
      });
      file.readEntry();
    });
  });
}
