/**
 * The `policy` section: where the policy comes from, a directory (`dir`) or a git repository
 * (`git`, docs/policy-git.md), one or the other. The forms of a git URL, ref and SSH key are
 * defined here and used by src/policy-git as well, so the schema and the sync agree.
 */
import { z } from 'zod';

/** file://, ssh:// and https:// URLs, or scp-like user@host:path (ssh). */
export const GIT_URL = /^(?:(?:file|ssh|https):\/\/\S+|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:\S+)$/;
export const GIT_URL_TEXT = 'a git URL: file:///srv/git/policy.git, ssh://git@host/org/policy.git or git@host:org/policy.git';

/** A branch, tag or full ref name; nothing git could read as an option or a range. */
export const GIT_REF = /^(?!-)(?!.*\.\.)(?!.*\/\/)(?!.*@\{)[A-Za-z0-9._/-]+(?<![./])$/;
export const GIT_REF_TEXT = 'a branch, tag or ref name, e.g. main, release/prod or refs/tags/policy-v3';

/** A relative path inside the repository, never climbing out of it. */
const REPO_PATH = /^(?!\/)(?!(?:.*\/)?\.\.(?:\/|$)).+$/;

const KEY_TYPES = ['ssh-ed25519', 'ssh-rsa', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'sk-ssh-ed25519@openssh.com', 'sk-ecdsa-sha2-nistp256@openssh.com'];
/** `TYPE BASE64 [comment]`, as in a .pub file or authorized_keys without options. */
export const SSH_PUBLIC_KEY = new RegExp(`^(?:${KEY_TYPES.map((t) => t.replace(/[.@]/g, '\\$&')).join('|')}) [A-Za-z0-9+/]+={0,3}(?: [^\\r\\n]*)?$`);
export const SSH_PUBLIC_KEY_TEXT = 'an SSH public key line, e.g. "ssh-ed25519 AAAAC3Nz… release@example.com" (the content of a .pub file)';

export const POLICY_TEXT = 'where the policy comes from: { dir: policy } or { git: { url: ssh://git@host/org/policy.git } }';

export function policySection<Duration extends z.ZodType<string>>(duration: (fallback: string) => Duration) {
  const positive = (schema: Duration) => schema.refine((value) => !/^0+[smhd]$/.test(value), 'must be longer than zero, e.g. 60s');
  const git = z
    .strictObject({
      url: z.string().regex(GIT_URL, GIT_URL_TEXT).describe(`the repository holding the policy, ${GIT_URL_TEXT}`),
      ref: z.string().regex(GIT_REF, GIT_REF_TEXT).default('main'),
      /** The policy directory inside the repository. */
      path: z.string().regex(REPO_PATH, 'a relative path inside the repository, e.g. policy or . for its root').default('.'),
      /** Between fetches; SIGHUP and the admin API fetch at once as well. */
      interval: positive(duration('60s')),
      /** The longest one git command (a fetch) may take. */
      timeout: positive(duration('60s')),
      /** meshgate's own clone and checkouts; default <state.embedded.dir>/policy-git (required with state.postgres). */
      workDir: z.string().min(1).optional(),
      /** Present: only commits signed (SSH signatures) by one of these keys are applied. */
      trustedKeys: z
        .union([
          z.array(z.string().regex(SSH_PUBLIC_KEY, SSH_PUBLIC_KEY_TEXT)).min(1),
          z.strictObject({ file: z.string().min(1).describe('a file of SSH public keys, one a line, e.g. /etc/meshgate/policy-signers.pub') }),
        ])
        .meta({ expected: 'a list of SSH public key lines, or { file: PATH } of such lines' })
        .optional(),
    })
    .describe('the git repository holding the policy: { url: ssh://git@host/org/policy.git, ref: main, path: policy }');
  return z
    .strictObject({
      dir: z.string().min(1).describe('the directory of policy YAML files, e.g. policy (see deploy/examples/policy)').optional(),
      /**
       * With `dir`: reload when the directory changes (inotify, and a poll every `pollInterval`
       * for what a watch misses). SIGHUP and POST /v1/policy/reload on the admin API reload
       * either way. With `git`, the sync's interval does this instead.
       */
      watch: z.boolean().default(true).describe('reload when a policy file changes (true) or only on SIGHUP and the admin API (false)'),
      pollInterval: duration('10s').describe("how often the watch also compares the files' sizes and times, e.g. 10s; 0 for never"),
      /**
       * What a reload means for sessions already open: `keep` their decision (the version that
       * admitted them; new sessions and USE get the new one), or `reevaluate` each against the
       * new version and end those it no longer allows as their role, with an audit event.
       */
      openSessions: z.enum(['keep', 'reevaluate']).default('keep').describe('keep (open sessions keep their decision) or reevaluate (end those the new version no longer allows)'),
      git: git.optional(),
    })
    .superRefine((policy, ctx) => {
      if (policy.dir === undefined && policy.git === undefined) {
        ctx.addIssue({ code: 'custom', path: ['dir'], message: `required: ${POLICY_TEXT}`, params: { missing: true } });
      } else if (policy.dir !== undefined && policy.git !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['git'], message: 'dir and git cannot be used together: the policy comes from one place (remove dir to take it from git)' });
      }
    })
    .describe(POLICY_TEXT);
}
