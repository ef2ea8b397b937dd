/**
 * The payload codec: every scalar, list, struct and variant type round-trips (property-based,
 * over random schemas); truncated or random input raises DecodeError and nothing else; invalid UTF-8 is a
 * DecodeError; strings decode from ring (shared) memory too; a fixed layout reads and writes each
 * field where the codec puts it.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { compile, DecodeError, fixedLayout, Reader, Writer, variant, variantOf, type FieldType, type FixedSchema, type Schema } from '../src/msg/codec.js';
import { MESSAGES } from '../src/protocol.js';

const SCALARS = ['u8', 'u16', 'u32', 'i32', 'f64', 'u64', 'i64', 'bool', 'str', 'bytes'] as const;
const FIELD_NAMES = ['a', 'b', 'c', 'pid', 'data', 'name', 'x_y', 'constructor', 'toString', 'λ'];

const CASE_NAMES = ['open', 'stat', 'list', 'x', 'toString'];

/** Random field types: scalars, lists, structs and variants of anything (bounded depth). */
const fieldType: fc.Arbitrary<FieldType> = fc.letrec<{ type: FieldType; struct: Schema }>((tie) => ({
  type: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constantFrom(...SCALARS),
    tie('type').map((t) => [t] as const),
    tie('struct'),
    fc.uniqueArray(fc.tuple(fc.constantFrom(...CASE_NAMES), tie('struct')), { selector: ([name]) => name, minLength: 1, maxLength: 3 })
      .map((cases) => variant('kind', Object.fromEntries(cases) as Record<string, Schema>)),
  ),
  struct: fc.uniqueArray(fc.tuple(fc.constantFrom(...FIELD_NAMES), tie('type')), { selector: ([name]) => name, maxLength: 4 })
    .map((fields) => Object.fromEntries(fields) as Schema),
})).type;

const schemaArb: fc.Arbitrary<Schema> = fc.uniqueArray(fc.tuple(fc.constantFrom(...FIELD_NAMES), fieldType), { selector: ([n]) => n, maxLength: 5 })
  .map((fields) => Object.fromEntries(fields) as Schema);

/** A value of `type`, as the encoder expects it and the decoder returns it. */
function valueOf(type: FieldType): fc.Arbitrary<unknown> {
  if (typeof type === 'string') {
    switch (type) {
      case 'u8': return fc.integer({ min: 0, max: 0xff });
      case 'u16': return fc.integer({ min: 0, max: 0xffff });
      case 'u32': return fc.integer({ min: 0, max: 0xffffffff });
      case 'i32': return fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 });
      case 'f64': return fc.double();
      case 'u64': return fc.bigInt({ min: 0n, max: 2n ** 64n - 1n });
      case 'i64': return fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n });
      case 'bool': return fc.boolean();
      case 'str': return fc.string({ unit: 'binary', maxLength: 40 });
      case 'bytes': return fc.uint8Array({ maxLength: 64 });
    }
  }
  if (Array.isArray(type)) return fc.array(valueOf((type as readonly [FieldType])[0]), { maxLength: 5 });
  const tagged = variantOf(type);
  if (tagged !== undefined) {
    return fc.oneof(...Object.entries(tagged.cases).map(([name, fields]) => valueOf(fields).map((v) => ({ ...(v as object), [tagged.tag]: name }))));
  }
  const entries = Object.entries(type as Schema);
  return fc.tuple(...entries.map(([, t]) => valueOf(t))).map((values) => {
    const obj: Record<string, unknown> = {};
    entries.forEach(([name], i) => (obj[name] = values[i]));
    return obj;
  });
}

const schemaAndValue = schemaArb.chain((schema) => valueOf(schema).map((value) => ({ schema, value })));

function encode(schema: Schema, value: unknown): Uint8Array {
  const w = new Writer(16);
  compile(schema).encode(w, value as never);
  return w.bytes.slice(0, w.pos);
}

