// Signature timestamps (RFC 3161 Appendix A: the unsigned attribute id-aa-signatureTimeStampToken, a token over the
// SignerInfo's signature value) for every CMS signature, in a mail (S/MIME, CAdES) or a PDF: a valid one is the
// signature's proof of existence, and a signer whose certificate has expired since is then judged at that time
// (EN 319 102-1 §5.6.2.4, simplified: no POE is sought for the revocation data itself; the path at that time needs
// revocation data current then, which embedded CRLs/OCSP responses can give).
import { ID_AA_SIGNATURE_TIME_STAMP_TOKEN, verifyTimestampToken } from './timestamp-token.ts';
import {
  type SignatureVerification,
  type SignedDataContext,
  type SignedDataVerification,
  type VerifySignedDataInput,
  verifySignedData,
} from './verify-signed-data.ts';

/** verifySignedData, then each SignerInfo's signature timestamp (when it has one) checked and applied. */
export async function verifySignedDataWithTimestamps(
  input: VerifySignedDataInput,
  context: SignedDataContext,
): Promise<SignedDataVerification> {
  const verification = await verifySignedData(input, context);
  const signatures: SignatureVerification[] = [];
  for (const signature of verification.signatures) {
    signatures.push(await applySignatureTimestamp(signature, input, context));
  }
  return { ...verification, signatures };
}

async function applySignatureTimestamp(
  signature: SignatureVerification,
  input: VerifySignedDataInput,
  context: SignedDataContext,
): Promise<SignatureVerification> {
  const signerInfo = input.signedData.signerInfos.find((s) => s.index === signature.signerIndex);
  const token = signerInfo?.unsignedAttributes?.find((a) => a.type === ID_AA_SIGNATURE_TIME_STAMP_TOKEN)?.values[0];
  if (!token || !signerInfo || signerInfo.formatProblem) return signature;
  const timestamp = await verifyTimestampToken(token.raw, [signerInfo.signature], context);
  if (timestamp.indication !== 'TOTAL_PASSED' || !timestamp.time) {
    return {
      ...signature,
      reasons: [
        ...signature.reasons,
        `the signature timestamp is not valid (${timestamp.indication}): it proves nothing`,
      ],
      timestamp,
    };
  }
  const proven = timestamp.time;
  const notes = [`a valid signature timestamp proves the signature existed at ${proven.toISOString()}`];
  let judged = signature;
  // An expired signer is judged at the proven time instead; only this SignerInfo, with a cache of its own.
  if (signature.subIndication === 'OUT_OF_BOUNDS_NO_POE' && proven < context.time) {
    const atPoe = await verifySignedData(
      { ...input, signedData: { ...input.signedData, signerInfos: [signerInfo] } },
      { ...context, time: proven, chainCache: new Map() },
    );
    const then = atPoe.signatures[0];
    if (then?.indication === 'TOTAL_PASSED') {
      judged = then;
      notes.push('the certificate has expired since; it was valid at the time the timestamp proves');
    } else if (then) {
      notes.push(`at the time the timestamp proves, the path did not validate either: ${then.reasons.join('; ')}`);
    }
  }
  return { ...judged, reasons: [...judged.reasons, ...notes], timestamp, proofOfExistence: proven };
}
