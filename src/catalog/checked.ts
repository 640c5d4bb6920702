/** The result of checking an input: the value, or every problem found (load-time errors list them all at once). */
export type Checked<T> = { ok: true; value: T } | { ok: false; errors: string[] }
