/** Walking the config schema, for error messages and env overrides. */

/** The keys of a zod object, looking through default/optional/pipe/array wrappers. */
export function objectShape (schema: unknown): Record<string, unknown> | undefined {
  let s = schema as { _zod?: { def: Record<string, unknown> }, shape?: Record<string, unknown> } | undefined
  for (let i = 0; i < 10 && s !== undefined; i++) {
    if (s.shape !== undefined) return s.shape
    const def = s._zod?.def
    if (def === undefined) return undefined
    if (def.type === 'array') s = def.element as typeof s
    else if (def.type === 'union') {
      const merged: Record<string, unknown> = {}
      for (const o of def.options as unknown[]) Object.assign(merged, objectShape(o) ?? {})
      return merged
    } else s = (def.innerType ?? def.in) as typeof s
  }
  return undefined
}
