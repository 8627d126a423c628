// The volume log's one order: all writers' events sorted by (hlc, writer, seq).
//
// Each writer's stream is already sorted (a writer's clock rises with every
// event), so the volume log is a k-way merge of the streams, kept in a
// binary heap of their heads: O(log k) per event and one event per stream
// in memory. The order respects causality, because a writer's clock always
// exceeds every clock it has seen, and it is total and independent of the
// order in which streams are handed in, so every peer replays the same
// events in the same order.

export interface CausallyOrdered {
  readonly hlc: bigint;
  readonly writer: Uint8Array;
  readonly seq: bigint;
}

export function compareCausal(a: CausallyOrdered, b: CausallyOrdered): number {
  if (a.hlc !== b.hlc) return a.hlc < b.hlc ? -1 : 1;
  const w = Buffer.compare(a.writer, b.writer);
  if (w !== 0) return w;
  return a.seq < b.seq ? -1 : a.seq > b.seq ? 1 : 0;
}

interface Head<T> {
  item: T;
  rest: Iterator<T>;
}

/** Merges streams that are each sorted by compareCausal into one sorted stream. */
export function* mergeCausal<T extends CausallyOrdered>(streams: Iterable<Iterable<T>>): Generator<T> {
  const heap: Head<T>[] = [];
  for (const s of streams) {
    const rest = s[Symbol.iterator]();
    const first = rest.next();
    if (!first.done) push(heap, { item: first.value, rest });
  }
  try {
    while (heap.length > 0) {
      const top = heap[0];
      yield top.item;
      const next = top.rest.next();
      if (next.done) {
        const last = heap.pop()!;
        if (heap.length > 0) {
          heap[0] = last;
          siftDown(heap, 0);
        }
      } else {
        top.item = next.value;
        siftDown(heap, 0);
      }
    }
  } finally {
    // A consumer that stops early closes the streams it did not finish.
    for (const h of heap) h.rest.return?.();
  }
}

function push<T extends CausallyOrdered>(heap: Head<T>[], h: Head<T>): void {
  heap.push(h);
  let i = heap.length - 1;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (compareCausal(heap[parent].item, heap[i].item) <= 0) break;
    [heap[parent], heap[i]] = [heap[i], heap[parent]];
    i = parent;
  }
}

function siftDown<T extends CausallyOrdered>(heap: Head<T>[], i: number): void {
  for (;;) {
    const l = 2 * i + 1;
    const r = l + 1;
    let least = i;
    if (l < heap.length && compareCausal(heap[l].item, heap[least].item) < 0) least = l;
    if (r < heap.length && compareCausal(heap[r].item, heap[least].item) < 0) least = r;
    if (least === i) return;
    [heap[least], heap[i]] = [heap[i], heap[least]];
    i = least;
  }
}
