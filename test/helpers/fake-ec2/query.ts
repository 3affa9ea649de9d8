/**
 * The EC2 query protocol's two ends, without EC2's semantics: a form body
 * (`Filter.1.Name=…&Filter.1.Value.1=…`) as a tree, and a JS value as EC2's
 * XML (lists as `<item>` children, the element names the SDK's xmlName
 * traits expect), plus EC2's error document.
 */
import { randomUUID } from 'node:crypto'

export const EC2_NS = 'http://ec2.amazonaws.com/doc/2016-11-15/'

/** A form body as a tree: `A.1.B=x` → {A: {1: {B: 'x'}}}. */
export type Tree = { [k: string]: Tree | string }

export function parseForm (body: string): Tree {
  const root: Tree = {}
  for (const [key, value] of new URLSearchParams(body)) {
    const parts = key.split('.')
    let node = root
    for (const p of parts.slice(0, -1)) {
      const next = node[p]
      if (typeof next === 'object') node = next
      else { const t: Tree = {}; node[p] = t; node = t }
    }
    node[parts[parts.length - 1]!] = value
  }
  return root
}

/** A string member, or undefined. */
export function str (t: Tree | undefined, key: string): string | undefined {
  const v = t?.[key]
  return typeof v === 'string' ? v : undefined
}

export function sub (t: Tree | undefined, key: string): Tree | undefined {
  const v = t?.[key]
  return typeof v === 'object' ? v : undefined
}

/** A list member (`Key.1`, `Key.2`, …) in index order. */
export function list (t: Tree | undefined, key: string): Array<Tree | string> {
  const v = sub(t, key)
  if (v === undefined) return []
  return Object.keys(v).filter((k) => /^\d+$/.test(k)).sort((a, b) => Number(a) - Number(b)).map((k) => v[k]!)
}

export function strings (t: Tree | undefined, key: string): string[] {
  return list(t, key).filter((x): x is string => typeof x === 'string')
}

export function trees (t: Tree | undefined, key: string): Tree[] {
  return list(t, key).filter((x): x is Tree => typeof x === 'object')
}

/** An EC2 error: the code is what the SDK names the exception. */
export class Ec2Error extends Error {
  readonly code: string
  readonly status: number
  constructor (code: string, message: string, status = 400) {
    super(message)
    this.code = code
    this.status = status
  }
}

export type Xml = string | number | boolean | Date | null | undefined | Xml[] | { [k: string]: Xml }

function esc (s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
}

/** A value's children as XML: objects by key (undefined left out), arrays as <item>s. */
export function toXml (v: Xml): string {
  if (v === null || v === undefined) return ''
  if (v instanceof Date) return v.toISOString()
  if (Array.isArray(v)) return v.map((x) => `<item>${toXml(x)}</item>`).join('')
  if (typeof v === 'object') return Object.entries(v).filter(([, x]) => x !== undefined && x !== null).map(([k, x]) => `<${k}>${toXml(x)}</${k}>`).join('')
  return esc(String(v))
}

/** An action's answer: `<ActionResponse xmlns=…><requestId/>…</ActionResponse>`. */
export function responseXml (action: string, body: Record<string, Xml>): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<${action}Response xmlns="${EC2_NS}"><requestId>${randomUUID()}</requestId>${toXml(body)}</${action}Response>`
}

/** EC2's error document (not namespaced, `RequestID` capitalised as EC2 sends it). */
export function errorXml (code: string, message: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>${esc(code)}</Code><Message>${esc(message)}</Message></Error></Errors><RequestID>${randomUUID()}</RequestID></Response>`
}

/** The region a request was signed for (SigV4 credential scope): one endpoint serves every region. */
export function signedRegion (authorization: string | undefined): string | undefined {
  return authorization?.match(/Credential=[^/]+\/\d{8}\/([^/]+)\/ec2\//)?.[1]
}