test('codec: every scalar, list and struct type round-trips', () => {
  fc.assert(
    fc.property(schemaAndValue, ({ schema, value }) => {
      const bytes = encode(schema, value);
      const r = new Reader(bytes);
      const back = compile(schema).decode(r);
      assert.equal(r.pos, bytes.length, 'the decoder must consume exactly what the encoder wrote');
      assert.deepStrictEqual(back, value); // Object.is semantics: -0, NaN and bigints exact
    }),
    { numRuns: 400 },
  );
});

test('codec: every truncation of a valid encoding is a DecodeError, never a crash', () => {
  fc.assert(
    fc.property(schemaAndValue, fc.nat(), ({ schema, value }, cut) => {
      const bytes = encode(schema, value);
      fc.pre(bytes.length > 0);
      const end = cut % bytes.length;
      // Positional decoding reads the same bytes from a prefix as from the whole, so any strict
      // prefix must run out.
      assert.throws(() => compile(schema).decode(new Reader(bytes, 0, end)), DecodeError);
    }),
    { numRuns: 400 },
  );
});

test('codec: random bytes decode or raise DecodeError, nothing else', () => {
  fc.assert(
    fc.property(schemaArb, fc.uint8Array({ maxLength: 200 }), (schema, bytes) => {
      try {
        compile(schema).decode(new Reader(bytes));
      } catch (error) {
        assert.ok(error instanceof DecodeError, `got ${String(error)}`);
      }
    }),
    { numRuns: 400 },
  );
});

test('codec: every message type of the protocol round-trips and rejects truncation', () => {
  for (const [name, spec] of Object.entries(MESSAGES)) {
    fc.assert(
      fc.property(valueOf(spec.payload), (value) => {
        const bytes = encode(spec.payload, value);
        assert.deepStrictEqual(compile(spec.payload).decode(new Reader(bytes)), value, name);
        for (let end = 0; end < bytes.length; end += Math.max(1, bytes.length >> 3)) {
          assert.throws(() => compile(spec.payload).decode(new Reader(bytes, 0, end)), DecodeError, name);
        }
      }),
      { numRuns: 30 },
    );
  }
});

const FIXED_SCALARS = ['u8', 'u16', 'u32', 'i32', 'f64', 'u64', 'i64', 'bool'] as const;
const fixedSchemaAndValue = fc.uniqueArray(fc.tuple(fc.constantFrom(...FIELD_NAMES), fc.constantFrom(...FIXED_SCALARS)), { selector: ([n]) => n, maxLength: 6 })
  .map((fields) => Object.fromEntries(fields) as FixedSchema)
  .chain((schema) => valueOf(schema).map((value) => ({ schema, value: value as Record<string, unknown> })));

test('codec: a fixed layout has the encoded size, and each slot reads and writes its field where compile() puts it', () => {
  fc.assert(
    fc.property(fixedSchemaAndValue, fc.nat({ max: 16 }), ({ schema, value }, base) => {
      const layout = fixedLayout(schema);
      const bytes = encode(schema, value);
      assert.equal(layout.size, bytes.length);
      const encoded = new Uint8Array(base + bytes.length);
      encoded.set(bytes, base);
      const written = new Uint8Array(base + layout.size);
      for (const [name, slot] of Object.entries(layout.fields)) {
        assert.deepStrictEqual(slot.read(new DataView(encoded.buffer), base), value[name], name);
        slot.write(new DataView(written.buffer), base, value[name] as never);
      }
      assert.deepStrictEqual(written, encoded, 'every slot written is the encoding');
    }),
    { numRuns: 300 },
  );
  const bool = fixedLayout({ b: 'bool' }).fields.b;
  assert.throws(() => bool.read(new DataView(new Uint8Array([2]).buffer), 0), DecodeError);
});

