/**
 * Binary encoding of message payloads from a declarative schema (Barrelfish's Flounder, in
 * miniature). A schema is an ordered record of field types; its TypeScript type is inferred, so a
 * message type is declared exactly once and both sides are checked by the compiler.
 *
 * Encoding is little-endian and positional: no field names on the wire. Strings and byte arrays
 * carry a u32 length. A variant (a tagged union, `variant('op', { … })`) is one u8, the index of
 * its case in declaration order, then that case's fields. Each schema compiles once into a list of
 * closures: no JSON, no reflection on the hot path. A struct of fixed-size scalars also has a
 * layout (fixedLayout): its size and where each field lies, for headers patched or read in place.
 */

export type Scalar = 'u8' | 'u16' | 'u32' | 'i32' | 'f64' | 'u64' | 'i64' | 'bool' | 'str' | 'bytes';
export type FieldType = Scalar | readonly [FieldType] | Variant | { readonly [field: string]: FieldType };
export type Schema = { readonly [field: string]: FieldType };

/** Marks a variant among field types (a symbol: no schema can have the key by accident). */
const VARIANT: unique symbol = Symbol('variant');

/** A tagged union: its value is one case's fields plus `tag` naming the case. */
export interface Variant<Tag extends string = string, Cases extends { readonly [name: string]: Schema } = { readonly [name: string]: Schema }> {
  readonly [VARIANT]: { readonly tag: Tag; readonly cases: Cases };
}

/**
 * Declare a tagged union: `variant('op', { stat: { path: 'str' }, list: {} })` is the type
 * `{ op: 'stat'; path: string } | { op: 'list' }`. Cases are numbered in declaration order on the
 * wire: add new ones at the end.
 */
export function variant<const Tag extends string, const Cases extends { readonly [name: string]: Schema }>(tag: Tag, cases: Cases): Variant<Tag, Cases> {
  const count = Object.keys(cases).length;
  if (count === 0 || count > 256) throw new RangeError(`a variant has 1 to 256 cases, not ${count}`);
  for (const fields of Object.values(cases)) if (Object.hasOwn(fields, tag)) throw new RangeError(`a case of a variant has a field named like its tag, ${tag}`);
  return { [VARIANT]: { tag, cases } };
}

/** The JavaScript value of a field type. */
export type ValueOf<T> = T extends 'u8' | 'u16' | 'u32' | 'i32' | 'f64'
  ? number
  : T extends 'u64' | 'i64'
    ? bigint
    : T extends 'bool'
      ? boolean
      : T extends 'str'
        ? string
        : T extends 'bytes'
          ? Uint8Array
          : T extends readonly [infer E]
            ? ValueOf<E>[]
            : T extends Variant<infer Tag, infer Cases>
              ? { [C in keyof Cases & string]: { [K in Tag]: C } & ValueOf<Cases[C]> }[keyof Cases & string]
            : T extends Schema
              ? { -readonly [K in keyof T]: ValueOf<T[K]> }
              : never;

/** Raised when bytes do not decode under the expected schema. */
export class DecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DecodeError';
  }
}

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

/** A growable output buffer, reused across messages. */
export class Writer {
  bytes: Uint8Array;
  view: DataView;
  pos = 0;

  constructor(initial = 1024) {
    this.bytes = new Uint8Array(initial);
    this.view = new DataView(this.bytes.buffer);
  }

  reset(start = 0): void {
    this.pos = start;
  }

  ensure(extra: number): void {
    const need = this.pos + extra;
    if (need <= this.bytes.length) return;
    let size = Math.max(this.bytes.length * 2, 64);
    while (size < need) size *= 2;
    const bigger = new Uint8Array(size);
    bigger.set(this.bytes.subarray(0, this.pos));
    this.bytes = bigger;
    this.view = new DataView(bigger.buffer);
  }

  u8(v: number): void { this.ensure(1); this.view.setUint8(this.pos, v); this.pos += 1; }
  u16(v: number): void { this.ensure(2); this.view.setUint16(this.pos, v, true); this.pos += 2; }
  u32(v: number): void { this.ensure(4); this.view.setUint32(this.pos, v, true); this.pos += 4; }
  i32(v: number): void { this.ensure(4); this.view.setInt32(this.pos, v, true); this.pos += 4; }
  f64(v: number): void { this.ensure(8); this.view.setFloat64(this.pos, v, true); this.pos += 8; }
  u64(v: bigint): void { this.ensure(8); this.view.setBigUint64(this.pos, v, true); this.pos += 8; }
  i64(v: bigint): void { this.ensure(8); this.view.setBigInt64(this.pos, v, true); this.pos += 8; }

