/** Walking the config schema, for error messages and env overrides. */

/**
 * The keys of a zod object, looking through default/optional/pipe/array
 * wrappers. A discriminated union gives the keys of the option that `value`
 * (the raw config at that place) selects, else the keys of all its options.
 */
export function objectShape (schema: unknown, value?: unknown): Record<string, unknown> | undefined {
  let s = schema as { _zod?: { def: Record<string, unknown> }, shape?: Record<string, unknown> } | undefined
  for (let i = 0; i < 10 && s !== undefined; i++) {
    if (s.shape !== undefined) return s.shape
    const def = s._zod?.def
    if (def === undefined) return undefined
    if (def.type === 'array') s = def.element as typeof s
    else if (def.type === 'union') {
      const chosen = chosenOption(def, value)
      if (chosen !== undefined) return objectShape(chosen)
      const merged: Record<string, unknown> = {}
      for (const o of def.options as unknown[]) Object.assign(merged, objectShape(o) ?? {})
      return merged
    } else s = (def.innerType ?? def.in) as typeof s
  }
  return undefined
}

/** The option of a discriminated union that the raw value's discriminator names, if any. */
function chosenOption (def: Record<string, unknown>, value: unknown): unknown {
  const key = def.discriminator
  if (typeof key !== 'string' || value === null || typeof value !== 'object') return undefined
  const wanted = (value as Record<string, unknown>)[key]
  return (def.options as unknown[]).find((o) => {
    const literal = objectShape(o)?.[key] as { _zod?: { def: { values?: unknown[] } } } | undefined
    return literal?._zod?.def.values?.includes(wanted) === true
  })
}
