/**
 * Trusted signers: SSH public keys, turned into the allowed-signers file git hands to
 * `ssh-keygen -Y verify` (gpg.format=ssh). Every key is trusted for the `git` namespace only,
 * under one principal: the question is "signed by a trusted key?", not "by whom?".
 */
import { mgError } from '../errors/index.ts';

const KEY_TYPES = [
  'ssh-ed25519',
  'ssh-rsa',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'sk-ssh-ed25519@openssh.com',
  'sk-ecdsa-sha2-nistp256@openssh.com',
] as const;

/** `TYPE BASE64 [comment]`, as in a .pub file or authorized_keys without options. */
export const SSH_PUBLIC_KEY = new RegExp(`^(?:${KEY_TYPES.map((t) => t.replace(/[.@]/g, '\\$&')).join('|')}) [A-Za-z0-9+/]+={0,3}(?: [^\\r\\n]*)?$`);

export const SSH_PUBLIC_KEY_TEXT = 'an SSH public key line, e.g. "ssh-ed25519 AAAAC3Nz… release@example.com" (the content of a .pub file)';

const PRINCIPAL = 'meshgate-trusted';

/** The keys of a trusted-keys file: one per line; blank lines and # comments skipped. */
export function parseTrustedKeysText(text: string, source: string): string[] {
  const keys: string[] = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    if (!SSH_PUBLIC_KEY.test(line)) {
      throw mgError('MG_CONFIG_INVALID', `${source} line ${index + 1} is not ${SSH_PUBLIC_KEY_TEXT}`);
    }
    keys.push(line);
  });
  if (keys.length === 0) throw mgError('MG_CONFIG_INVALID', `${source} holds no SSH public key; put one ${SSH_PUBLIC_KEY_TEXT} per line`);
  return keys;
}

/** The allowed-signers file: `PRINCIPAL namespaces="git" TYPE KEY`, comments dropped. */
export function allowedSignersText(keys: readonly string[]): string {
  return keys
    .map((key) => {
      const [type, body] = key.split(' ');
      if (!SSH_PUBLIC_KEY.test(key) || type === undefined || body === undefined) throw new TypeError(`not an SSH public key: ${key.slice(0, 40)}`);
      return `${PRINCIPAL} namespaces="git" ${type} ${body}\n`;
    })
    .join('');
}
