// A binary min-heap of items ordered by their `due` time. Items remember their
// own position (`heapIndex`) so a cancelled request leaves the heap in
// O(log n) instead of lingering until its next token would have been due.

export interface HeapItem {
  due: number
  heapIndex: number // -1 when not in a heap
}

export class DueHeap<T extends HeapItem> {
  private readonly items: T[] = []

  get size(): number {
    return this.items.length
  }

  peek(): T | undefined {
    return this.items[0]
  }

  push(item: T): void {
    item.heapIndex = this.items.length
    this.items.push(item)
    this.up(item.heapIndex)
  }

  pop(): T | undefined {
    const top = this.items[0]
    if (top !== undefined) this.removeAt(0)
    return top
  }

  remove(item: T): void {
    const i = item.heapIndex
    if (i >= 0 && this.items[i] === item) this.removeAt(i)
  }

  clear(): void {
    for (const item of this.items) item.heapIndex = -1
    this.items.length = 0
  }

  private removeAt(i: number): void {
    const items = this.items
    const gone = items[i] as T
    const last = items.pop() as T
    gone.heapIndex = -1
    if (i < items.length) {
      items[i] = last
      last.heapIndex = i
      this.down(i)
      this.up(last.heapIndex)
    }
  }

  private up(i: number): void {
    const items = this.items
    const item = items[i] as T
    while (i > 0) {
      const p = (i - 1) >> 1
      const parent = items[p] as T
      if (parent.due <= item.due) break
      items[i] = parent
      parent.heapIndex = i
      i = p
    }
    items[i] = item
    item.heapIndex = i
  }

  private down(i: number): void {
    const items = this.items
    const n = items.length
    const item = items[i] as T
    for (;;) {
      const l = 2 * i + 1
      if (l >= n) break
      const r = l + 1
      let c = l
      if (r < n && (items[r] as T).due < (items[l] as T).due) c = r
      const child = items[c] as T
      if (child.due >= item.due) break
      items[i] = child
      child.heapIndex = i
      i = c
    }
    items[i] = item
    item.heapIndex = i
  }
}
