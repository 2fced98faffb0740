// The "straightforward pkijs" S/MIME encryption the encrypt benchmark (bench-encrypt.ts) compares against:
// EnvelopedData.encrypt over the whole message buffer, OAEP (pkijs has no PKCS#1 v1.5), base64 of the whole result.
// Not used by the gateway.
import * as pkijs from 'pkijs';

export function parsePkijsCertificate(der: Uint8Array): pkijs.Certificate {
  return pkijs.Certificate.fromBER(der);
}

export async function encryptWithPkijs(certificate: pkijs.Certificate, content: Uint8Array): Promise<Buffer> {
  const enveloped = new pkijs.EnvelopedData();
  enveloped.addRecipientByCertificate(certificate, { oaepHashAlgorithm: 'SHA-256' });
  const bytes = content.buffer.slice(content.byteOffset, content.byteOffset + content.byteLength) as ArrayBuffer;
  await enveloped.encrypt({ name: 'AES-CBC', length: 256 } as Parameters<pkijs.EnvelopedData['encrypt']>[0], bytes);
  const contentInfo = new pkijs.ContentInfo({
    contentType: pkijs.id_ContentType_EnvelopedData,
    content: enveloped.toSchema(),
  });
  const der = Buffer.from(contentInfo.toSchema().toBER(false));
  const base64 = der.toString('base64').replace(/.{76}/g, '$&\r\n');
  return Buffer.from(
    'MIME-Version: 1.0\r\nContent-Type: application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m\r\n' +
      `Content-Transfer-Encoding: base64\r\n\r\n${base64}\r\n`,
  );
}
