/**
 * Types for the two parts of systeminformation the load sampler imports on
 * their own (daemon/load-sampler.ts): the package's types cover only its
 * index, which loads every part.
 */
declare module 'systeminformation/lib/cpu.js' {
  import type { Systeminformation } from 'systeminformation'
  export function currentLoad (): Promise<Systeminformation.CurrentLoadData>
}
declare module 'systeminformation/lib/memory.js' {
  import type { Systeminformation } from 'systeminformation'
  export function mem (): Promise<Systeminformation.MemData>
}
