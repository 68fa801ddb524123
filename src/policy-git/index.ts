/** GitOps for policy: a git ref's commits, checked (and signature-verified) and handed to the reload path. */
export {
  startGitPolicySync,
  displayUrl,
  normalizePath,
  type ApplyRevision,
  type GitPolicySync,
  type GitPolicySyncOptions,
  type PolicyRevision,
  type SyncOutcome,
} from './sync.ts';
export { parseTrustedKeysText } from './signers.ts';
export { gitPolicyOptions } from './from-config.ts';
