// Engine metrics in Prometheus text format, named as llama.cpp's server and
// vLLM name theirs, so the daemon's load reader works the same against the
// simulator and a real engine.
//
// Hand-written rather than prom-client: the hot path only bumps plain number
// fields (prom-client's inc() hashes label sets per call), gauges are read from
// the scheduler at scrape time instead of being mirrored on every change, and a
// scrape is one string concatenation (prom-client's registry is async and
// allocates per metric). The names also contain colons, which are legal but
// which we want emitted exactly as the engines do.

export class Histogram {
  readonly bounds: readonly number[]
  readonly counts: number[]
  sum = 0
  count = 0

  constructor(bounds: readonly number[]) {
    this.bounds = bounds
    this.counts = new Array<number>(bounds.length).fill(0)
  }

  observe(v: number): void {
    this.sum += v
    this.count++
    const b = this.bounds
    for (let i = 0; i < b.length; i++) {
      if (v <= (b[i] as number)) {
        this.counts[i] = (this.counts[i] as number) + 1
        return
      }
    }
  }
}

// vLLM's own bucket boundaries for these two histograms.
const TTFT_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10]
const QUEUE_BUCKETS = [0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60]

export type RejectReason = 'queue_full' | 'draining' | 'loading' | 'simulated_failure'
const REJECT_REASONS: readonly RejectReason[] = ['queue_full', 'draining', 'loading', 'simulated_failure']

/** Counters the scheduler and the HTTP layer bump; plain fields on purpose. */
export class EngineCounters {
  promptTokens = 0
  generatedTokens = 0
  requestsLength = 0
  requestsStopped = 0
  requestsAborted = 0
  readonly rejected: Record<RejectReason, number> = { queue_full: 0, draining: 0, loading: 0, simulated_failure: 0 }
  readonly ttftSeconds = new Histogram(TTFT_BUCKETS)
  readonly queueSeconds = new Histogram(QUEUE_BUCKETS)
}

export interface EngineGauges {
  running: number
  waiting: number
  slots: number
  queueLimit: number
  draining: boolean
  ready: boolean
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')
}

function head(name: string, type: string, help: string): string {
  return `# HELP ${name} ${help}\n# TYPE ${name} ${type}\n`
}

function renderHistogram(name: string, help: string, labels: string, h: Histogram): string {
  let out = head(name, 'histogram', help)
  let cumulative = 0
  for (let i = 0; i < h.bounds.length; i++) {
    cumulative += h.counts[i] as number
    out += `${name}_bucket{${labels},le="${h.bounds[i]}"} ${cumulative}\n`
  }
  out += `${name}_bucket{${labels},le="+Inf"} ${h.count}\n`
  out += `${name}_sum{${labels}} ${h.sum}\n${name}_count{${labels}} ${h.count}\n`
  return out
}

/**
 * Renders the exposition. vLLM labels its series with the served base model;
 * with several `--models`, the first one plays that role (the others are like
 * LoRA adapters on the same engine: the counts are engine-wide).
 */
export function renderMetrics(c: EngineCounters, g: EngineGauges, baseModel: string): string {
  const m = `model_name="${escapeLabel(baseModel)}"`
  const kv = g.slots > 0 ? g.running / g.slots : 0
  let out = ''
  // llama.cpp server names (no labels, as llama.cpp emits them).
  out += head('llamacpp:prompt_tokens_total', 'counter', 'Number of prompt tokens processed.')
  out += `llamacpp:prompt_tokens_total ${c.promptTokens}\n`
  out += head('llamacpp:tokens_predicted_total', 'counter', 'Number of generation tokens processed.')
  out += `llamacpp:tokens_predicted_total ${c.generatedTokens}\n`
  out += head('llamacpp:kv_cache_usage_ratio', 'gauge', 'KV-cache usage. 1 means 100 percent usage.')
  out += `llamacpp:kv_cache_usage_ratio ${kv}\n`
  out += head('llamacpp:requests_processing', 'gauge', 'Number of requests processing.')
  out += `llamacpp:requests_processing ${g.running}\n`
  out += head('llamacpp:requests_deferred', 'gauge', 'Number of requests deferred.')
  out += `llamacpp:requests_deferred ${g.waiting}\n`
  // vLLM names.
  out += head('vllm:num_requests_running', 'gauge', 'Number of requests in model execution batches.')
  out += `vllm:num_requests_running{${m}} ${g.running}\n`
  out += head('vllm:num_requests_waiting', 'gauge', 'Number of requests waiting to be processed.')
  out += `vllm:num_requests_waiting{${m}} ${g.waiting}\n`
  out += head('vllm:gpu_cache_usage_perc', 'gauge', 'GPU KV-cache usage. 1 means 100 percent usage.')
  out += `vllm:gpu_cache_usage_perc{${m}} ${kv}\n`
  out += head('vllm:kv_cache_usage_perc', 'gauge', 'KV-cache usage. 1 means 100 percent usage.')
  out += `vllm:kv_cache_usage_perc{${m}} ${kv}\n`
  out += head('vllm:prompt_tokens_total', 'counter', 'Number of prefill tokens processed.')
  out += `vllm:prompt_tokens_total{${m}} ${c.promptTokens}\n`
  out += head('vllm:generation_tokens_total', 'counter', 'Number of generation tokens processed.')
  out += `vllm:generation_tokens_total{${m}} ${c.generatedTokens}\n`
  out += head('vllm:request_success_total', 'counter', 'Count of finished requests by finish reason.')
  out += `vllm:request_success_total{${m},finished_reason="stop"} ${c.requestsStopped}\n`
  out += `vllm:request_success_total{${m},finished_reason="length"} ${c.requestsLength}\n`
  out += `vllm:request_success_total{${m},finished_reason="abort"} ${c.requestsAborted}\n`
  out += renderHistogram('vllm:time_to_first_token_seconds', 'Histogram of time to first token in seconds.', m, c.ttftSeconds)
  out += renderHistogram('vllm:request_queue_time_seconds', 'Histogram of time spent waiting for a slot in seconds.', m, c.queueSeconds)
  // The simulator's own: configuration and what it refused before queueing.
  out += head('meshd_sim_info', 'gauge', 'Marks this engine as the meshd simulator.')
  out += `meshd_sim_info{${m}} 1\n`
  out += head('meshd_sim_slots', 'gauge', 'Configured decode slots.')
  out += `meshd_sim_slots ${g.slots}\n`
  out += head('meshd_sim_queue_limit', 'gauge', 'Configured queue bound.')
  out += `meshd_sim_queue_limit ${g.queueLimit}\n`
  out += head('meshd_sim_draining', 'gauge', '1 while draining for shutdown.')
  out += `meshd_sim_draining ${g.draining ? 1 : 0}\n`
  out += head('meshd_sim_ready', 'gauge', '0 until --ready-after-ms has passed.')
  out += `meshd_sim_ready ${g.ready ? 1 : 0}\n`
  out += head('meshd_sim_requests_rejected_total', 'counter', 'Requests refused before queueing, by reason.')
  for (const r of REJECT_REASONS) out += `meshd_sim_requests_rejected_total{reason="${r}"} ${c.rejected[r]}\n`
  return out
}
