/**
 * Key filters of subscriptions: a set of exact keys and/or a key prefix. Applied by subscribers to live events
 * and by publishers to snapshots, so both sides agree on what matches.
 */

/** A compiled filter; `undefined` means every event matches. */
export type KeyFilter = ((key: string | null | undefined) => boolean) | undefined

/** Compiles `keys`/`keyPrefix` (either may match); events without a key never match a filter. */
export const make = (keys: ReadonlyArray<string> | undefined, keyPrefix: string | undefined): KeyFilter => {
  const exact = keys === undefined || keys.length === 0 ? undefined : new Set(keys)
  if (exact === undefined && keyPrefix === undefined) return undefined
  return (key) =>
    typeof key === "string" && ((exact?.has(key) ?? false) || (keyPrefix !== undefined && key.startsWith(keyPrefix)))
}
