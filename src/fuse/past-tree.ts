// A past state as the read-only mounts see it: the as-of reader, and its
// directories' recursive statistics, computed exactly once per directory
// (a past state never changes) when first asked for.

import type { AsOf } from '../history/index.js';
import type { Aggregates } from '../volume/aggregates.js';
import type { Attrs, ProjectionReader, VolumeReader } from '../volume/reader.js';

const PAGE = 1000;

export class PastTree {
  /** Per directory id (hex): its aggregates, or the promise of them while they are computed. */
  private readonly memo = new Map<string, Promise<Aggregates>>();

  constructor(readonly asOf: AsOf) {}

  get reader(): VolumeReader<ProjectionReader> {
    return this.asOf.reader;
  }

  /**
   * The figures the live volume keeps (volume/aggregates.ts): bytes of
   * regular files and non-directories once per link, subdirectories, and
   * the newest ctime of the directory and everything below.
   */
  aggregates(dir: Attrs): Promise<Aggregates> {
    const key = dir.id.toString('hex');
    let known = this.memo.get(key);
    if (known === undefined) {
      known = this.compute(dir);
      this.memo.set(key, known);
      known.catch(() => this.memo.delete(key));
    }
    return known;
  }

  private async compute(dir: Attrs): Promise<Aggregates> {
    const proj = this.asOf.projection;
    const total: Aggregates = { rbytes: 0, rfiles: 0, rsubdirs: 0, rctime: dir.ctime, exact: true };
    for (let after: string | undefined; ;) {
      const page = await proj.readdir(dir.id, { after, limit: PAGE });
      if (page.length === 0) break;
      for (const e of page) {
        const a = await proj.getattr(e.id);
        if (a === undefined) continue;
        if (a.ctime > total.rctime) total.rctime = a.ctime;
        if (a.kind === 'dir') {
          const sub = await this.aggregates(a);
          total.rsubdirs += 1 + sub.rsubdirs;
          total.rfiles += sub.rfiles;
          total.rbytes += sub.rbytes;
          if (sub.rctime > total.rctime) total.rctime = sub.rctime;
        } else {
          total.rfiles++;
          if (a.kind === 'file') total.rbytes += a.size;
        }
      }
      after = page[page.length - 1]!.name;
      if (page.length < PAGE) break;
    }
    return total;
  }
}
