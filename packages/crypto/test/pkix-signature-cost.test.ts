// What one signature check may cost: node:crypto verifies an RSA signature with whatever public exponent and modulus
// the key names, and a stranger's key with a 2046-bit exponent costs about 120 times a normal one (a 3072-bit one:
// 5.5 ms against 0.045 ms). A message may ask for 512 signature values (16 layers × 32 SignerInfos) and more for
// their chains, so such keys are refused before anything is computed.
import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { describe, it } from 'node:test';
import * as pkijs from 'pkijs';
import { verifySignature } from '../src/index.ts';

// A test key made for this test (python: random primes, a random odd 2046-bit e coprime to φ): never used elsewhere.
const HUGE_EXPONENT_KEY = `-----BEGIN PRIVATE KEY-----
MIIFuwIBADANBgkqhkiG9w0BAQEFAASCBaUwggWhAgEAAoIBAQCmLEmBvQtMq9vr
Jh6R9KlBZD5cfIvUjAnKSK1zq/vknajoE3Y3P9W9uXVr9HuDMBpMH2rYJeF4MUn1
zplAtTU+t++/cTJtn0TNF0F0WILavFuB+JfhtO3rQQjMhdhlg/b0DqasQLiEt0w/
E/LVGTVVBnbJjxiSuklRmI+huPc2fDcZErJznUzy5FesAeuSbbdoKWsDYbFncFpQ
w+05J/5EciX213qsOUewA16SjbwPsHAW2c99jjVM5M4ZcoyVMEDzDa2B0gkr+t1l
4a/4H/+BNNI8So/23xZNZjsGhPxdz19JlJNanIVNc4++woFVYm/kyw/pZcbRLBsk
thfdJUEdAoIBACbEbxbQntagY4SA5fMEDCLvQJ3wRNY8Jo4hOsavP+k8yhjDqGuc
lOzTMgkjyTVnzFZvJxO3kDyja+zRn6+hm+SFxRkorsdxEWlq4CaDloucDgsAOCOI
Qw4LJ55G2EUxCpwzLR9TxkrykkJsnG0czNRlg4nfEPJ/7o3pgPwF+51VwWXHeiCI
WZ8a89ojGHRLL5DKQhInLgnN7+9zucRcq91NrL6G7OYPu3NQjv7wO57W8eN8nG9i
dvXBcbq8HG2ki4rFt+3sADzq2WwpLyGtiXMYgFVFxTO/nHJIqerKOU+w/OTZJ0r2
O2/sdGshkzLI3tKF7OPfug9UVa5z0uLg/TECggEAczfZno+Sp0uDnj+s25T//wZm
pFAwoDKW+fbiFjrDD7OhXmShqPrEWuV9yyPIhFiKklwbQ5yxW7SxfR17VJznjrqq
PIqRgUUElAue0NDOH+jZFzR1PqbWlLORoPoTwm1UWfaG62tVh51B1b5WLOtoxWZS
5ranib90hqad63XObr9Yd0LapD2pAHabqiX3vMR9A7xK4LinoJc7DOs6XQ0QThp7
KVrLXns+QqEhGyc8e1FL13/dmYYRzSbely1eXnsTtl1zVSoS07sd817nf8RFvQtR
Hg6HVo7zcpug5fvPyYTmNh4p80sptQkByn/rVq2x3Qk6gIYsSlo+NsWSGtIzAQKB
gQDSCw523kLdLxgEWjmgi6KGN7Yn6GQCCFn+YZg6QwHrY7UxTjp9MX7zbJBbgO99
ohN2e4VcTGU2hJEbc3jghN6qUnirN9l/PkpnDq6AI60/YvPHLJtOTH2wmRkmn0iU
qruK/+rjs6My9UyRp9Qisso02Laoadq1HQtc0beh/9jELwKBgQDKh/j0f0fLkxmy
IaR/FFQFfy4YKGiZw2WS2PRAweH3QmqE+zjRQXAke0zsWZWaa5htq3AQEUILQVd+
uIvIAB5JR5MOsVFhuOtgNlYRnFGOUcHXlNGAkq5c8NdQB00Ck1zE+1VwjdtAxrXt
ejVQiBoA8YJhdWiHvXGBjXDse6TgcwKBgD0uM+CXI35UV2QJu+xiUs/1kFwnqmXD
srVMRySpzFBl0KJacI5h+wR0pBj7r7ISvMg4Tm7PV8+lA9i2LWwauSV+CdSQ15oi
avU+AhOYPVmQQ8t9UG7vEY5YohYJSyLV22amb1P4FonAmFe5AsPYWKfWl/h2BXob
mUHgRJL3pFpTAoGAUjrlRO9AySfSrbsce/XNZ6HpsCE5JKeOR1pQxTIHUhrx+p45
J4FMTyYFZEuKsi1EB2jZGst2zTYYuKhEaDRZJ8SR6laHYE96XJM5GV4sCnJFbJxL
eNmMmNb0Sxi9oC6/M5OczH455rP76aaF2qQibPBM0ZBbHihUdbTi87kRRQ8CgYAd
5xd1kAKx+HOsjYQQ75yqmyc1Fef634Rx6/HxMHV7aT5e+8RJVhL2lKe3BVZ5n7bq
frJxxakNObRgoqM7xTfuLUiyfwqlKay41MLgiGmFow7V7/rHk9xRFs5D211uQBpE
Y/JF3GNbrIzPiNoNqNNH97n3K2O9X6gpX2cehxmguQ==
-----END PRIVATE KEY-----`;

