/**
 * The leader lease: when a leader may *act* (launch or stop cloud replicas)
 * knowing no other node can be acting at the same real instant.
 *
 * ## The mechanism
 *
 * Follower side (raft.ts, `voteFloor`): a node that receives an append from
 * the leader of its current term at local time t will not grant any vote or
 * pre-vote — to anyone, itself included — before local time t + E, where
 * E = electionTimeoutMin. A leader makes the same promise at the start of
 * each of its own rounds. A node that (re)starts makes it from its start
 * time, because a promise made before a crash lived only in memory.
 * (The leader's own promise is belt and braces: a leader never grants a vote
 * without first stepping down, which ends its acting anyway. It also keeps
 * a live leader deaf to disruptive candidates.)
 *
 * Leader side (this module): each broadcast of appends is a numbered round
 * whose local send time s_r is recorded before anything is sent; replies echo
 * the round. With the voters V of the leader's latest config, let q be the
 * highest round such that a majority of V have replied (in this term) to a
 * round ≥ q, the leader counting itself for its latest round. The lease runs
 * until s_q + L, L = E·(1−ρ)/(1+ρ) − margin (timing.ts). The leader acts
 * only while it is leader, the lease is live, it has committed an entry of
 * its own term, and it is in its latest config (raft.ts isActingLeader).
 *
 * ## Why two nodes never act at once
 *
 * Clocks: each local clock runs at a rate in [1−ρ, 1+ρ] of real time. A
 * promise of E local ms lasts ≥ E/(1+ρ) real ms; a lease of L local ms lasts
 * ≤ L/(1−ρ) real ms; L/(1−ρ) < E/(1+ρ) by the choice of L.
 *
 * (1) The intersection gives the time bound. Let A lead term a and act at
 * real time X on round r (sent at real S), acknowledged by a majority M of
 * its config C_A(X). Let B be elected in term b > a by votes from a majority
 * W of its config C_B. If some f is in both M and W: f replied to A's round
 * r' ≥ r in term a at real T_f ≥ S (it received the round after it was
 * sent), so it was in term a then; it voted in term b > a, so it voted after
 * T_f (a node's term never decreases, and once in term b it answers term-a
 * appends with term b, which A does not count). Its promise — or, if it
 * restarted in between, its start-up promise from a time ≥ T_f — means it
 * voted at real ≥ S + E/(1+ρ) > S + L/(1−ρ), when A's lease of round r had
 * ended. So B is elected, and can act, only after A stopped acting on r; and
 * this holds for every round A acts on.
 *
 * (2) M and W intersect. With one config this is majority arithmetic. With
 * single-server changes (thesis §4.1, including the rule that a leader
 * changes config only after committing an entry of its own term, and only
 * one uncommitted change at a time), by induction on b − a:
 *  - A acts only after committing its no-op, so everything in its log up to
 *    its commit index c is committed, and by Raft's leader completeness is in
 *    B's log. So B's log holds A's no-op: its last term is ≥ a.
 *  - If B's log holds an entry of some term d with a < d < b, that entry's
 *    leader D was elected before B (B holds what D wrote), and by induction D
 *    was elected after A's lease ended; so was B.
 *  - Otherwise B's log ends in term a, so it is a prefix of A's log (log
 *    matching; leaders never truncate) reaching at least c. Beyond c, A's log
 *    holds at most one config, one change from the config at c. If B's log
 *    stops at or before A's last index at X, C_B is C_A(X) or the one before
 *    it: equal or adjacent, so majorities intersect. If it reaches entries A
 *    appended after X, and C_B is the k-th config A appended after X: for
 *    k = 1, C_B is adjacent to C_A(X); for k ≥ 2 the (k−1)-th was committed
 *    before C_B was appended, by a majority of it that acknowledged entries
 *    sent after X > S — that majority meets W and (1) applies to it.
 *
 * So every leader elected in a later term is elected after the end of every
 * lease A acted on, and terms have at most one leader: at no real instant do
 * two nodes act. The simulation (sim/) checks this on every event with
 * drifting clocks, pauses, crashes and config changes.
 *
 * What the shell owes the proof: `now` is a monotonic clock read when the
 * call is made (after the message arrived, not before); all nodes use the
 * same electionTimeoutMin; a reply is sent only after its Ready was persisted
 * (a vote must survive a crash); and a side effect is issued promptly after
 * isActingLeader(now) said yes (the margin covers a few tens of ms).
 */
import { quorumValue } from './quorum.ts'

export class LeaseTracker {
  private readonly leaseMs: number
  private round = 0
  /** Send times of recent rounds, ascending; older ones can no longer give a live lease. */
  private readonly sent: Array<{ round: number, at: number }> = []
  /** The highest round each peer has replied to in this term. */
  private readonly acked = new Map<string, number>()

  constructor (leaseMs: number) {
    this.leaseMs = leaseMs
  }

  /** The round that messages sent now belong to (sent no earlier than its recorded time). */
  currentRound (): number { return this.round }

  /** Opens a round at local time `now`; record before sending anything in it. */
  startRound (now: number): number {
    this.round++
    this.sent.push({ round: this.round, at: now })
    while (this.sent.length > 1 && this.sent[0]!.at + this.leaseMs <= now) this.sent.shift()
    return this.round
  }

  /** A peer replied (in this term) to a message of `round`. */
  ack (peer: string, round: number): void {
    if (!(round >= 1 && round <= this.round)) return // not a round we sent
    if (round > (this.acked.get(peer) ?? 0)) this.acked.set(peer, round)
  }

  /**
   * Local time until which the lease runs for the voter set `voters`, or null
   * if no round has a majority. Computed on demand so a config change
   * applies at once.
   */
  until (voters: readonly string[], self: string): number | null {
    const q = quorumValue(voters, v => v === self ? this.round : this.acked.get(v))
    if (q === 0) return null
    // A round pruned from `sent` has a lease that already ended (and a later
    // round's send time would overstate it), so it gives no lease.
    const sent = this.sent.find(s => s.round === q)
    return sent === undefined ? null : sent.at + this.leaseMs
  }
}