  raw(v: Uint8Array): void {
    this.u32(v.length);
    this.ensure(v.length);
    this.bytes.set(v, this.pos);
    this.pos += v.length;
  }

  str(v: string): void {
    // Worst case three bytes per UTF-16 unit; encodeInto writes in place, no temporary array.
    this.ensure(4 + v.length * 3);
    const { written } = utf8Encoder.encodeInto(v, this.bytes.subarray(this.pos + 4));
    this.view.setUint32(this.pos, written, true);
    this.pos += 4 + written;
  }
}

/** A bounds-checked cursor over received bytes; running past the end is a DecodeError. */
export class Reader {
  /** All of `bytes`, little-endian reads at the same offsets as `bytes[i]`. */
  view: DataView;
  pos: number;

  constructor(public bytes: Uint8Array, offset = 0, public end = bytes.length) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = offset;
  }

  /**
   * Read `bytes` from `offset` to `end` next. Over the same array as before (a ring's memory,
   * where every frame arrives) the view is kept: a messenger keeps one Reader, not a Reader and
   * a DataView per message.
   */
  point(bytes: Uint8Array, offset: number, end: number): void {
    if (bytes !== this.bytes) {
      this.bytes = bytes;
      this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    }
    this.pos = offset;
    this.end = end;
  }

  private take(n: number): number {
    const at = this.pos;
    if (at + n > this.end) throw new DecodeError(`truncated: need ${n} B at ${at}, have ${this.end - at}`);
    this.pos = at + n;
    return at;
  }

  u8(): number { return this.view.getUint8(this.take(1)); }
  u16(): number { return this.view.getUint16(this.take(2), true); }
  u32(): number { return this.view.getUint32(this.take(4), true); }
  i32(): number { return this.view.getInt32(this.take(4), true); }
  f64(): number { return this.view.getFloat64(this.take(8), true); }
  u64(): bigint { return this.view.getBigUint64(this.take(8), true); }
  i64(): bigint { return this.view.getBigInt64(this.take(8), true); }

  /** A copy: the source may be ring memory that is about to be reused. */
  raw(): Uint8Array {
    const n = this.u32();
    const at = this.take(n);
    return this.bytes.slice(at, at + n);
  }

  str(): string {
    const n = this.u32();
    const at = this.take(n);
    try {
      return utf8Decoder.decode(this.bytes.subarray(at, at + n));
    } catch {
      throw new DecodeError(`invalid UTF-8 in string field at ${at}`);
    }
  }

  bool(): boolean {
    return asBool(this.u8());
  }
}

function asBool(v: number): boolean {
  if (v > 1) throw new DecodeError(`invalid bool ${v}`);
  return v === 1;
}

type Encode = (w: Writer, v: unknown) => void;
type Decode = (r: Reader) => unknown;

/** A compiled schema: encode into a Writer, decode from a Reader. */
export interface Codec<T> {
  encode(w: Writer, value: T): void;
  decode(r: Reader): T;
}

export function compile<S extends Schema>(schema: S): Codec<ValueOf<S>> {
  const { encode, decode } = compileField(schema);
  return { encode: encode as (w: Writer, v: ValueOf<S>) => void, decode: decode as (r: Reader) => ValueOf<S> };
}

const MAX_LIST = 1 << 24;

/** The fewest bytes a value of `type` encodes to: bounds how many list items the input can hold. */
function minBytes(type: FieldType): number {
  if (typeof type === 'string') {
    switch (type) {
      case 'u8': case 'bool': return 1;
      case 'u16': return 2;
      case 'u32': case 'i32': case 'str': case 'bytes': return 4;
      default: return 8;
    }
  }
  if (Array.isArray(type)) return 4;
  if (isVariant(type)) return 1;
  let n = 0;
  for (const t of Object.values(type as Schema)) n += minBytes(t);
  return n;
}

/** The scalars of one size, of which a fixed layout is made. */
export type FixedScalar = Exclude<Scalar, 'str' | 'bytes'>;
export type FixedSchema = { readonly [field: string]: FixedScalar };

