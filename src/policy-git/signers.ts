/**
 * Trusted signers: SSH public keys, turned into the allowed-signers file git hands to
 * `ssh-keygen -Y verify` (gpg.format=ssh). Every key is trusted for the `git` namespace only,
 * under one principal: the question is "signed by a trusted key?", not "by whom?".
 */
import { SSH_PUBLIC_KEY, SSH_PUBLIC_KEY_TEXT } from '../config/policy-schema.ts';
import { mgError } from '../errors/index.ts';

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
