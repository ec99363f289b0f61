/**
 * The shape rules of lib/ (lib/README.md): no file over 400 lines, no function over 60 lines,
 * no function with five or more parameters (they become one options object). Read with the
 * TypeScript compiler's own parser, so every kind of function counts: declarations, methods,
 * arrows, function expressions, constructors and accessors.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';

export const MAX_FILE_LINES = 400;
export const MAX_FUNCTION_LINES = 60;
export const MAX_PARAMETERS = 4;

function functionName(node: ts.FunctionLikeDeclaration, source: ts.SourceFile): string {
  if (node.name) return node.name.getText(source);
  const parent = node.parent;
  if (parent && ts.isVariableDeclaration(parent)) return parent.name.getText(source);
  if (parent && ts.isPropertyAssignment(parent)) return parent.name.getText(source);
  return '(anonymous)';
}

/** Every rule the source text breaks, one line each, naming file:line and the function. */
export function shapeViolations(file: string, text: string): string[] {
  const found: string[] = [];
  const lines = text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
  if (lines > MAX_FILE_LINES) found.push(`${file}: ${lines} lines (at most ${MAX_FILE_LINES})`);
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true);
  const visit = (node: ts.Node) => {
    if (ts.isFunctionLike(node) && 'body' in node && node.body) {
      const fn = node as ts.FunctionLikeDeclaration;
      const start = source.getLineAndCharacterOfPosition(fn.getStart(source)).line;
      const end = source.getLineAndCharacterOfPosition(fn.getEnd()).line;
      const where = `${file}:${start + 1} ${functionName(fn, source)}`;
      if (end - start + 1 > MAX_FUNCTION_LINES) found.push(`${where}: ${end - start + 1} lines (at most ${MAX_FUNCTION_LINES})`);
      if (fn.parameters.length > MAX_PARAMETERS) found.push(`${where}: ${fn.parameters.length} parameters (at most ${MAX_PARAMETERS}; pass an options object)`);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

export function shapeViolationsOfFiles(repo: string, files: string[]): string[] {
  return files.flatMap((file) => shapeViolations(file, readFileSync(join(repo, file), 'utf8')));
}
