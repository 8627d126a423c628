#!/usr/bin/env node
// The layering check (DESIGN.md, "Layers"): lower layers never import upper ones.
//
//   node scripts/lint-layers.mjs [ROOT]
//
// ROOT defaults to the repository this script lives in. Every source file
// under a checked layer is parsed with the TypeScript compiler (so comments,
// strings and regular expressions can never be mistaken for imports), and
// each module specifier it names is checked against the layer's rule:
// static `import ... from`, `export ... from`, `import x = require()`,
// dynamic `import()`, `require()` and `typeof import()` types alike.
// Specifiers computed at run time cannot be checked and are not reported.
//
// Exit status: 0 when clean, 1 with one `file:line: ...` line per violation,
// 2 when the check itself cannot run.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { dirname, extname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

// One entry per checked top-level directory. `mayImport` lists the top-level
// directories of this repository that its files may import from (their own
// included); node built-ins and npm packages are always allowed. To check a
// new layer, add an entry here.
const RULES = [
  {
    layer: 'arena',
    mayImport: ['arena', 'errors'],
    why: 'arena/ stands alone: it may import only arena/, errors/, node built-ins and npm packages',
  },
  {
    layer: 'errors',
    mayImport: ['errors'],
    why: 'errors/ imports nothing from the rest of the repository',
  },
];

const SOURCE_EXTENSIONS = new Set(['.ts', '.tsx', '.mts', '.cts', '.js', '.mjs', '.cjs']);
const PACKAGE_NAME = 'bazil';

function usage(message) {
  process.stderr.write(`lint-layers: ${message}\n`);
  process.exit(2);
}

async function loadTypeScript() {
  try {
    return (await import('typescript')).default;
  } catch (err) {
    usage(`cannot load the typescript package (${err.message}); run \`npm ci\` first`);
  }
}

function listSources(dir) {
  const files = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'node_modules' || entry.name.startsWith('.')) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) files.push(...listSources(path));
    else if (entry.isFile() && SOURCE_EXTENSIONS.has(extname(entry.name))) files.push(path);
  }
  return files;
}

/** Yields every literal module specifier in a parsed file, with its position. */
function* moduleSpecifiers(ts, sourceFile) {
  const literal = (node) =>
    node !== undefined && (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) ? node : undefined;
  const stack = [sourceFile];
  while (stack.length > 0) {
    const node = stack.pop();
    let spec;
    let kind;
    if (ts.isImportDeclaration(node)) {
      spec = literal(node.moduleSpecifier);
      kind = 'import';
    } else if (ts.isExportDeclaration(node)) {
      spec = literal(node.moduleSpecifier);
      kind = 'export ... from';
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      spec = literal(node.moduleReference.expression);
      kind = 'import = require()';
    } else if (ts.isCallExpression(node)) {
      if (node.expression.kind === ts.SyntaxKind.ImportKeyword) {
        spec = literal(node.arguments[0]);
        kind = 'import()';
      } else if (ts.isIdentifier(node.expression) && node.expression.text === 'require') {
        spec = literal(node.arguments[0]);
        kind = 'require()';
      }
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) {
      spec = literal(node.argument.literal);
      kind = 'import() type';
    }
    if (spec !== undefined) {
      const { line } = sourceFile.getLineAndCharacterOfPosition(spec.getStart(sourceFile));
      yield { specifier: spec.text, kind, line: line + 1 };
    }
    ts.forEachChild(node, (child) => {
      stack.push(child);
    });
  }
}

/** Returns why `specifier`, found in `file` of `rule`'s layer, breaks the rule, or null. */
function violation(root, rule, file, specifier) {
  if (specifier.startsWith('node:') || isBuiltin(specifier)) return null;
  // A compiled native addon is a binary, not a module of another layer.
  if (specifier.endsWith('.node')) return null;
  if (specifier.startsWith('#')) return `is a package.json subpath import, which can lead anywhere; ${rule.why}`;
  if (specifier.startsWith('file:') || isAbsolute(specifier)) return `is an absolute path; ${rule.why}`;
  if (specifier === PACKAGE_NAME || specifier.startsWith(`${PACKAGE_NAME}/`)) {
    return `is a self-reference to the ${PACKAGE_NAME} package; ${rule.why}`;
  }
  if (!specifier.startsWith('.')) return null; // an npm package

  const target = relative(root, resolve(dirname(file), specifier));
  if (target === '' || target.startsWith('..') || isAbsolute(target)) {
    return `resolves outside the repository; ${rule.why}`;
  }
  const top = target.split(sep)[0];
  if (rule.mayImport.includes(top)) return null;
  const shown = target.split(sep).join('/');
  if (top === 'src') return `resolves to ${shown}: ${rule.layer}/ must not import from src/`;
  return `resolves to ${shown}; ${rule.why}`;
}

async function main() {
  const args = process.argv.slice(2);
  if (args.length > 1 || args.some((a) => a.startsWith('-'))) usage('usage: node scripts/lint-layers.mjs [ROOT]');
  const root = resolve(args[0] ?? join(dirname(fileURLToPath(import.meta.url)), '..'));
  if (!existsSync(root) || !statSync(root).isDirectory()) usage(`${root} is not a directory`);

  const ts = await loadTypeScript();
  const problems = [];
  let checked = 0;
  for (const rule of RULES) {
    const layerDir = join(root, rule.layer);
    if (!existsSync(layerDir)) continue;
    for (const file of listSources(layerDir).sort()) {
      checked += 1;
      const text = readFileSync(file, 'utf8');
      const sourceFile = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
      const shownFile = relative(root, file).split(sep).join('/');
      for (const { specifier, kind, line } of moduleSpecifiers(ts, sourceFile)) {
        const why = violation(root, rule, file, specifier);
        if (why !== null) problems.push({ file: shownFile, line, text: `${kind} '${specifier}' ${why}` });
      }
    }
  }

  problems.sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line);
  for (const p of problems) process.stdout.write(`${p.file}:${p.line}: ${p.text}\n`);
  if (problems.length > 0) {
    process.stderr.write(`lint-layers: ${problems.length} layering violation(s) in ${checked} file(s); see DESIGN.md "Layers"\n`);
    process.exit(1);
  }
  process.stderr.write(`lint-layers: ok (${checked} file(s) checked)\n`);
}

await main();
