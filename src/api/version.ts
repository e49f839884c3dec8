/**
 * API versions: what this server speaks and which `/vX.Y/` prefixes it accepts. The docker CLI
 * pings first and then uses min(server `API-Version`, its own), so advertising 1.47 makes every
 * newer CLI talk 1.47.
 */
import { HttpError } from './errors.js';

/** The API version this server implements and advertises. */
export const API_VERSION = '1.47';
/** The oldest client version accepted (dockerd's minimum). */
export const MIN_API_VERSION = '1.24';
/** The newest version prefix accepted, so clients that skip negotiation still work. */
export const MAX_ACCEPTED_API_VERSION = '1.51';

function versionNumber(v: string): number {
  const [major = '0', minor = '0'] = v.split('.');
  return Number(major) * 1000 + Number(minor);
}

/**
 * Splits an optional `/vX.Y` prefix from `path`. Unprefixed paths get the server's version.
 * @throws HttpError 400 with dockerd's wording when the version is outside the accepted range
 * @example splitVersion('/v1.41/networks') // { version: '1.41', path: '/networks' }
 */
export function splitVersion(path: string): { version: string; path: string } {
  const m = /^\/v(\d+\.\d+)(\/.*)?$/.exec(path);
  if (m === null) return { version: API_VERSION, path };
  const version = m[1] ?? API_VERSION;
  const n = versionNumber(version);
  if (n < versionNumber(MIN_API_VERSION)) {
    throw new HttpError(
      400,
      `client version ${version} is too old. Minimum supported API version is ${MIN_API_VERSION}, please upgrade your client to a newer version`,
    );
  }
  if (n > versionNumber(MAX_ACCEPTED_API_VERSION)) {
    throw new HttpError(
      400,
      `client version ${version} is too new. Maximum supported API version is ${API_VERSION}`,
    );
  }
  return { version, path: m[2] ?? '/' };
}
