/** `meshgate agent`: keeps a workload's SVID fresh on disk. */
export { runAgent, AGENT_EXIT, DEFAULT_RETRY, type AgentOptions, type AgentDeps, type AgentResult, type AgentCredential, type RetryPolicy, type WrittenSvid } from './loop.ts';
export { requestSvid, svidUrl, DEFAULT_REQUEST_TIMEOUT_MS, type SvidRequest, type SvidOutcome, type SvidFailure, type IssuedSvid } from './client.ts';
export { svidPaths, writeSvidFiles, SVID_FILE_NAME, type SvidFiles } from './files.ts';
