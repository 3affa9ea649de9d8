/**
 * The address-book exchange run when two members connect: each side sends
 * the members it knows (id and addresses), so a node that joins through any
 * one member dials all the others at once instead of waiting for their
 * heartbeats. It carries no state: liveness comes only from signed heartbeats.
 */
import { z } from 'zod'

export const SYNC_VERSION = 1
export const SYNC_MAX_BYTES = 512 * 1024

export const syncMessageSchema = z.object({
  v: z.literal(SYNC_VERSION),
  cluster: z.string().max(64),
  members: z.array(z.object({
    id: z.string().max(128),
    addrs: z.array(z.string().max(256)).max(32)
  })).max(4096)
})

export type SyncMessage = z.output<typeof syncMessageSchema>
