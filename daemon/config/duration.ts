/**
 * Durations in config files follow the spellings users bring from spawn and
 * SkyServe: `5m`, `10s`, `8h`, `1h30m`, `250ms`, `2d`. A bare number means
 * seconds (SkyServe's `*_seconds` keys are plain numbers). `0` is a valid
 * duration and, for ttl / idle_timeout, means "never" as in spawn.
 */
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/y

/** Returns milliseconds, or null when the text is not a duration. */
export function parseDuration (input: string | number): number | null {
  if (typeof input === 'number') return Number.isFinite(input) && input >= 0 ? Math.round(input * 1000) : null
  const text = input.trim()
  if (text === '') return null
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000)
  let total = 0
  PART.lastIndex = 0
  while (PART.lastIndex < text.length) {
    const at = PART.lastIndex
    const m = PART.exec(text)
    if (m === null || m.index !== at) return null
    total += Number(m[1]) * (UNIT_MS[m[2] as string] as number)
  }
  return Math.round(total)
}

/** Human form of a millisecond duration, for status tables and logs. */
export function formatDuration (ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`
  const s = Math.floor(ms / 1000)
  if (s < 60) return `${s}s`
  const m = Math.floor(s / 60)
  if (m < 60) return s % 60 === 0 ? `${m}m` : `${m}m${s % 60}s`
  const h = Math.floor(m / 60)
  if (h < 48) return m % 60 === 0 ? `${h}h` : `${h}h${m % 60}m`
  return `${Math.floor(h / 24)}d`
}
