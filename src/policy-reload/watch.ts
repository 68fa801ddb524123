/**
 * Noticing that a policy directory changed. inotify (fs.watch) sees an edit at once, and a
 * Kubernetes ConfigMap update as the swap of its `..data` link; a slow poll of the files'
 * sizes and times catches what a watch can miss (network file systems, a directory replaced
 * whole). Either only asks for a reload: the reloader decides whether the content changed.
 */
import { watch, type FSWatcher } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { policyFileNames } from '../policy/index.ts';

export interface DirectoryWatchOptions {
  readonly dir: string;
  /** Edits come in bursts (an editor's save, a ConfigMap's several files): one reload after quiet. */
  readonly debounceMs: number;
  /** 0: no poll. */
  readonly pollMs: number;
  readonly onChange: () => void;
  readonly onError: (error: Error) => void;
}

export interface DirectoryWatch {
  close(): void;
}

/** Names, sizes and change times of what the loader would read, as one string. */
async function signature(dir: string): Promise<string> {
  const names = policyFileNames(await readdir(dir));
  const parts: string[] = [];
  for (const name of names) {
    try {
      const info = await stat(join(dir, name));
      parts.push(`${name}:${info.size}:${info.mtimeMs}:${info.ino}`);
    } catch {
      parts.push(`${name}:gone`);
    }
  }
  return parts.join('|');
}

export function watchPolicyDirectory(options: DirectoryWatchOptions): DirectoryWatch {
  let timer: NodeJS.Timeout | null = null;
  let closed = false;
  const changed = () => {
    if (closed) return;
    if (timer !== null) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = null;
      if (!closed) options.onChange();
    }, options.debounceMs);
    timer.unref();
  };
  let watcher: FSWatcher | null = null;
  try {
    watcher = watch(options.dir, { persistent: false }, changed);
    watcher.on('error', (error) => options.onError(error));
  } catch (error) {
    options.onError(error as Error);
  }
  let poll: NodeJS.Timeout | null = null;
  if (options.pollMs > 0) {
    let last: Promise<string | null> = signature(options.dir).catch(() => null);
    poll = setInterval(() => {
      last = last.then(async (before) => {
        const now = await signature(options.dir).catch(() => null);
        if (now !== before) changed();
        return now;
      });
    }, options.pollMs);
    poll.unref();
  }
  return {
    close() {
      closed = true;
      watcher?.close();
      if (timer !== null) clearTimeout(timer);
      if (poll !== null) clearInterval(poll);
    },
  };
}
