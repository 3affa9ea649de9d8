/**
 * The leader's side of replication: one Progress per target (what to send
 * next, what is known to match, when it last answered), the back-off after a
 * rejection, and the two majorities read from it: the commit index and the
 * time of the latest quorum contact (check-quorum). Pure bookkeeping; raft.ts
 * decides when to send and what to commit.
 */
import { quorumValue } from './quorum.ts'

export interface Progress {
  /** Next index to send; only moves forward on an acknowledgement (no pipelining). */
  next: number
  /** Highest index known to match our log. */
  match: number
  /** Local time of the latest reply in this term, for check-quorum. */
  lastAckAt: number
  /** The round of the reply that last moved `match`: later rejections below it mean the follower lost its log. */
  matchRound: number
}

/** A rejected append: where the follower's log stops matching ours, and its hint. */
export interface Rejection {
  rejectIndex: number
  hintIndex: number
  /** The follower's term at `rejectIndex`, 0 if it has no entry there. */
  hintTerm: number
}

export class ReplicationProgress {
  private readonly peers = new Map<string, Progress>()

  get (peer: string): Progress | undefined {
    return this.peers.get(peer)
  }

  has (peer: string): boolean {
    return this.peers.has(peer)
  }

  targets (): IterableIterator<string> {
    return this.peers.keys()
  }

  /** Targets that already hold everything before `index` (a new entry can go to them at once). */
  caughtUpBefore (index: number): string[] {
    return [...this.peers].filter(([, pr]) => pr.match === index - 1).map(([peer]) => peer)
  }

  /** Makes `targets` the replication targets: others are dropped, new ones start probing after `lastIndex`. */
  retarget (targets: ReadonlySet<string>, lastIndex: number, now: number): void {
    for (const peer of this.peers.keys()) if (!targets.has(peer)) this.peers.delete(peer)
    for (const peer of targets) {
      if (!this.peers.has(peer)) this.peers.set(peer, { next: lastIndex + 1, match: 0, lastAckAt: now, matchRound: 0 })
    }
  }

  /** Records a success up to `matchIndex` (a reply to round `round`); true when the match moved forward. */
  matched (pr: Progress, matchIndex: number, round: number): boolean {
    if (matchIndex <= pr.match) return false
    pr.match = matchIndex
    pr.matchRound = Math.max(pr.matchRound, round)
    pr.next = Math.max(pr.next, pr.match + 1)
    return true
  }

  /**
   * Moves `next` back after a rejection of our latest probe (fast back-off):
   * to the follower's hint or, if we hold entries of its conflicting term,
   * after our last one of that term, the likeliest match point (thesis
   * §5.3); never below what matches, never forward past the rejected probe.
   * False for a stale rejection (reordered or duplicated): acting on it
   * could move next backwards needlessly.
   */
  backOff (pr: Progress, r: Rejection, lastIndexOfTerm: (term: number, upTo: number) => number): boolean {
    if (r.rejectIndex !== pr.next - 1) return false
    let next = r.hintIndex
    if (r.hintTerm > 0) {
      const ours = lastIndexOfTerm(r.hintTerm, r.rejectIndex)
      if (ours > 0) next = ours + 1
    }
    pr.next = Math.max(pr.match + 1, Math.min(next, r.rejectIndex))
    return true
  }

  /**
   * Does this rejection say the follower no longer holds entries it
   * acknowledged? Its log ends (hintTerm 0: it has no entry at the probe)
   * below its match, in a reply to a round after the one that set the match
   * (an older reply could predate the match). A node that left its group and
   * wiped its state, then was adopted back, does this; Raft's promises from
   * it are void until it is caught up again from scratch.
   */
  lostLog (pr: Progress, r: Rejection & { round: number }): boolean {
    return r.round > pr.matchRound && r.hintTerm === 0 && r.hintIndex - 1 < pr.match
  }

  /** The highest index a majority of `voters` holds; `self` holds `selfLast`. */
  quorumMatch (voters: readonly string[], self: string, selfLast: number): number {
    return quorumValue(voters, v => v === self ? selfLast : this.peers.get(v)?.match)
  }

  /** The latest local time such that a majority of `voters` have replied since (`self` counting as `now`). */
  quorumContactAt (voters: readonly string[], self: string, now: number): number {
    return quorumValue(voters, v => v === self ? now : this.peers.get(v)?.lastAckAt, -Infinity)
  }
}
