/**
 * @peculiar/x509 resolves its algorithm providers through tsyringe, which refuses to load
 * unless `Reflect.getMetadata` exists. The usual answer is the reflect-metadata package; it is
 * not a dependency here, and tsyringe only needs these four functions over plain objects, so a
 * WeakMap-backed version is enough. A real polyfill, if one is ever loaded first, wins.
 */

type MetadataKey = unknown;
type Target = object;

const store = new WeakMap<Target, Map<MetadataKey, unknown>>();

function ownMap(target: Target, create: boolean): Map<MetadataKey, unknown> | undefined {
  let map = store.get(target);
  if (map === undefined && create) {
    map = new Map();
    store.set(target, map);
  }
  return map;
}

function getOwnMetadata(key: MetadataKey, target: Target): unknown {
  return ownMap(target, false)?.get(key);
}

function getMetadata(key: MetadataKey, target: Target): unknown {
  // Metadata is inherited along the prototype chain, as reflect-metadata does it.
  for (let t: Target | null = target; t !== null; t = Object.getPrototypeOf(t) as Target | null) {
    const map = ownMap(t, false);
    if (map?.has(key) === true) return map.get(key);
  }
  return undefined;
}

function hasMetadata(key: MetadataKey, target: Target): boolean {
  for (let t: Target | null = target; t !== null; t = Object.getPrototypeOf(t) as Target | null) {
    if (ownMap(t, false)?.has(key) === true) return true;
  }
  return false;
}

function defineMetadata(key: MetadataKey, value: unknown, target: Target): void {
  ownMap(target, true)?.set(key, value);
}

const reflect = Reflect as unknown as Record<string, unknown>;
if (typeof reflect['getMetadata'] !== 'function') {
  Object.assign(reflect, { getMetadata, getOwnMetadata, hasMetadata, defineMetadata });
}
