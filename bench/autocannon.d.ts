/** The part of autocannon's API the benchmarks use (it ships no types). */
declare module 'autocannon' {
  interface Histogram { average: number, p50: number, p99: number }
  interface Result { requests: Histogram, latency: Histogram, errors: number, non2xx: number }
  interface Options { url: string, method?: string, headers?: Record<string, string>, body?: string, connections?: number, duration?: number }
  function autocannon (opts: Options): Promise<Result>
  export default autocannon
}
