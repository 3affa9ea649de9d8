/**
 * A node's local monotonic clock as a function of the simulation's real
 * time: piecewise linear, each piece at a rate within [1−ρ, 1+ρ], with an
 * arbitrary offset (a restarted process's monotonic clock starts anywhere).
 */
export class DriftClock {
  private baseReal: number
  private baseLocal: number
  private rate: number

  constructor (real: number, offset: number, rate: number) {
    this.baseReal = real
    this.baseLocal = offset
    this.rate = rate
  }

  get currentRate (): number { return this.rate }

  local (real: number): number {
    return this.baseLocal + (real - this.baseReal) * this.rate
  }

  /** The real time at which this clock will read `local` (at the current rate). */
  realAt (local: number): number {
    return this.baseReal + (local - this.baseLocal) / this.rate
  }

  /** Changes the rate from real time `real` on; the clock stays continuous. */
  setRate (real: number, rate: number): void {
    this.baseLocal = this.local(real)
    this.baseReal = real
    this.rate = rate
  }
}
