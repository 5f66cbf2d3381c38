/**
 * One integer id per observation, for every part that keys states by what the
 * agent sees (the tabular planner's observation keys, the neural planner's
 * imagined graph, the counting prediction): two independent 32-bit FNV-1a
 * style hashes of the observation's float bits (the second also mixes the
 * length), combined into a 53-bit integer. Collisions among the few thousand
 * observations of a gridworld: about 1e-9. Never -1, which means "no key".
 */

/** The key of `size` floats of `obs` from `offset` (the whole array by default). */
export function observationKey(obs: Float32Array, offset = 0, size = obs.length - offset): number {
  const bits = new Uint32Array(obs.buffer, obs.byteOffset + offset * 4, size);
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193 ^ size;
  for (let j = 0; j < size; j++) {
    const b = bits[j]!;
    h1 = Math.imul(h1 ^ b, 0x01000193);
    h2 = Math.imul(h2 ^ ((b >>> 16) | (b << 16)), 0x5bd1e995);
  }
  return (h1 >>> 0) + (h2 & 0x1fffff) * 2 ** 32;
}
