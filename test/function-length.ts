/**
 * Lists the functions longer than a bound (80 lines by default) in the
 * server-side layers, with the TypeScript compiler's parser: function
 * declarations, methods, constructors, accessors, arrow functions and
 * function expressions, each measured from its first to its last line
 * (nested functions count inside their parent too). A function whose
 * leading comment says it is a reference algorithm read top to bottom
 * ("reference algorithm") is listed as allowed, not as too long.
 *
 *   npx tsx test/function-length.ts [max] [folder or file ...]
 *
 * prints one line per function, longest first; test/function-length.test.ts
 * holds the tree to the bound.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import ts from "typescript";

export const ROOT = resolve(import.meta.dirname, "..");
export const LAYER_FOLDERS = ["envs", "agents", "experiments", "server"];
/** The words in a function's leading comment that allow it to be long. */
export const REFERENCE_MARK = /reference algorithm/i;

export interface FunctionLength {
  file: string;
  name: string;
  line: number;
  lines: number;
  /** The leading comment marks it as a reference algorithm read top to bottom. */
  reference: boolean;
}

function sources(dir: string): string[] {
  if (!statSync(dir).isDirectory()) return [dir];
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return /\.ts$/.test(name) && !name.endsWith(".d.ts") ? [path] : [];
  });
}

function nameOf(node: ts.Node, sf: ts.SourceFile): string {
  const named = node as ts.Node & { name?: ts.Node };
  if (ts.isConstructorDeclaration(node)) {
    const cls = node.parent as ts.ClassLikeDeclaration;
    return `${cls.name?.getText(sf) ?? "(class)"}.constructor`;
  }
  let own = named.name?.getText(sf);
  if (!own && (ts.isVariableDeclaration(node.parent) || ts.isPropertyAssignment(node.parent) || ts.isPropertyDeclaration(node.parent))) {
    own = node.parent.name.getText(sf);
  }
  const parent = node.parent;
  if ((ts.isMethodDeclaration(node) || ts.isGetAccessor(node) || ts.isSetAccessor(node) || ts.isPropertyDeclaration(parent)) && own) {
    const cls = ts.isPropertyDeclaration(parent) ? parent.parent : parent;
    if (ts.isClassLike(cls)) return `${cls.name?.getText(sf) ?? "(class)"}.${own}`;
  }
  return own ?? "(anonymous)";
}

function leadingComment(node: ts.Node, sf: ts.SourceFile): string {
  // The comment before the declaration that holds the function (a method,
  // a `const f = () =>` statement, an exported function).
  let holder: ts.Node = node;
  while (holder.parent && !ts.isSourceFile(holder.parent) && !ts.isClassLike(holder.parent) && !ts.isBlock(holder.parent)) {
    if (
      ts.isVariableDeclaration(holder.parent) ||
      ts.isVariableDeclarationList(holder.parent) ||
      ts.isVariableStatement(holder.parent) ||
      ts.isPropertyDeclaration(holder.parent) ||
      ts.isPropertyAssignment(holder.parent)
    ) {
      holder = holder.parent;
    } else break;
  }
  const ranges = ts.getLeadingCommentRanges(sf.text, holder.getFullStart()) ?? [];
  return ranges.map((r) => sf.text.slice(r.pos, r.end)).join("\n");
}

/** Every function in one file (or in `text`, named `file`) with its length in lines. */
export function functionLengths(file: string, text = readFileSync(file, "utf8")): FunctionLength[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const out: FunctionLength[] = [];
  const visit = (node: ts.Node) => {
    if (ts.isFunctionLike(node) && (node as ts.FunctionLikeDeclaration).body) {
      const start = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line;
      const end = sf.getLineAndCharacterOfPosition(node.getEnd()).line;
      out.push({
        file: file.startsWith(ROOT) ? relative(ROOT, file) : file,
        name: nameOf(node, sf),
        line: start + 1,
        lines: end - start + 1,
        reference: REFERENCE_MARK.test(leadingComment(node, sf)),
      });
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

/** The functions over `max` lines below the given folders, longest first. */
export function longFunctions(max = 80, folders = LAYER_FOLDERS): FunctionLength[] {
  return folders
    .flatMap((f) => sources(join(ROOT, f)))
    .flatMap((f) => functionLengths(f))
    .filter((f) => f.lines > max)
    .sort((a, b) => b.lines - a.lines);
}

/** The longest function below each folder. */
export function longestPerFolder(folders = LAYER_FOLDERS): FunctionLength[] {
  return folders.map(
    (f) =>
      sources(join(ROOT, f))
        .flatMap((f) => functionLengths(f))
        .sort((a, b) => b.lines - a.lines)[0]!,
  );
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [max, ...folders] = process.argv.slice(2);
  const bound = max === undefined ? 80 : Number(max);
  if (!Number.isInteger(bound) || bound < 1) {
    console.error(`max must be a whole number of lines, got "${max}"`);
    process.exit(2);
  }
  const list = longFunctions(bound, folders.length > 0 ? folders : LAYER_FOLDERS);
  for (const f of list)
    console.log(`${String(f.lines).padStart(4)}  ${f.file}:${f.line}  ${f.name}${f.reference ? "  (reference algorithm)" : ""}`);
  console.log(
    `${list.filter((f) => !f.reference).length} over ${bound} lines, ${list.filter((f) => f.reference).length} reference algorithms`,
  );
  console.log("longest per layer:");
  for (const f of longestPerFolder(folders.length > 0 ? folders : LAYER_FOLDERS))
    console.log(`${String(f.lines).padStart(4)}  ${f.file}:${f.line}  ${f.name}`);
}