const SHA256_WITH_RSA = new pkijs.AlgorithmIdentifier({ algorithmId: '1.2.840.113549.1.1.11' });
const POLICY = { minRsaBits: 2048, allowSha1: false };
const data = Buffer.from('signed attributes');

/** An RSA public key with a random odd modulus of `bits` bits (never a real key: only its size is read). */
function rsaPublicKeyOfBits(bits: number) {
  const n = randomBytes(bits / 8);
  n[0] = (n[0] ?? 0) | 0x80;
  n[n.length - 1] = (n[n.length - 1] ?? 0) | 1;
  return createPublicKey({ key: { kty: 'RSA', n: n.toString('base64url'), e: 'AQAB' }, format: 'jwk' });
}

describe('verifySignature', () => {
  it('refuses an RSA key above 8192 bits before computing anything', () => {
    const check = verifySignature(SHA256_WITH_RSA, data, randomBytes(1152), rsaPublicKeyOfBits(9216), POLICY);
    assert.equal(check.ok, false);
    assert.equal(check.problem, 'UNSUPPORTED_ALGORITHM');
    assert.match(check.reason ?? '', /9216 bits, more than 8192/);
  });

  it('still verifies (and here rejects) a signature by an 8192-bit key', () => {
    const check = verifySignature(SHA256_WITH_RSA, data, randomBytes(1024), rsaPublicKeyOfBits(8192), POLICY);
    assert.equal(check.ok, false);
    assert.equal(check.problem, 'BAD_SIGNATURE');
  });

  it('refuses an RSA key with a public exponent above 64 bits before computing anything', () => {
    const privateKey = createPrivateKey(HUGE_EXPONENT_KEY);
    const publicKey = createPublicKey(privateKey);
    assert.ok((publicKey.asymmetricKeyDetails?.publicExponent ?? 0n) > 2n ** 2000n);
    const check = verifySignature(SHA256_WITH_RSA, data, sign('sha256', data, privateKey), publicKey, POLICY);
    assert.equal(check.ok, false);
    assert.equal(check.problem, 'UNSUPPORTED_ALGORITHM');
    assert.match(check.reason ?? '', /public exponent/);
  });

  it('verifies an ordinary RSA key (e = 65537) as before', () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    assert.deepEqual(verifySignature(SHA256_WITH_RSA, data, sign('sha256', data, privateKey), publicKey, POLICY), {
      ok: true,
    });
  });
});
