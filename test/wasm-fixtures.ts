/** Small modules for the wasm tests, written as text and assembled with binaryen. */
import binaryen from 'binaryen';

/** Assembles WAT text into a binary module. */
export function wat(text: string): Uint8Array {
  const module = binaryen.parseText(text);
  try {
    module.setFeatures(binaryen.Features.MutableGlobals | binaryen.Features.SignExt);
    return module.emitBinary();
  } finally {
    module.dispose();
  }
}

/**
 * A command with loops, recursion (self and mutual), a non-recursive helper, a function pointer
 * table and two mutable globals (the second one at index 2: index 1 is immutable).
 */
export const PROGRAM = `
(module
  (type $i2i (func (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory 1)
  (global $sp (mut i32) (i32.const 4096))
  (global $k i32 (i32.const 7))
  (global $counter (mut i32) (i32.const 2))
  (table 3 funcref)
  (elem (i32.const 0) $leaf $fact $isum)

  ;; Loop header runs n + 1 times.
  (func $count (export "count") (param $n i32) (result i32)
    (local $i i32)
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $l)))
    (local.get $i))

  ;; sum of i*i for i < n, with a value-producing loop (a loop typed i32).
  (func $squares (export "squares") (param $n i32) (result i32)
    (local $i i32) (local $acc i32)
    (loop $l (result i32)
      (local.set $acc (i32.add (local.get $acc) (i32.mul (local.get $i) (local.get $i))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n)))
      (local.get $acc)))

  (func $leaf (export "leaf") (param $x i32) (result i32)
    (i32.add (local.get $x) (global.get $k)))

  (func $fact (export "fact") (param $n i32) (result i32)
    (if (result i32) (i32.le_s (local.get $n) (i32.const 1))
      (then (i32.const 1))
      (else (i32.mul (local.get $n) (call $fact (i32.sub (local.get $n) (i32.const 1)))))))

  (func $even (export "even") (param $n i32) (result i32)
    (if (result i32) (i32.eqz (local.get $n)) (then (i32.const 1)) (else (call $odd (i32.sub (local.get $n) (i32.const 1))))))
  (func $odd (export "odd") (param $n i32) (result i32)
    (if (result i32) (i32.eqz (local.get $n)) (then (i32.const 0)) (else (call $even (i32.sub (local.get $n) (i32.const 1))))))

  ;; Recursion through the table: $counter holds the table slot of $isum itself.
  (func $isum (export "isum") (param $n i32) (result i32)
    (if (result i32) (i32.eqz (local.get $n))
      (then (i32.const 0))
      (else (i32.add (local.get $n) (call_indirect (type $i2i) (i32.sub (local.get $n) (i32.const 1)) (global.get $counter))))))

  ;; Non-recursive caller of a non-recursive callee.
  (func $twice (export "twice") (param $x i32) (result i32)
    (call $leaf (call $leaf (local.get $x))))

  ;; Deep recursion with live locals on every frame: sum of (n + i % 3) over the chain.
  (func $deep (export "deep") (param $n i32) (result i32)
    (local $keep i32)
    (local.set $keep (i32.add (local.get $n) (i32.rem_u (local.get $n) (i32.const 3))))
    (if (result i32) (i32.eqz (local.get $n))
      (then (i32.const 0))
      (else (i32.add (local.get $keep) (call $deep (i32.sub (local.get $n) (i32.const 1)))))))

  ;; A loop calling a function with a loop, leaving by an early return: n * m.
  (func $inner (param $m i32) (result i32)
    (local $i i32)
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $i) (local.get $m)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $l)))
    (local.get $i))
  (func $outer (export "outer") (param $n i32) (param $m i32) (result i32)
    (local $i i32) (local $s i32)
    (loop $l
      (if (i32.ge_u (local.get $i) (local.get $n)) (then (return (local.get $s))))
      (local.set $s (i32.add (local.get $s) (call $inner (local.get $m))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l))
    (unreachable))

  (func $use_sp (global.set $sp (i32.add (global.get $sp) (i32.const 0))))
  (func (export "_start") (call $use_sp))
)`;

/**
 * A command for the Execution tests: recursion RECURSE deep (live locals on every frame), a loop
 * of SPIN iterations at the bottom (so the unwinds there save every frame), then naive fib(FIB)
 * (recursion is its only hot path). It exits with (sum of the frames + spin + fib) & 0xffff.
 */
export function contextSwitchProgram(recurse: number, spin: number, fib: number): string {
  return `
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory 1)
  (func $spin (param $n i32) (result i32)
    (local $i i32) (local $acc i32)
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $acc (i32.add (local.get $acc) (i32.rem_u (local.get $i) (i32.const 7))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $l)))
    (local.get $acc))
  (func $deep (param $n i32) (result i32)
    (local $keep i32)
    (local.set $keep (i32.add (local.get $n) (i32.rem_u (local.get $n) (i32.const 3))))
    (if (result i32) (i32.eqz (local.get $n))
      (then (call $spin (i32.const ${spin})))
      (else (i32.add (local.get $keep) (call $deep (i32.sub (local.get $n) (i32.const 1)))))))
  (func $fib (param $n i32) (result i32)
    (if (result i32) (i32.lt_s (local.get $n) (i32.const 2))
      (then (local.get $n))
      (else (i32.add (call $fib (i32.sub (local.get $n) (i32.const 1))) (call $fib (i32.sub (local.get $n) (i32.const 2)))))))
  (func (export "_start")
    (call $proc_exit (i32.and (i32.add (call $deep (i32.const ${recurse})) (call $fib (i32.const ${fib}))) (i32.const 0xffff)))))`;
}

/** What contextSwitchProgram exits with. */
export function contextSwitchResult(recurse: number, spin: number, fib: number): number {
  let sum = 0;
  for (let n = 1; n <= recurse; n++) sum += n + (n % 3);
  for (let i = 0; i < spin; i++) sum += i % 7;
  const fibs = [0, 1];
  for (let i = 2; i <= fib; i++) fibs.push(fibs[i - 1]! + fibs[i - 2]!);
  return (sum + fibs[fib]!) & 0xffff;
}
