// Google-style OIDC tokens signed by a key the test owns, and the certificate map that trusts it.
import { createSign, generateKeyPairSync } from 'node:crypto';

const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
export const TEST_KID = 'test-key-1';

/** What a CertificateSource gives: kid -> PEM public key. */
export const testCertificates = async (): Promise<Record<string, string>> => ({
  [TEST_KID]: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
});

export interface TokenClaims {
  aud?: string;
  email?: string;
  email_verified?: boolean;
  iss?: string;
  iat?: number;
  exp?: number;
  sub?: string;
}

/** A token as Pub/Sub push sends it; `signWith: 'other'` signs with a key nobody trusts. */
export function signToken(
  claims: TokenClaims,
  options: { signWith?: 'test' | 'other'; kid?: string } = {},
): string {
  const now = Math.floor(Date.now() / 1000);
  const header = { alg: 'RS256', typ: 'JWT', kid: options.kid ?? TEST_KID };
  const payload = {
    iss: 'https://accounts.google.com',
    iat: now,
    exp: now + 3600,
    sub: '1234567890',
    ...claims,
  };
  const encode = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const signed = `${encode(header)}.${encode(payload)}`;
  const signature = createSign('RSA-SHA256')
    .update(signed)
    .sign(options.signWith === 'other' ? other.privateKey : privateKey)
    .toString('base64url');
  return `${signed}.${signature}`;
}
