// A least-recently-used cache bounded by a total weight (bytes, or count).
//
// Readers use it for decrypted chunks and decoded manifest nodes: a file
// read in 128 KiB requests over ~64 KiB chunks would otherwise decrypt most
// chunks twice, and every request would decode the same tree nodes again.
// A Map keeps insertion order, so re-inserting on a hit makes it an LRU.

export class LruCache<K, V> {
  private readonly map = new Map<K, { value: V; weight: number }>();
  private total = 0;

  constructor(private readonly capacity: number) {}

  get(key: K): V | undefined {
    const hit = this.map.get(key);
    if (hit === undefined) return undefined;
    this.map.delete(key);
    this.map.set(key, hit);
    return hit.value;
  }

  set(key: K, value: V, weight = 1): void {
    if (weight > this.capacity) return;
    const old = this.map.get(key);
    if (old !== undefined) {
      this.map.delete(key);
      this.total -= old.weight;
    }
    this.map.set(key, { value, weight });
    this.total += weight;
    for (const [k, v] of this.map) {
      if (this.total <= this.capacity) break;
      this.map.delete(k);
      this.total -= v.weight;
    }
  }
}
