// A map of recently used entries bounded by two generations: a full young
// map becomes the old one and the old one is dropped; a hit in the old one
// moves back to the young. Cheaper per hit than a strict LRU, which is what
// the projection's hot caches want (cipher.ts: opened values and name tags;
// record-cache.ts: records in the clear).

export class RecentMap<V> {
  private young = new Map<string, V>();
  private old = new Map<string, V>();

  /** `generation`: entries per generation (up to twice this many are kept). */
  constructor(private readonly generation: number) {}

  get(key: string): V | undefined {
    const v = this.young.get(key);
    if (v !== undefined) return v;
    const aged = this.old.get(key);
    if (aged !== undefined) this.set(key, aged);
    return aged;
  }

  set(key: string, value: V): void {
    if (this.young.size >= this.generation && !this.young.has(key)) {
      this.old = this.young;
      this.young = new Map();
    }
    this.young.set(key, value);
    // An older value in the old generation must not outlive this one.
    if (this.old.size > 0) this.old.delete(key);
  }

  delete(key: string): void {
    this.young.delete(key);
    this.old.delete(key);
  }

  clear(): void {
    this.young = new Map();
    this.old = new Map();
  }
}
