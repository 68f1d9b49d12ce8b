// Verifies an HS256 JWT against a key ring (newest first): a token signed with a key still in the ring is good, so
// rotating SECRET_KEY logs nobody out while the previous key is kept (SECRET_KEY_PREVIOUS).
import { errors, type JWTPayload, type JWTVerifyOptions, type JWTVerifyResult, jwtVerify } from 'jose';

export async function verifyWithRing(
  token: string,
  keys: readonly [Uint8Array, ...Uint8Array[]],
  options: JWTVerifyOptions,
): Promise<JWTVerifyResult<JWTPayload>> {
  for (let i = 0; ; i++) {
    try {
      return await jwtVerify(token, keys[i]!, options);
    } catch (err) {
      // Only a signature another key may have made is worth another try; an expired or malformed token is final.
      if (!(err instanceof errors.JWSSignatureVerificationFailed) || i === keys.length - 1) throw err;
    }
  }
}
