/**
 * Functions fit on a screen (docs/architecture.md, "Keeping the tree in
 * shape"): no function in envs/, agents/, experiments/ or server/ is over 80
 * lines unless its leading comment calls it a reference algorithm. The lister
 * is test/function-length.ts (`npx tsx test/function-length.ts` prints the
 * list); a failure here names each function with its file, line and length.
 */
import { describe, expect, it } from "vitest";
import { functionLengths, longFunctions } from "./function-length.ts";

const SOURCE = `
/** A plain function. */
export function one(a: number): number {
  return a + 1;
}
class K {
  constructor(readonly x: number) {
    this.x = x;
  }
  /** Reference algorithm: read top to bottom against its source. */
  long(): void {
    const inner = () => {
      return 1;
    };
    inner();
  }
}
const arrow = (n: number) => n * 2;
`;

describe("the function-length lister", () => {
  it("measures functions, constructors, methods and arrow functions from their first to their last line", () => {
    const found = functionLengths("x.ts", SOURCE).map((f) => [f.name, f.line, f.lines, f.reference]);
    expect(found).toEqual([
      ["one", 3, 3, false],
      ["K.constructor", 7, 3, false],
      ["K.long", 11, 6, true],
      ["inner", 12, 3, false],
      ["arrow", 18, 1, false],
    ]);
  });
});

describe("functions in envs/, agents/, experiments/ and server/", () => {
  it("are 80 lines or fewer, reference algorithms aside", () => {
    const long = longFunctions(80).filter((f) => !f.reference);
    expect(long.map((f) => `${f.file}:${f.line} ${f.name} (${f.lines} lines)`)).toEqual([]);
  });
});
