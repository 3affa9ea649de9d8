/**
 * The engine's own view of its load, read from its Prometheus `/metrics`:
 * requests it is running and requests waiting in its queue, whoever sent them
 * (clients that bypass meshd included), and its KV-cache use. Pure: text in,
 * load out; the scrape itself is in supervisor.ts.
 *
 * Each engine names these gauges its own way. The first family (in the order
 * of the table) with a running or waiting sample wins, and only that family
 * is read: the simulator publishes llama.cpp's and vLLM's names side by side
 * with the same values, and summing across families would count every request
 * twice. Within a family, running and waiting are summed over label sets
 * (vLLM labels by model and, with data parallelism, by engine); the KV-cache
 * ratio is averaged over label sets, clamped to [0, 1]. NaN and infinite
 * samples are ignored.
 */
import { parsePrometheusText } from './prom-text.ts'

export interface EngineFamily {
  /** What we call the engine in status and logs. */
  engine: string
  running: string
  waiting: string
  /** KV-cache usage ratio (0..1), the first name present wins. */
  kvCache: readonly string[]
}

export const ENGINE_FAMILIES: readonly EngineFamily[] = [
  // llama.cpp's server (`--metrics`), also BitNet's, which is llama.cpp's.
  { engine: 'llama.cpp', running: 'llamacpp:requests_processing', waiting: 'llamacpp:requests_deferred', kvCache: ['llamacpp:kv_cache_usage_ratio'] },
  // vLLM: kv_cache_usage_perc replaced gpu_cache_usage_perc (0.10); both are ratios despite the name.
  { engine: 'vllm', running: 'vllm:num_requests_running', waiting: 'vllm:num_requests_waiting', kvCache: ['vllm:kv_cache_usage_perc', 'vllm:gpu_cache_usage_perc'] },
  { engine: 'sglang', running: 'sglang:num_running_reqs', waiting: 'sglang:num_queue_reqs', kvCache: ['sglang:token_usage'] },
  // Hugging Face TGI.
  { engine: 'tgi', running: 'tgi_batch_current_size', waiting: 'tgi_queue_size', kvCache: [] }
]

const WANTED: ReadonlySet<string> = new Set(ENGINE_FAMILIES.flatMap((f) => [f.running, f.waiting, ...f.kvCache]))

export interface EngineLoad {
  /** Which family of names was read (`llama.cpp`, `vllm`, …). */
  source: string
  running: number
  waiting: number
  /** KV-cache use 0..1, when the engine publishes it. */
  kvCache?: number
}

interface Acc { sum: number, count: number }

/** The load an exposition describes, or null when it has none of the known gauges. */
export function engineLoadFromText (text: string): EngineLoad | null {
  const { samples } = parsePrometheusText(text, { names: WANTED })
  if (samples.length === 0) return null
  const acc = new Map<string, Acc>()
  for (const s of samples) {
    if (!Number.isFinite(s.value)) {
      // A NaN gauge still says the engine publishes the name.
      if (!acc.has(s.name)) acc.set(s.name, { sum: 0, count: 0 })
      continue
    }
    const a = acc.get(s.name)
    if (a === undefined) acc.set(s.name, { sum: s.value, count: 1 })
    else { a.sum += s.value; a.count++ }
  }
  for (const f of ENGINE_FAMILIES) {
    const running = acc.get(f.running)
    const waiting = acc.get(f.waiting)
    if (running === undefined && waiting === undefined) continue
    const load: EngineLoad = {
      source: f.engine,
      running: Math.max(0, running?.sum ?? 0),
      waiting: Math.max(0, waiting?.sum ?? 0)
    }
    for (const name of f.kvCache) {
      const kv = acc.get(name)
      if (kv === undefined || kv.count === 0) continue
      load.kvCache = Math.min(1, Math.max(0, kv.sum / kv.count))
      break
    }
    return load
  }
  return null
}