/** A field of a fixed layout: where it lies, and its value read or written there in place. */
export interface Slot<V> {
  /** Its offset from the start of the struct. */
  readonly at: number;
  /** `view` must hold the whole struct from `base`: a slot checks no bounds. */
  read(view: DataView, base: number): V;
  write(view: DataView, base: number, value: V): void;
}

/** A struct of fixed-size fields as compile() encodes it: its size, and a slot per field. */
export interface Layout<S extends FixedSchema> {
  readonly size: number;
  readonly fields: { readonly [K in keyof S]: Slot<ValueOf<S[K]>> };
}

/** Each fixed scalar read and written in place, little-endian as Writer and Reader do. */
const SLOTS: { readonly [K in FixedScalar]: (at: number) => Slot<ValueOf<K>> } = {
  u8: (at) => ({ at, read: (d, b) => d.getUint8(b + at), write: (d, b, v) => d.setUint8(b + at, v) }),
  u16: (at) => ({ at, read: (d, b) => d.getUint16(b + at, true), write: (d, b, v) => d.setUint16(b + at, v, true) }),
  u32: (at) => ({ at, read: (d, b) => d.getUint32(b + at, true), write: (d, b, v) => d.setUint32(b + at, v, true) }),
  i32: (at) => ({ at, read: (d, b) => d.getInt32(b + at, true), write: (d, b, v) => d.setInt32(b + at, v, true) }),
  f64: (at) => ({ at, read: (d, b) => d.getFloat64(b + at, true), write: (d, b, v) => d.setFloat64(b + at, v, true) }),
  u64: (at) => ({ at, read: (d, b) => d.getBigUint64(b + at, true), write: (d, b, v) => d.setBigUint64(b + at, v, true) }),
  i64: (at) => ({ at, read: (d, b) => d.getBigInt64(b + at, true), write: (d, b, v) => d.setBigInt64(b + at, v, true) }),
  bool: (at) => ({ at, read: (d, b) => asBool(d.getUint8(b + at)), write: (d, b, v) => d.setUint8(b + at, v ? 1 : 0) }),
};

/**
 * The encoding of `schema` as a layout, for a header on a hot path: written once and patched
 * field by field, or read a field at a time, with no Writer, Reader or decoded object. Fields lie
 * where compile() puts them, so either side may use the codec and the other the layout.
 */
export function fixedLayout<S extends FixedSchema>(schema: S): Layout<S> {
  const fields: Record<string, Slot<unknown>> = {};
  let size = 0;
  for (const [name, type] of Object.entries(schema)) {
    fields[name] = SLOTS[type](size);
    size += minBytes(type);
  }
  return { size, fields: fields as Layout<S>['fields'] };
}

function isVariant(type: FieldType): type is Variant {
  return typeof type === 'object' && VARIANT in type;
}

/** The tag and cases of a variant field type (undefined for any other type): for generators of values. */
export function variantOf(type: FieldType): { tag: string; cases: { readonly [name: string]: Schema } } | undefined {
  return isVariant(type) ? type[VARIANT] : undefined;
}

function compileField(type: FieldType): { encode: Encode; decode: Decode } {
  if (typeof type === 'string') return scalarCodec(type);
  if (isVariant(type)) return variantCodec(type);
  if (Array.isArray(type)) {
    const itemType = (type as readonly [FieldType])[0];
    const item = compileField(itemType);
    // Items that encode to nothing (an empty struct) cannot be bounded by the remaining bytes.
    const itemMin = minBytes(itemType);
    return {
      encode: (w, v) => {
        const list = v as unknown[];
        w.u32(list.length);
        for (const x of list) item.encode(w, x);
      },
      decode: (r) => {
        const n = r.u32();
        if (n > MAX_LIST || n * itemMin > r.end - r.pos) throw new DecodeError(`list length ${n} exceeds the message`);
        const out = new Array<unknown>(n);
        for (let i = 0; i < n; i++) out[i] = item.decode(r);
        return out;
      },
    };
  }
  return structCodec(type as Schema);
}

/**
 * A struct's codec as straight-line code generated for its schema (as protobuf.js does): scalar
 * fields are inlined Reader and Writer calls, nested ones a call to their own codec, each at a
 * call site of its own, and the decoded value one object literal, built with its final shape. A
 * loop over the fields would share one call site among every field of every schema (a
 * megamorphic call per field) and grow each object key by key: a round trip of two small
 * messages cost about a microsecond more. Field names enter the source only as JSON string
 * literals, so no schema can inject code.
 */