test('codec: invalid UTF-8 in a string field is a DecodeError', () => {
  const codec = compile({ s: 'str' });
  const bad = [
    [0xff],
    [0xc0, 0x80], // overlong NUL
    [0xed, 0xa0, 0x80], // an encoded surrogate
    [0xe2, 0x82], // truncated sequence
    [0xf4, 0x90, 0x80, 0x80], // beyond U+10FFFF
    [0x61, 0x80, 0x62], // stray continuation byte
  ];
  for (const seq of bad) {
    const bytes = new Uint8Array(4 + seq.length);
    new DataView(bytes.buffer).setUint32(0, seq.length, true);
    bytes.set(seq, 4);
    assert.throws(() => codec.decode(new Reader(bytes)), (e: unknown) => e instanceof DecodeError && /UTF-8/.test(e.message), `bytes ${seq}`);
  }
});

test('codec: length fields larger than the message are refused before allocating', () => {
  const list = compile({ l: ['u32'] });
  const bytes = new Uint8Array([0xff, 0xff, 0xff, 0x00, 1, 2, 3, 4]);
  assert.throws(() => list.decode(new Reader(bytes)), DecodeError);
  const raw = compile({ b: 'bytes' });
  assert.throws(() => raw.decode(new Reader(new Uint8Array([0xff, 0xff, 0xff, 0xff]))), DecodeError);
});

test('codec: lists of empty structs round-trip (items that encode to zero bytes)', () => {
  const codec = compile({ l: [{}], n: 'u8' });
  const w = new Writer();
  codec.encode(w, { l: [{}, {}, {}], n: 7 });
  const back = codec.decode(new Reader(w.bytes, 0, w.pos));
  assert.deepStrictEqual(back, { l: [{}, {}, {}], n: 7 });
});

test('codec: strings and bytes decode from shared (ring) memory, bytes as private copies', () => {
  const codec = compile({ s: 'str', b: 'bytes' });
  const w = new Writer();
  codec.encode(w, { s: 'héllo, wörld ✓ 🍿', b: new Uint8Array([1, 2, 3]) });
  const shared = new Uint8Array(new SharedArrayBuffer(w.pos + 10), 5, w.pos);
  shared.set(w.bytes.subarray(0, w.pos));
  const back = codec.decode(new Reader(shared));
  assert.equal(back.s, 'héllo, wörld ✓ 🍿');
  assert.deepStrictEqual(back.b, new Uint8Array([1, 2, 3]));
  assert.ok(!(back.b.buffer instanceof SharedArrayBuffer), 'bytes must not alias ring memory');
});

test('codec: a Writer grows from any initial size', () => {
  const w = new Writer(0);
  w.str('grow');
  w.u64(1n);
  assert.equal(w.pos, 16);
});

test('a variant is one byte of case then its fields, and refuses cases it does not declare', () => {
  const schema = { handle: 'u32', call: variant('op', { stat: { path: 'str', follow: 'bool' }, list: {} }) } as const;
  const codec = compile(schema);
  const w = new Writer(16);
  codec.encode(w, { handle: 7, call: { op: 'list' } });
  assert.deepEqual([...w.bytes.subarray(0, w.pos)], [7, 0, 0, 0, 1]);
  w.reset();
  codec.encode(w, { handle: 7, call: { op: 'stat', path: 'a', follow: true } });
  const back = codec.decode(new Reader(w.bytes.slice(0, w.pos)));
  assert.deepEqual(back, { handle: 7, call: { op: 'stat', path: 'a', follow: true } });
  assert.throws(() => codec.decode(new Reader(new Uint8Array([7, 0, 0, 0, 2]))), DecodeError);
  assert.throws(() => codec.encode(new Writer(), { handle: 1, call: { op: 'rm' } as never }), /no case rm in the variant of op/);
  assert.throws(() => variant('op', {}), RangeError);
  assert.throws(() => variant('op', { a: { op: 'str' } }), /named like its tag/);
});
