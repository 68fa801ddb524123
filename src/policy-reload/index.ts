/** Policy reloads while meshgate runs: the reloader every trigger goes through, and the directory watch. */
export { PolicyReloader, type PolicyCandidate, type PolicyChangeRecorder, type PolicyReloaderOptions, type ReloadRequest, type ReloadResult, type ReloadTrigger } from './reloader.ts';
export { watchPolicyDirectory, type DirectoryWatch, type DirectoryWatchOptions } from './watch.ts';