function structCodec(schema: Schema): { encode: Encode; decode: Decode } {
  const entries = Object.entries(schema);
  const nested = entries.map(([, t]) => (typeof t === 'string' ? undefined : compileField(t)));
  const encodes = entries.map(([name, t], i) => {
    const value = `v[${JSON.stringify(name)}]`;
    return typeof t === 'string' ? SCALAR_SOURCE[t].encode(value) : `nested[${i}].encode(w, ${value});`;
  });
  const decodes = entries.map(([name, t], i) => {
    return `${JSON.stringify(name)}: ${typeof t === 'string' ? SCALAR_SOURCE[t].decode : `nested[${i}].decode(r)`}`;
  });
  const make = new Function('nested', `return {
    encode(w, v) { ${encodes.join(' ')} },
    decode(r) { return { ${decodes.join(', ')} }; },
  };`) as (nested: ({ encode: Encode; decode: Decode } | undefined)[]) => { encode: Encode; decode: Decode };
  return make(nested);
}

/** Each scalar as source text for structCodec: its Writer call (of a value expression), its Reader call. */
const SCALAR_SOURCE: { readonly [K in Scalar]: { encode: (value: string) => string; decode: string } } = {
  u8: { encode: (v) => `w.u8(${v});`, decode: 'r.u8()' },
  u16: { encode: (v) => `w.u16(${v});`, decode: 'r.u16()' },
  u32: { encode: (v) => `w.u32(${v});`, decode: 'r.u32()' },
  i32: { encode: (v) => `w.i32(${v});`, decode: 'r.i32()' },
  f64: { encode: (v) => `w.f64(${v});`, decode: 'r.f64()' },
  u64: { encode: (v) => `w.u64(${v});`, decode: 'r.u64()' },
  i64: { encode: (v) => `w.i64(${v});`, decode: 'r.i64()' },
  bool: { encode: (v) => `w.u8(${v} ? 1 : 0);`, decode: 'r.bool()' },
  str: { encode: (v) => `w.str(${v});`, decode: 'r.str()' },
  bytes: { encode: (v) => `w.raw(${v});`, decode: 'r.raw()' },
};

function variantCodec(type: Variant): { encode: Encode; decode: Decode } {
  const { tag, cases } = type[VARIANT];
  const compiled = Object.entries(cases).map(([name, fields], index) => ({ name, index, ...compileField(fields) }));
  const byName = new Map(compiled.map((c) => [c.name, c]));
  return {
    encode: (w, v) => {
      const name = (v as Record<string, unknown>)[tag];
      const c = typeof name === 'string' ? byName.get(name) : undefined;
      if (c === undefined) throw new TypeError(`no case ${String(name)} in the variant of ${tag}`);
      w.u8(c.index);
      c.encode(w, v);
    },
    decode: (r) => {
      const index = r.u8();
      const c = compiled[index];
      if (c === undefined) throw new DecodeError(`variant case ${index} of ${tag} is not declared`);
      const value = c.decode(r) as Record<string, unknown>;
      value[tag] = c.name;
      return value;
    },
  };
}

function scalarCodec(type: Scalar): { encode: Encode; decode: Decode } {
  switch (type) {
    case 'u8': return { encode: (w, v) => w.u8(v as number), decode: (r) => r.u8() };
    case 'u16': return { encode: (w, v) => w.u16(v as number), decode: (r) => r.u16() };
    case 'u32': return { encode: (w, v) => w.u32(v as number), decode: (r) => r.u32() };
    case 'i32': return { encode: (w, v) => w.i32(v as number), decode: (r) => r.i32() };
    case 'f64': return { encode: (w, v) => w.f64(v as number), decode: (r) => r.f64() };
    case 'u64': return { encode: (w, v) => w.u64(v as bigint), decode: (r) => r.u64() };
    case 'i64': return { encode: (w, v) => w.i64(v as bigint), decode: (r) => r.i64() };
    case 'bool': return { encode: (w, v) => w.u8(v ? 1 : 0), decode: (r) => r.bool() };
    case 'str': return { encode: (w, v) => w.str(v as string), decode: (r) => r.str() };
    case 'bytes': return { encode: (w, v) => w.raw(v as Uint8Array), decode: (r) => r.raw() };
  }
}
